"""The common training loop: runs a learner's phases, offline or online.

Per host call the loop runs ``steps_per_chunk`` updates inside one ``jit`` (``lax.scan``); between
chunks it evaluates, logs (JSONL + CSV), prints progress and saves orbax checkpoints. A killed run
restarts from its last checkpoint and reaches the same final parameters as an uninterrupted one
(offline phases; an online phase resumed at an episode boundary too). A non-finite loss stops the
run with :class:`NonFiniteLossError`, keeping the last good checkpoint.

Data comes in through a :class:`~worldmodels.data.source.DataSource` (offline phases: their
samplers read its device arrays; its tables are prepared once) and environments through
``env_factory(seed) -> dm_env.Environment`` (online phases, and the default evaluation); the
loop never imports ``benchmarks``. Each phase's read-only inputs (``Phase.frozen``, e.g. a world
model's parameters) are passed to its updates and never checkpointed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh

from worldmodels import parallel
from worldmodels.data.source import DataSource
from worldmodels.data.types import Steps
from worldmodels.training import replay as replay_lib
from worldmodels.training.acting import (EnvFactory, EnvironmentEvaluator, EpisodeRunner,
                                         Evaluator)
from worldmodels.training.agent import Phase
from worldmodels.training.checkpoint import Checkpointer
from worldmodels.training.seeds import select_seed, stack_seeds
from worldmodels.errors import ConfigError
from worldmodels.io import Lock
from worldmodels.provenance import claim
from worldmodels.training.logging import MetricsLogger, Progress, read_jsonl


class NonFiniteLossError(FloatingPointError):
  """A loss became NaN or inf; the message names the metric, phase, steps and checkpoint."""


class DivergenceError(NonFiniteLossError):
  """A loss or Q-value grew past ``LoopConfig.divergence_threshold`` with
  ``on_divergence="stop"``; the message names the metric, its value and the checkpoint."""


class RunInterrupted(KeyboardInterrupt):
  """Ctrl-C (or SIGTERM, under ``worldmodels.cli.guarded``) stopped a run; the message says
  where and that rerunning the same command resumes it."""

  def __init__(self, workdir: str):
    train_log = os.path.join(workdir, "train.jsonl")
    rows = read_jsonl(train_log) if os.path.exists(train_log) else []
    checkpoint = Checkpointer(workdir).latest_step()
    super().__init__(
        f"interrupted at step {rows[-1]['step'] if rows else 0} in {workdir}; rerun the same "
        "command to resume" + (f" (from the checkpoint at step {checkpoint})." if checkpoint
                               is not None else " (no checkpoint yet: it starts over)."))


@dataclasses.dataclass
class LoopConfig:
  """Settings of the loop itself (the agent's sizes live in the agent config).

  Attributes:
    steps_per_chunk: updates (offline) or environment steps (online) per host call.
    eval_every: steps between evaluations (0: only at the end of each phase).
    eval_episodes: episodes per evaluation.
    checkpoint_every: steps between checkpoints (0: only at the end of each phase).
    replay_capacity: online phases: steps the replay holds.
    seed: the run's seed (agent init, sampling, environments).
    max_to_keep: checkpoints kept on disk.
    log_every_seconds: at most one progress line per this many seconds.
    snapshot_every: steps between snapshots of the agent state alone, kept forever under
      ``<workdir>/snapshots/<step>`` (0: none). Behaviour-policy training uses them to pick
      the checkpoints that generate datasets (V-D4RL: every 10,000 frames).
    divergence_threshold: a loss or Q-value metric (a name with ``loss``, ``q_`` or
      ``target_``) whose magnitude exceeds this has diverged.
    on_divergence: ``"warn"`` (one line per metric and phase) or ``"stop"`` (like a NaN:
      :class:`DivergenceError`, the last good checkpoint kept).
    seeds: train these seeds together, as one state with a leading seed axis ``[S, ...]``
      updated by one vmapped jit (offline phases only); each seed gets the keys, the
      evaluation episodes and so the numbers a run with ``seed`` set to it gets. None: one
      run of ``seed``, no seed axis.
  """

  steps_per_chunk: int = 1000
  eval_every: int = 10_000
  eval_episodes: int = 5
  checkpoint_every: int = 10_000
  replay_capacity: int = 1_000_000
  seed: int = 0
  max_to_keep: int = 2
  log_every_seconds: float = 5.0
  snapshot_every: int = 0
  divergence_threshold: float = 1e8
  on_divergence: str = "warn"
  seeds: Optional[Tuple[int, ...]] = None

  def __post_init__(self):
    if self.on_divergence not in ("warn", "stop"):
      raise ConfigError(f"loop.on_divergence must be 'warn' or 'stop', got "
                        f"{self.on_divergence!r}.")
    if self.seeds is not None:
      self.seeds = tuple(int(s) for s in self.seeds)
      if not self.seeds or len(set(self.seeds)) != len(self.seeds):
        raise ConfigError(f"loop.seeds must be distinct seeds, got {self.seeds!r}.")


SNAPSHOT_DIRECTORY = "snapshots"


def restore_snapshot(agent, workdir: str, step: int, key: jax.Array | None = None,
                     num_seeds: Optional[int] = None) -> Any:
  """The agent state saved at ``step`` by a run with ``LoopConfig.snapshot_every``.

  Args:
    agent: an agent built like the one that was trained (its ``init`` gives the structure).
    workdir: the run's working directory.
    step: a snapshot step (see :func:`snapshot_steps`).
    key: key for the structure-giving ``init`` (its values are discarded).
    num_seeds: the run had ``LoopConfig.seeds`` of this many seeds: the state has that
      leading axis.

  Raises:
    FileNotFoundError: no snapshot at ``step`` (the message lists those on disk).
  """
  checkpointer = Checkpointer(workdir, None, SNAPSHOT_DIRECTORY)
  steps = checkpointer.all_steps()
  if step not in steps:
    checkpointer.close()
    raise FileNotFoundError(f"no snapshot at step {step} in {checkpointer.directory}; "
                            f"snapshots on disk: {steps}.")
  like = agent.init(jax.random.PRNGKey(0) if key is None else key)
  if num_seeds is not None:
    like = stack_seeds([like] * num_seeds)
  state = checkpointer.restore(step, like)
  checkpointer.close()
  return state


def snapshot_steps(workdir: str) -> List[int]:
  """Steps of the agent snapshots a run saved (ascending; empty if none)."""
  if not os.path.isdir(os.path.join(workdir, SNAPSHOT_DIRECTORY)):
    return []
  checkpointer = Checkpointer(workdir, None, SNAPSHOT_DIRECTORY)
  steps = checkpointer.all_steps()
  checkpointer.close()
  return steps


@dataclasses.dataclass
class TrainResult:
  """What :func:`train` returns.

  Attributes:
    state: the agent's final state.
    evaluations: one dict per evaluation (phase, step, return_mean, return_std, ...).
    replay: the online replay as episodic steps (host arrays), or None without online phases.
  """

  state: Any
  evaluations: List[Dict[str, float]]
  replay: Optional[Steps]


_CALLS = "periodic_calls"


def _mean_metrics(metrics: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """Means over the chunk's updates (the leading axis; a seed axis stays)."""
  return {k: jnp.mean(v, axis=0) for k, v in metrics.items()}


def _skip_branch(refresh, agent_state):
  """The ``lax.cond`` branch of a step without periodic work: the state unchanged, and zero
  metrics of the shapes ``refresh`` returns."""
  shapes = jax.eval_shape(refresh, agent_state)[1]
  return lambda state: (state, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                                      shapes))


