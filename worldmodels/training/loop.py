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
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.data.source import DataSource
from worldmodels.data.types import Steps
from worldmodels.training import replay as replay_lib
from worldmodels.training.acting import (EnvFactory, EnvironmentEvaluator, EpisodeRunner,
                                         Evaluator)
from worldmodels.training.agent import Phase
from worldmodels.training.checkpoint import Checkpointer
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

  def __post_init__(self):
    if self.on_divergence not in ("warn", "stop"):
      raise ConfigError(f"loop.on_divergence must be 'warn' or 'stop', got "
                        f"{self.on_divergence!r}.")


SNAPSHOT_DIRECTORY = "snapshots"


def restore_snapshot(agent, workdir: str, step: int, key: jax.Array | None = None) -> Any:
  """The agent state saved at ``step`` by a run with ``LoopConfig.snapshot_every``.

  Args:
    agent: an agent built like the one that was trained (its ``init`` gives the structure).
    workdir: the run's working directory.
    step: a snapshot step (see :func:`snapshot_steps`).
    key: key for the structure-giving ``init`` (its values are discarded).

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


def _mean_metrics(metrics: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  return {k: jnp.mean(v) for k, v in metrics.items()}


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


def _make_offline_chunk(phase: Phase):
  """``(agent_state, key, arrays, frozen, length) -> (agent_state, key, mean metrics)``."""

  def chunk(agent_state, key, arrays, frozen, length: int):
    def body(carry, _):
      state, key = carry
      key, sample_key = jax.random.split(key)
      batch = phase.sampler(arrays, sample_key) if phase.sampler is not None else None
      state, metrics = phase.update(state, batch, frozen)
      return (state, key), metrics

    (agent_state, key), metrics = jax.lax.scan(body, (agent_state, key), None, length=length)
    return agent_state, key, _mean_metrics(metrics)

  return jax.jit(chunk, static_argnums=4, donate_argnums=0)


def _make_online_chunk(phase: Phase):
  """``(agent_state, key, replay, block, count, num_updates, frozen, length)`` -> adds the
  block's ``count`` steps to the replay, then runs ``num_updates`` (<= length) updates."""

  def chunk(agent_state, key, replay, block: Steps, count, num_updates, frozen, length: int):
    replay = replay_lib.add_steps(replay, block, count)

    def body(carry, i):
      state, key = carry
      key, sample_key = jax.random.split(key)
      batch = phase.sampler(replay, sample_key)
      new_state, metrics = phase.update(state, batch, frozen)
      active = i < num_updates
      state = jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new_state, state)
      metrics = {k: jnp.where(active, v, 0.0) for k, v in metrics.items()}
      return (state, key), metrics

    (agent_state, key), metrics = jax.lax.scan(body, (agent_state, key),
                                               jnp.arange(length, dtype=jnp.int32))
    denom = jnp.maximum(num_updates, 1).astype(jnp.float32)
    return agent_state, key, replay, {k: jnp.sum(v) / denom for k, v in metrics.items()}

  return jax.jit(chunk, static_argnums=7, donate_argnums=(0, 2))


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
                  env_factory: Optional[EnvFactory]) -> None:
  for phase in phases:
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
          fingerprint: Optional[Dict[str, Any]] = None) -> TrainResult:
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

  Returns:
    A :class:`TrainResult`.

  Raises:
    NonFiniteLossError: a loss became NaN or inf.
    LockError: another process trains in ``workdir``.
    FingerprintError: ``workdir`` holds another run.
    ValueError: an offline phase without data, an online phase without an environment.
  """
  os.makedirs(workdir, exist_ok=True)
  with Lock(workdir, "training"):
    if fingerprint is not None:
      claim(workdir, fingerprint, "run", "give this run its own workdir (e.g. "
            "--config.workdir=<new path>)")
    try:
      return _train(agent, workdir, loop, data, env_factory, evaluator, phases)
    except RunInterrupted:
      raise
    except KeyboardInterrupt:
      raise RunInterrupted(workdir) from None


def _train(agent, workdir: str, loop: LoopConfig, data: Optional[DataSource],
           env_factory: Optional[EnvFactory], evaluator: Optional[Evaluator],
           phases: Optional[Sequence[Phase]]) -> TrainResult:
  phases = list(phases if phases is not None else agent.phases())
  _check_phases(agent, phases, data, env_factory)
  for phase in phases:
    if phase.kind == "offline" and phase.sampler is not None:
      phase.sampler.prepare(data)
  if evaluator is None and env_factory is not None and loop.eval_episodes > 0:
    evaluator = EnvironmentEvaluator(agent, env_factory, loop.eval_episodes,
                                     seed=10_000 + loop.seed * 1000)

  logger = MetricsLogger(workdir)
  checkpointer = Checkpointer(workdir, loop.max_to_keep)
  snapshotter = (Checkpointer(workdir, None, SNAPSHOT_DIRECTORY) if loop.snapshot_every > 0
                 else None)
  has_online = any(p.kind == "online" for p in phases)
  spec = getattr(agent, "spec", None)
  init_key, loop_key = jax.random.split(jax.random.PRNGKey(loop.seed))
  carry = {
      "agent": agent.init(init_key),
      "key": loop_key,
      "phase": np.asarray(0, np.int32),
      "phase_step": np.asarray(0, np.int32),
      "replay": (replay_lib.init_replay(loop.replay_capacity, spec.observation_shapes,
                                        spec.observation_dtypes, spec.action_dim)
                 if has_online else {}),
  }
  if has_online:  # episodes finished so far (a resume replays as many environment resets)
    carry["episodes"] = np.asarray(0, np.int32)
  start, carry = checkpointer.restore_latest(carry)
  logger.truncate(start)  # the logs of the steps after the checkpoint are redone
  if start is not None:
    print(f"Resuming from checkpoint {start} in {checkpointer.directory} "
          f"(phase {int(carry['phase'])}, step {int(carry['phase_step'])}).", flush=True)
  # Fresh device buffers for every leaf: agents may alias leaves (target = online params at
  # init), and the chunk functions donate their inputs.
  carry = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), carry)

  arrays = data.arrays if data is not None else None
  evaluations: List[Dict[str, float]] = []
  global_offset = sum(p.num_steps for p in phases[:int(carry["phase"])])

  def run_eval(phase: Phase, step: int, progress: Progress) -> None:
    if evaluator is None:
      return
    result = evaluator(carry["agent"])
    row = logger.write("eval", global_offset + step, phase.name, result)
    evaluations.append(row)
    if "return_mean" in result:
      progress.last_eval = f"{result['return_mean']:.1f}±{result.get('return_std', 0.0):.1f}"

  def save(phase_index: int, step: int, done: bool) -> None:
    """Checkpoints after ``step`` updates of phase ``phase_index`` (a finished phase is saved
    as the start of the next one, so a resume never repeats it)."""
    carry["phase"] = np.asarray(phase_index + 1 if done else phase_index, np.int32)
    carry["phase_step"] = np.asarray(0 if done else step, np.int32)
    checkpointer.save(global_offset + step, carry)

  for phase_index in range(int(carry["phase"]), len(phases)):
    phase = phases[phase_index]
    step = int(carry["phase_step"]) if phase_index == int(carry["phase"]) else 0
    progress = Progress(phase.name, phase.num_steps, start=step,
                        unit=phase.unit if phase.kind == "offline" else "env steps")
    frozen = phase.frozen(data) if phase.frozen is not None else None
    steps_per_chunk = phase.steps_per_chunk or loop.steps_per_chunk
    if phase.kind == "offline":
      chunk_fn = _make_offline_chunk(phase)
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
        carry["agent"], carry["key"], metrics = chunk_fn(carry["agent"], carry["key"], arrays,
                                                         frozen, length)
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
        carry["agent"], carry["key"], carry["replay"], metrics = chunk_fn(
            carry["agent"], carry["key"], carry["replay"], block, np.int32(len(rows)),
            np.int32(num_updates), frozen, length)
        carry["episodes"] = np.asarray(int(carry["episodes"]) + len(returns), np.int32)
        if returns:
          metrics = dict(metrics, episode_return=float(np.mean(returns)))
      metrics = {k: float(v) for k, v in metrics.items()}
      if phase.summary is not None:
        metrics.update({k: float(v) for k, v in phase.summary(carry["agent"]).items()})
      _check_finite(metrics, phase.name, step, step + length, checkpointer)
      _check_divergence(metrics, phase.name, step, step + length, loop, checkpointer, warned)
      previous, step = step, step + length
      finished = step == phase.num_steps or (phase.is_done is not None
                                             and bool(phase.is_done(carry["agent"])))
      logger.write("train", global_offset + step, phase.name, metrics)
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