def _periodic_means(outputs: Dict[str, Any]) -> Dict[str, jax.Array]:
  """A chunk's periodic metrics: means over the steps it was due (a seed axis stays), and the
  number of calls under ``_CALLS``; empty when the phase has no periodic work (the host drops
  them for a chunk without a call)."""
  if "due" not in outputs:
    return {}
  calls = jnp.sum(outputs["due"]).astype(jnp.float32)
  weights = outputs["due"].astype(jnp.float32)
  means = {name: jnp.tensordot(weights, values.astype(jnp.float32), axes=1) / jnp.maximum(calls, 1)
           for name, values in outputs["periodic"].items()}
  return {**means, _CALLS: calls}


def _check_finite(metrics: Dict[str, float], phase: str, first: int, last: int,
                  checkpointer: Checkpointer) -> None:
  bad = sorted(k for k, v in metrics.items() if not math.isfinite(float(v)))
  if bad:
    ckpt = checkpointer.latest_step()
    where = (f"the last good checkpoint (step {ckpt}) is kept in {checkpointer.directory}"
             if ckpt is not None else "no checkpoint was saved yet")
    raise NonFiniteLossError(
        f"non-finite value in {', '.join(bad)} during phase '{phase}', steps {first}..{last}; "
        f"training stopped and nothing was saved for these steps; {where}.")


def _is_watched(name: str) -> bool:
  return "loss" in name or name.startswith(("q_", "target_"))


def _check_divergence(metrics: Dict[str, float], phase: str, first: int, last: int,
                      loop: LoopConfig, checkpointer: Checkpointer, warned: set) -> None:
  """Warns about (or stops on) losses and Q-values past the divergence threshold."""
  big = {k: v for k, v in metrics.items()
         if _is_watched(k) and abs(v) > loop.divergence_threshold}
  if not big:
    return
  shown = ", ".join(f"{k}={v:.3g}" for k, v in sorted(big.items()))
  if loop.on_divergence == "stop":
    ckpt = checkpointer.latest_step()
    raise DivergenceError(
        f"diverged during phase '{phase}', steps {first}..{last}: {shown} (threshold "
        f"{loop.divergence_threshold:g}); training stopped, "
        + (f"the last good checkpoint (step {ckpt}) is kept in {checkpointer.directory}."
           if ckpt is not None else "no checkpoint was saved yet.")
        + " Lower the learning rates, or raise loop.divergence_threshold.")
  new = sorted(set(big) - warned)
  if new:
    warned.update(new)
    print(f"warning: phase '{phase}' may be diverging at steps {first}..{last}: {shown} "
          f"(threshold {loop.divergence_threshold:g}; loop.on_divergence=stop ends the run "
          "instead).", flush=True)


def make_offline_chunk(phase: Phase, seeded: bool = False, mesh: Optional[Mesh] = None):
  """The jitted chunk of an offline phase, as the loop runs it.

  ``(agent_state, key, arrays, frozen, start, length) -> (agent_state, key, metrics,
  periodic_metrics)`` runs updates ``start .. start + length - 1`` of the phase (``lax.scan``),
  each on a batch its sampler draws, after ``phase.periodic`` on its steps; metrics are means
  over the chunk's updates, periodic metrics over its periodic calls (with their count).

  Args:
    phase: the phase.
    seeded: state and key carry a leading seed axis: every update is vmapped over it (on the
      mesh's ``"seeds"`` axis), the data and frozen inputs shared; metrics come back ``[S]``.
    mesh: batches are split over its ``"data"`` axis.
  """
  split_batch = parallel.split_batch(mesh) if mesh is not None else (lambda batch: batch)
  over_seeds = ((lambda f: jax.vmap(f, spmd_axis_name="seeds" if mesh is not None else None))
                if seeded else (lambda f: f))

  def chunk(agent_state, key, arrays, frozen, start, length: int):
    def one_update(state, key):
      key, sample_key = jax.random.split(key)
      batch = (split_batch(phase.sampler(arrays, sample_key)) if phase.sampler is not None
               else None)
      state, metrics = phase.update(state, batch, frozen)
      return state, key, metrics

    periodic = phase.periodic
    if periodic is not None:
      refresh = over_seeds(lambda state: periodic.update(state, frozen, arrays))
      skip = _skip_branch(refresh, agent_state)

    def body(carry, step):
      state, key = carry
      outputs = {}
      if periodic is not None:
        due = step % periodic.every == 0  # the loop's count: one branch for every seed
        state, outputs["periodic"] = jax.lax.cond(due, refresh, skip, state)
        outputs["due"] = due
      state, key, outputs["update"] = over_seeds(one_update)(state, key)
      return (state, key), outputs

    steps = start + jnp.arange(length, dtype=jnp.int32)
    (agent_state, key), outputs = jax.lax.scan(body, (agent_state, key), steps)
    return agent_state, key, _mean_metrics(outputs["update"]), _periodic_means(outputs)

  return jax.jit(chunk, static_argnums=5, donate_argnums=0)


def _make_online_chunk(phase: Phase):
  """``(agent_state, key, replay, block, count, first_update, num_updates, frozen, length)`` ->
  adds the block's ``count`` steps to the replay, then runs ``num_updates`` (<= length) updates,
  numbered from ``first_update``; ``phase.periodic`` runs (on the replay) before each update
  whose number is a multiple of its ``every``. Returns the state, key, replay, the updates'
  mean metrics and the periodic calls' mean metrics (with their count; empty without one)."""
  periodic = phase.periodic

  def chunk(agent_state, key, replay, block: Steps, count, first_update, num_updates, frozen,
            length: int):
    replay = replay_lib.add_steps(replay, block, count)
    if periodic is not None:
      refresh = lambda state: periodic.update(state, frozen, replay)
      skip = _skip_branch(refresh, agent_state)

    def body(carry, i):
      state, key = carry
      active = i < num_updates
      outputs = {}
      if periodic is not None:
        due = active & ((first_update + i) % periodic.every == 0)
        state, outputs["periodic"] = jax.lax.cond(due, refresh, skip, state)
        outputs["due"] = due
      key, sample_key = jax.random.split(key)
      batch = phase.sampler(replay, sample_key)
      new_state, metrics = phase.update(state, batch, frozen)
      state = jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new_state, state)
      outputs["update"] = {k: jnp.where(active, v, 0.0) for k, v in metrics.items()}
      return (state, key), outputs

    (agent_state, key), outputs = jax.lax.scan(body, (agent_state, key),
                                               jnp.arange(length, dtype=jnp.int32))
    denom = jnp.maximum(num_updates, 1).astype(jnp.float32)
    metrics = {k: jnp.sum(v) / denom for k, v in outputs["update"].items()}
    return agent_state, key, replay, metrics, _periodic_means(outputs)

  return jax.jit(chunk, static_argnums=8, donate_argnums=(0, 2))


def _rows(step, action_dim: int) -> List[dict]:
  """The 1 or 2 RLDS step rows an environment step completes (2 after a last step)."""
  rows = [dict(observation=step.observation, action=step.action, reward=step.reward,
               discount=step.discount, is_first=step.first, is_last=False, is_terminal=False)]
  if step.last:
    rows.append(dict(observation=step.next_observation,
                     action=np.zeros(action_dim, np.float32), reward=0.0, discount=0.0,
                     is_first=False, is_last=True, is_terminal=step.discount == 0.0))
  return rows


def _rows_to_block(rows: List[dict], size: int, obs_shapes, obs_dtypes, action_dim) -> Steps:
  """Packs step rows into a fixed-size block (padding rows are ignored by ``count``)."""
  def column(shape, dtype, get):
    out = np.zeros((size,) + tuple(shape), dtype)
    for i, row in enumerate(rows):
      out[i] = get(row)
    return out

  return Steps(
      observation={k: column(obs_shapes[k], obs_dtypes[k], lambda r, k=k: r["observation"][k])
                   for k in obs_shapes},
      action=column((action_dim,), np.float32, lambda r: r["action"]),
      reward=column((), np.float32, lambda r: r["reward"]),
      discount=column((), np.float32, lambda r: r["discount"]),
      is_first=column((), bool, lambda r: r["is_first"]),
      is_last=column((), bool, lambda r: r["is_last"]),
      is_terminal=column((), bool, lambda r: r["is_terminal"]))


def _check_phases(agent, phases: Sequence[Phase], data: Optional[DataSource],
                  env_factory: Optional[EnvFactory], loop: LoopConfig) -> None:
  for phase in phases:
    if phase.kind == "online" and loop.seeds is not None:
      raise ConfigError(f"phase '{phase.name}' collects online, which runs one seed per run; "
                        f"loop.seeds={list(loop.seeds)} vmaps offline phases only (run the "
                        "seeds one by one).")
    if phase.kind == "offline" and phase.sampler is not None and data is None:
      raise ValueError(f"phase '{phase.name}' trains offline but no data source was given "
                       "(set --config.dataset.path).")
    if phase.kind == "online":
      if env_factory is None:
        raise ValueError(f"phase '{phase.name}' collects online but no env_factory was given.")
      if agent.spec.frame_stack:
        raise ValueError(f"phase '{phase.name}': online phases store the frames they see; "
                         f"frame stacks {dict(agent.spec.frame_stack)} are for offline data "
                         "(set the frame stack to 1).")


def train(agent, *, workdir: str, loop: LoopConfig, data: Optional[DataSource] = None,
          env_factory: Optional[EnvFactory] = None, evaluator: Optional[Evaluator] = None,
          phases: Optional[Sequence[Phase]] = None,
          fingerprint: Optional[Dict[str, Any]] = None,
          mesh: Optional[Mesh] = None) -> TrainResult:
  """Runs every phase of ``agent`` (or ``phases``) to completion, resuming if possible.

  Args:
    agent: a learner (:mod:`worldmodels.training.agent`); agents also act.
    workdir: logs, checkpoints and results go here; an existing checkpoint is resumed.
    loop: the loop's settings.
    data: the data source of offline phases (built once; reusable across runs).
    env_factory: ``seed -> dm_env.Environment`` (single frames) for online phases and, when
      ``evaluator`` is None, evaluation of the agent's policy with its frame stacks.
    evaluator: ``agent state -> metrics`` called at each evaluation (e.g. many scenarios);
      default: ``loop.eval_episodes`` episodes in ``env_factory``'s environments (none without
      a factory).
    phases: overrides ``agent.phases()``.
    fingerprint: what makes this run (``worldmodels.provenance.fingerprint``): recorded in the
      workdir, and a workdir made by another fingerprint is refused instead of resumed.
    mesh: a device mesh (:func:`worldmodels.parallel.make_mesh`): the state is placed by the
      learner's ``partition_specs(state)`` (if it has one) and the seed axis, the data
      replicated, batches split over ``"data"``; checkpoints keep the shardings. None: one
      device.

  Returns:
    A :class:`TrainResult` (with ``loop.seeds``, its state has the leading seed axis).

  Raises:
    NonFiniteLossError: a loss became NaN or inf.
    LockError: another process trains in ``workdir``.
    FingerprintError: ``workdir`` holds another run.
    ValueError: an offline phase without data, an online phase without an environment.
  """
  os.makedirs(workdir, exist_ok=True)
  # One run is one process, or (jax.distributed) as many as there are, each with its lock.
  lock = (workdir if jax.process_count() == 1
          else f"{workdir.rstrip(os.sep)}.process{jax.process_index()}")
  with Lock(lock, "training"):
    if fingerprint is not None:
      for writer in (True, False):  # process 0 records it; the others then check it
        if parallel.is_primary() == writer:
          claim(workdir, fingerprint, "run", "give this run its own workdir (e.g. "
                "--config.workdir=<new path>)")
        parallel.barrier("fingerprint claimed")
    try:
      return _train(agent, workdir, loop, data, env_factory, evaluator, phases, mesh)
    except RunInterrupted:
      raise
    except KeyboardInterrupt:
      raise RunInterrupted(workdir) from None


def _initial_state(agent, seed: int):
  """``(agent state, loop key)`` of a run of ``seed``."""
  init_key, loop_key = jax.random.split(jax.random.PRNGKey(seed))
  return agent.init(init_key), loop_key


def _state_shardings(agent, carry: Dict[str, Any], mesh: Mesh, seeded: bool) -> Dict[str, Any]:
  """Where each leaf of the loop's carry lives on ``mesh``."""
  single = (jax.eval_shape(select_seed, carry["agent"], 0) if seeded else carry["agent"])
  specs = agent.partition_specs(single) if hasattr(agent, "partition_specs") else None
  out = {name: parallel.tree_shardings(mesh, value, seed_axis=seeded and name == "key")
         for name, value in carry.items() if name != "agent"}
  out["agent"] = parallel.tree_shardings(mesh, carry["agent"], specs, seed_axis=seeded)
  return out


def _train(agent, workdir: str, loop: LoopConfig, data: Optional[DataSource],
           env_factory: Optional[EnvFactory], evaluator: Optional[Evaluator],
           phases: Optional[Sequence[Phase]], mesh: Optional[Mesh]) -> TrainResult:
  phases = list(phases if phases is not None else agent.phases())
  _check_phases(agent, phases, data, env_factory, loop)
  for phase in phases:
    if phase.kind == "offline" and phase.sampler is not None:
      try:
        phase.sampler.prepare(data)
      except ValueError as error:  # e.g. sequences longer than every episode
        raise ConfigError(f"phase {phase.name!r} cannot sample its batches from the data: "
                          f"{error}") from None
  seeds = loop.seeds or (loop.seed,)
  seeded = loop.seeds is not None
  if evaluator is not None:
    evaluators = [evaluator] * len(seeds)
  elif env_factory is not None and loop.eval_episodes > 0:
    evaluators = [EnvironmentEvaluator(agent, env_factory, loop.eval_episodes,
                                       seed=10_000 + seed * 1000) for seed in seeds]
  else:
    evaluators = []

  logger = MetricsLogger(workdir, enabled=parallel.is_primary())
  checkpointer = Checkpointer(workdir, loop.max_to_keep)
  snapshotter = (Checkpointer(workdir, None, SNAPSHOT_DIRECTORY) if loop.snapshot_every > 0
                 else None)
  has_online = any(p.kind == "online" for p in phases)
  spec = getattr(agent, "spec", None)
  if seeded:  # each seed initialised as its own run would be, then stacked
    agent_state, loop_key = stack_seeds([_initial_state(agent, seed) for seed in seeds])
  else:
    agent_state, loop_key = _initial_state(agent, loop.seed)
  carry = {
      "agent": agent_state,
      "key": loop_key,
      "phase": np.asarray(0, np.int32),
      "phase_step": np.asarray(0, np.int32),
      "replay": (replay_lib.init_replay(loop.replay_capacity, spec.observation_shapes,
                                        spec.observation_dtypes, spec.action_dim)
                 if has_online else {}),
  }
  if has_online:  # episodes finished so far (a resume replays as many environment resets)
    carry["episodes"] = np.asarray(0, np.int32)
  if mesh is not None:  # on the mesh, where a restore also lands
    shardings = _state_shardings(agent, carry, mesh, seeded)
    carry = parallel.put_tree(carry, shardings)
  start, carry = checkpointer.restore_latest(carry)
  logger.truncate(start)  # the logs of the steps after the checkpoint are redone
  if start is not None:
    print(f"Resuming from checkpoint {start} in {checkpointer.directory} "
          f"(phase {int(carry['phase'])}, step {int(carry['phase_step'])}).", flush=True)
  # Fresh device buffers for every leaf: agents may alias leaves (target = online params at
  # init), and the chunk functions donate their inputs. (A move onto the mesh may keep the
  # input's buffer as one of its shards, so a copy on the mesh follows it.)
  if mesh is not None:
    carry = parallel.put_tree(carry, shardings)
  else:
    carry = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), carry)

  arrays = None
  if data is not None:
    arrays = (data.arrays if mesh is None
              else data.placed_arrays(parallel.replicated(mesh), parallel.put))
  evaluations: List[Dict[str, float]] = []
  global_offset = sum(p.num_steps for p in phases[:int(carry["phase"])])
  seed_state = ((lambda i: select_seed(carry["agent"], i)) if seeded
                else (lambda i: carry["agent"]))
  label = lambda i: f" (seed {seeds[i]})" if seeded else ""

  def run_eval(phase: Phase, step: int, progress: Progress) -> None:
    if not evaluators:
      return
    returns = []
    for i, evaluate_seed in enumerate(evaluators):
      result = evaluate_seed(seed_state(i))
      row = logger.write("eval", global_offset + step, phase.name,
                         {"seed": seeds[i], **result} if seeded else result)
      evaluations.append(row)
      if "return_mean" in result:
        returns.append((result["return_mean"], result.get("return_std", 0.0)))
    if returns and seeded:
      means = [r[0] for r in returns]
      progress.last_eval = f"{np.mean(means):.1f}±{np.std(means):.1f} over {len(means)} seeds"
    elif returns:
      progress.last_eval = f"{returns[0][0]:.1f}±{returns[0][1]:.1f}"

  def save(phase_index: int, step: int, done: bool) -> None:
    """Checkpoints after ``step`` updates of phase ``phase_index`` (a finished phase is saved
    as the start of the next one, so a resume never repeats it)."""
    carry["phase"] = np.asarray(phase_index + 1 if done else phase_index, np.int32)
    carry["phase_step"] = np.asarray(0 if done else step, np.int32)
    checkpointer.save(global_offset + step, carry)

  for phase_index in range(int(carry["phase"]), len(phases)):
    phase = phases[phase_index]
    step = int(carry["phase_step"]) if phase_index == int(carry["phase"]) else 0
    progress = Progress(phase.name + (f", {len(seeds)} seeds (means)" if seeded else ""),
                        phase.num_steps, start=step,
                        unit=phase.unit if phase.kind == "offline" else "env steps")
    frozen = phase.frozen(data) if phase.frozen is not None else None
    steps_per_chunk = phase.steps_per_chunk or loop.steps_per_chunk
    if frozen is not None and mesh is not None:
      frozen = parallel.put_tree(frozen, parallel.tree_shardings(mesh, frozen))
    if phase.kind == "offline":
      chunk_fn = make_offline_chunk(phase, seeded, mesh)
    else:
      chunk_fn = _make_online_chunk(phase)
      runner = EpisodeRunner(env_factory(loop.seed), agent, eval_mode=False)
      # Resuming: advance the environment's and the random actions' generators to where the
      # interrupted run was, so a run resumed at an episode boundary (steps_per_chunk a
      # multiple of the episode length) collects exactly what an uninterrupted one would.
      for _ in range(int(carry["episodes"])):
        runner.env.reset()
      runner.begin(jax.random.fold_in(carry["key"], step))
      rng = np.random.default_rng([loop.seed, phase_index, 0])
      rng.uniform(-1.0, 1.0, (min(step, phase.random_steps), spec.action_dim))
      episode_return = 0.0
    last_print = 0.0
    finished = False
    warned: set = set()  # metrics already reported as diverging in this phase
    while not finished:
      length = min(steps_per_chunk, phase.num_steps - step)
      if phase.kind == "offline":
        carry["agent"], carry["key"], metrics, periodic_metrics = chunk_fn(
            carry["agent"], carry["key"], arrays, frozen, np.int32(step), length)
        if periodic_metrics and float(periodic_metrics.pop(_CALLS)) > 0:
          metrics = {**metrics, **periodic_metrics}
      else:
        rows, returns = [], []
        act_key = jax.random.fold_in(carry["key"], step)
        for i in range(length):
          action = (rng.uniform(-1.0, 1.0, spec.action_dim).astype(np.float32)
                    if step + i < phase.random_steps else None)
          transition = runner.step(carry["agent"], act_key, i, action)
          rows.extend(_rows(transition, spec.action_dim))
          episode_return += transition.reward
          if transition.last:
            returns.append(episode_return)
            episode_return = 0.0
            runner.begin(jax.random.fold_in(act_key, i))
        block = _rows_to_block(rows, 2 * length, spec.observation_shapes,
                               spec.observation_dtypes, spec.action_dim)
        num_updates = int(np.clip(step + length - max(phase.learning_starts, step), 0, length))
        first_update = max(0, step - phase.learning_starts)
        carry["agent"], carry["key"], carry["replay"], metrics, periodic_metrics = chunk_fn(
            carry["agent"], carry["key"], carry["replay"], block, np.int32(len(rows)),
            np.int32(first_update), np.int32(num_updates), frozen, length)
        if periodic_metrics and float(periodic_metrics.pop(_CALLS)) > 0:
          metrics = {**metrics, **periodic_metrics}
        carry["episodes"] = np.asarray(int(carry["episodes"]) + len(returns), np.int32)
        if returns:
          metrics = dict(metrics, episode_return=float(np.mean(returns)))
      host = jax.tree_util.tree_map(np.asarray, metrics)
      per_seed = [{k: float(v[i] if seeded else v) for k, v in host.items()}
                  for i in range(len(seeds))]
      for i, seed_metrics in enumerate(per_seed):
        if phase.summary is not None:
          seed_metrics.update({k: float(v) for k, v in phase.summary(seed_state(i)).items()})
        _check_finite(seed_metrics, phase.name + label(i), step, step + length, checkpointer)
        _check_divergence(seed_metrics, phase.name + label(i), step, step + length, loop,
                          checkpointer, warned)
      previous, step = step, step + length
      finished = step == phase.num_steps or (phase.is_done is not None and all(
          bool(phase.is_done(seed_state(i))) for i in range(len(seeds))))
      for i, seed_metrics in enumerate(per_seed):
        logger.write("train", global_offset + step, phase.name,
                     {"seed": seeds[i], **seed_metrics} if seeded else seed_metrics)
      metrics = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
      crossed = lambda every: every > 0 and step // every > previous // every
      if crossed(loop.eval_every) or finished:
        run_eval(phase, step, progress)
      if (snapshotter is not None and (crossed(loop.snapshot_every) or finished)
          and global_offset + step not in snapshotter.all_steps()):  # a resume may redo steps
        snapshotter.save(global_offset + step, carry["agent"])
      if crossed(loop.checkpoint_every) or finished:
        save(phase_index, step, finished)
      if time.time() - last_print >= loop.log_every_seconds or finished:
        progress.update(step, {k: v for k, v in metrics.items() if "loss" in k or k in (
            "episode_return", "alpha")})
        last_print = time.time()
    if phase.kind == "online":
      runner.close()
    global_offset += phase.num_steps
    carry["phase_step"] = np.asarray(0, np.int32)

  checkpointer.close()
  if snapshotter is not None:
    snapshotter.close()
  replay_steps = None
  if has_online:
    try:
      replay_steps = replay_lib.replay_to_steps(carry["replay"])
    except ValueError as error:
      print(f"note: no replay dataset: {error}", flush=True)
  return TrainResult(carry["agent"], evaluations, replay_steps)
