"""The V-D4RL generation procedure (paper section 4.1, appendix A), rebuildable from a seed.

Stages, each resumable (a rerun continues where an interrupted one stopped) and deterministic
per seed:

1. **Behaviour training** (:func:`train_behaviour`): SAC on proprioceptive states with action
   repeat 2; an agent snapshot and a ``selection_episodes``-episode evaluation every 10,000
   frames; the whole replay (states plus MuJoCo physics states) saved as ``training_replay``.
2. **Selection** (:func:`select_policies`): medium = the first snapshot whose evaluation mean
   exceeds ``medium_threshold``; expert = the last (converged) snapshot. Written to
   ``selection.json`` and into every dataset's metadata.
3. **Datasets** (:func:`generate_dataset`): ``random`` (uniform actions), ``mixed`` (the
   replay of the medium agent when it stops: the last ``sizes.mixed`` transitions collected up
   to the medium snapshot), ``medium`` / ``expert`` (rollouts of the snapshot, actions sampled
   from the actor's Gaussian as in D4RL), ``medexp`` (medium then expert episodes).
   Observations: ``state`` (float32 ``[D]``) and ``physics`` (the MuJoCo state, float32
   ``[P]``), from which pixels are rendered.
4. **Pixels** (:func:`render_dataset`): a copy of a state dataset with ``pixels`` (uint8
   ``[S, S, 3]``, S = 64 for Offline DV2, 84 for DrQ+BC) rendered from the saved physics
   states, so a state dataset is re-rendered at any size without re-running a policy.

Directory layout under ``<root>/vd4rl/<domain>_<task>/`` (what the catalog resolves)::

  behaviour/             SAC workdir: checkpoints/, snapshots/<step>/, eval.jsonl,
                         training_replay/ (dataset), selection.json
  <kind>/state/          dataset with state + physics
  <kind>/<S>px/          the same episodes with pixels

Every dataset directory also holds ``CARD.md`` (its dataset card); the same fields are in
``metadata.json`` under ``extra.card``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional

import dm_env
import jax
import ml_collections
import numpy as np

from benchmarks.envs import env_spec, make_env, make_env_factory
from worldmodels.agents import make_agent
from worldmodels.data import DatasetError, load_dataset, read_metadata
from worldmodels.data.stats import format_statistics_table
from worldmodels.data.types import Steps
from worldmodels.data.writer import EpisodeWriter, write_dataset
from worldmodels.provenance import git_revision
from worldmodels.data.spec import DataSpec
from worldmodels.training.acting import (Episode, EpisodeRunner, compile_policy,
                                         episode_to_rlds)
from worldmodels.training.logging import Progress, read_jsonl
from worldmodels.training.loop import LoopConfig, restore_snapshot, train

from benchmarks.datasets.configs import DATASET_KINDS

BEHAVIOUR_DIR = "behaviour"
TRAINING_REPLAY = "training_replay"
SELECTION_FILE = "selection.json"
CARD_FILE = "CARD.md"
PARTIAL_SUFFIX = ".partial"
OBSERVATION_KEYS = ("state", "physics")
_KIND_IDS = {kind: index for index, kind in enumerate(DATASET_KINDS)}


class GenerationError(RuntimeError):
  """A generation stage cannot proceed (e.g. no snapshot reaches the medium threshold)."""


def task_directory(root: str, task: str) -> str:
  """``<root>/vd4rl/<domain>_<task>`` (V-D4RL names tasks with an underscore)."""
  return os.path.join(root, "vd4rl", task.replace("-", "_"))


def dataset_directory(root: str, task: str, kind: str, observation: str = "state") -> str:
  """Where dataset ``kind`` of ``task`` lives; ``observation`` is "state" or "<S>px"."""
  return os.path.join(task_directory(root, task), kind, observation)


def _env_factory(config: ml_collections.ConfigDict, **kwargs):
  return make_env_factory(config.task, action_repeat=config.action_repeat,
                          episode_length=config.episode_length, record_physics=True, **kwargs)


def _sac_agent(config: ml_collections.ConfigDict):
  probe = _env_factory(config)(0)
  spec = env_spec(probe)
  data_spec = DataSpec.from_environment(probe, task=config.task)
  probe.close()
  return make_agent("sac", config.sac, data_spec), spec


def _frames_to_steps(config: ml_collections.ConfigDict, frames: int) -> int:
  steps, remainder = divmod(frames, config.action_repeat)
  if remainder or steps % config.behaviour.steps_per_chunk:
    raise ValueError(
        f"behaviour.snapshot_every_frames={frames} must be a multiple of action_repeat x "
        f"behaviour.steps_per_chunk = {config.action_repeat * config.behaviour.steps_per_chunk}"
        " (snapshots are taken between chunks).")
  return steps


# ------------------------------------------------------------------------------------------
# 1. Behaviour policies.


def train_behaviour(config: ml_collections.ConfigDict, root: str) -> str:
  """Trains (or resumes) the SAC behaviour run of ``config.task``; returns its workdir.

  Snapshots every ``behaviour.snapshot_every_frames`` frames, each evaluated with
  ``behaviour.selection_episodes`` deterministic episodes (``eval.jsonl``); at the end the
  whole replay is written as the dataset ``behaviour/training_replay`` (state + physics).
  """
  workdir = os.path.join(task_directory(root, config.task), BEHAVIOUR_DIR)
  replay_path = os.path.join(workdir, TRAINING_REPLAY)
  if _is_complete(replay_path):
    return workdir
  every = _frames_to_steps(config, config.behaviour.snapshot_every_frames)
  agent, spec = _sac_agent(config)
  loop = LoopConfig(
      steps_per_chunk=config.behaviour.steps_per_chunk, eval_every=every,
      eval_episodes=config.behaviour.selection_episodes, checkpoint_every=every,
      snapshot_every=every, replay_capacity=config.behaviour.num_steps + 1000,
      seed=config.seed, max_to_keep=1, log_every_seconds=10.0)
  print(f"[behaviour] SAC on {config.task}: {config.behaviour.num_steps:,} env steps "
        f"({config.behaviour.num_steps * config.action_repeat:,} frames), a snapshot every "
        f"{config.behaviour.snapshot_every_frames:,} frames; workdir {workdir}", flush=True)
  result = train(agent, workdir=workdir, loop=loop, env_factory=_env_factory(config))
  if result.replay is None:
    raise GenerationError(f"the SAC run in {workdir} collected no complete episode; raise "
                          "--config.behaviour.num_steps.")
  _write_atomically(replay_path, lambda path: write_dataset(
      path, result.replay, task=config.task,
      behaviour_policy={"agent": "sac", "kind": "training replay",
                        "env_steps": int(config.behaviour.num_steps)},
      action_repeat=config.action_repeat, seed=config.seed,
      episodes_per_shard=config.episodes_per_shard))
  return workdir


def select_policies(config: ml_collections.ConfigDict, root: str) -> dict:
  """Picks the medium and expert snapshots from the behaviour run's evaluations.

  Returns (and writes to ``behaviour/selection.json``): ``medium`` and ``expert``, each with
  ``step`` (env steps), ``frames``, ``return_mean``, ``return_std``, and the rule and every
  snapshot evaluation.

  Raises:
    GenerationError: the run is missing, or no snapshot exceeds the threshold (the message
      gives the best one and what to change).
  """
  workdir = os.path.join(task_directory(root, config.task), BEHAVIOUR_DIR)
  eval_path = os.path.join(workdir, "eval.jsonl")
  if not os.path.exists(eval_path):
    raise GenerationError(f"no behaviour evaluations at {eval_path}; train the behaviour "
                          "policy first (generate runs it).")
  rows = _latest_rows(read_jsonl(eval_path))
  selection = choose_medium_and_expert(rows, config.behaviour.medium_threshold,
                                       config.action_repeat, workdir)
  selection["rule"] = (
      f"medium: first snapshot whose mean return over {config.behaviour.selection_episodes} "
      f"deterministic evaluation episodes exceeds {config.behaviour.medium_threshold:g}; "
      "expert: the last snapshot of the run")
  with open(os.path.join(workdir, SELECTION_FILE), "w") as f:
    json.dump(selection, f, indent=2)
  return selection


def _latest_rows(rows: List[dict]) -> List[dict]:
  """One evaluation per step (a resumed run may have evaluated a step twice: keep the last)."""
  by_step = {int(row["step"]): row for row in rows}
  return [by_step[step] for step in sorted(by_step)]


def choose_medium_and_expert(evaluations: List[dict], threshold: float, action_repeat: int,
                             source: str = "the behaviour run") -> dict:
  """The V-D4RL selection rule on snapshot evaluations.

  Args:
    evaluations: rows with ``step``, ``return_mean``, ``return_std`` in step order.
    threshold: medium = the first row with ``return_mean > threshold``.
    action_repeat: to report frames.
    source: named in errors.

  Returns:
    ``{"medium": row, "expert": row, "evaluations": [...]}`` (rows reduced to step, frames,
    return_mean, return_std).

  Raises:
    GenerationError: no evaluations, or none above the threshold.
  """
  if not evaluations:
    raise GenerationError(f"{source} has no snapshot evaluations.")
  table = [{"step": int(r["step"]), "frames": int(r["step"]) * action_repeat,
            "return_mean": float(r["return_mean"]), "return_std": float(r["return_std"])}
           for r in evaluations]
  above = [row for row in table if row["return_mean"] > threshold]
  if not above:
    best = max(table, key=lambda row: row["return_mean"])
    raise GenerationError(
        f"no snapshot of {source} scores above the medium threshold {threshold:g} (best: "
        f"{best['return_mean']:.1f} at step {best['step']}); train longer "
        "(behaviour.num_steps) or lower behaviour.medium_threshold, e.g. python -m "
        "benchmarks.datasets generate ... --set behaviour.medium_threshold=300 (the trained "
        "behaviour run is reused).")
  return {"medium": above[0], "expert": table[-1], "evaluations": table}


# ------------------------------------------------------------------------------------------
# 2. Rollout datasets (random, medium, expert).


def _episode_seed(seed: int, kind: str, episode: int) -> int:
  return int(np.random.SeedSequence([seed, _KIND_IDS[kind], episode]).generate_state(1)[0])


def collect_rollouts(config: ml_collections.ConfigDict, path: str, kind: str,
                     run_episode: Callable[[dm_env.Environment, int], Episode],
                     num_transitions: int,
                     behaviour_policy: dict, card: dict) -> dict:
  """Writes (or resumes) a dataset of whole episodes until it holds ``num_transitions``.

  Episode ``i`` uses the environment seed and action randomness of ``(seed, kind, i)`` only,
  so a resumed run writes exactly what an uninterrupted one would.

  Args:
    config: generation config.
    path: dataset directory.
    kind: dataset kind (seeds the episodes).
    run_episode: ``(environment, episode) -> recorded Episode`` on a fresh environment.
    num_transitions: stop after the episode that reaches this many transitions.
    behaviour_policy: stored in the metadata.
    card: dataset-card fields stored under ``extra.card``.

  Returns:
    The dataset's metadata.
  """
  env_factory = _env_factory(config)
  probe = env_factory(0)
  spec = env_spec(probe)
  probe.close()
  observation_spec = {key: (spec.obs_shapes[key], spec.obs_dtypes[key])
                      for key in OBSERVATION_KEYS}
  writer = EpisodeWriter(path, observation_spec=observation_spec, action_dim=spec.action_dim,
                         task=config.task, behaviour_policy=behaviour_policy,
                         action_repeat=config.action_repeat, seed=config.seed,
                         extra={"card": card}, episodes_per_shard=config.episodes_per_shard,
                         resume=True)
  transitions = writer.metadata["num_transitions"]
  progress = Progress(f"{kind} rollouts", num_transitions, start=transitions,
                      unit="transitions")
  last_print = 0.0
  while transitions < num_transitions:
    episode = writer.num_episodes
    env = env_factory(_episode_seed(config.seed, kind, episode))
    rows = episode_to_rlds(run_episode(env, episode).steps, OBSERVATION_KEYS)
    env.close()
    writer.add_episode(rows)
    transitions += rows["reward"].shape[0] - 1
    if time.time() - last_print > 10 or transitions >= num_transitions:
      progress.update(min(transitions, num_transitions), {"episodes": writer.num_episodes})
      last_print = time.time()
  writer.close()
  return writer.metadata


def _random_episodes(config: ml_collections.ConfigDict, action_min: np.ndarray,
                     action_max: np.ndarray) -> Callable[[dm_env.Environment, int], Episode]:
  """Uniform actions; episode ``i`` draws from its own generator (deterministic resume)."""

  def run_episode(env: dm_env.Environment, episode: int) -> Episode:
    rng = np.random.default_rng(_episode_seed(config.seed, "random", episode))
    return EpisodeRunner(env).run_episode(None, jax.random.PRNGKey(0), record=True,
                              actions=lambda observation, t: rng.uniform(
                                  action_min, action_max).astype(np.float32))

  return run_episode


def _snapshot_episodes(config: ml_collections.ConfigDict, root: str, kind: str,
                       step: int) -> Callable[[dm_env.Environment, int], Episode]:
  """The SAC snapshot at ``step`` acting on ``state`` (actions sampled unless
  ``stochastic_actions`` is off); episode ``i`` is keyed ``fold_in(fold_in(seed, kind), i)``."""
  agent, _ = _sac_agent(config)
  workdir = os.path.join(task_directory(root, config.task), BEHAVIOUR_DIR)
  state = restore_snapshot(agent, workdir, step)
  compiled = compile_policy(agent)
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), _KIND_IDS[kind])

  def run_episode(env: dm_env.Environment, episode: int) -> Episode:
    runner = EpisodeRunner(env, agent, eval_mode=not config.stochastic_actions,
                           compiled=compiled)
    return runner.run_episode(state, jax.random.fold_in(base, episode), record=True)

  return run_episode


# ------------------------------------------------------------------------------------------
# 3. Datasets built from other datasets (mixed, medexp) and pixels.


def mixed_episodes(replay: Steps, medium_step: int, size: int) -> tuple[Steps, dict]:
  """The replay of the medium agent when it stops.

  Episodes of the training replay (in collection order) that finished by env step
  ``medium_step``; of those, the most recent whole episodes holding at most ``size``
  transitions (a FIFO buffer of that capacity).

  Returns:
    ``(steps, info)`` with info ``episodes``, ``transitions``, ``first_episode``.
  """
  starts = np.flatnonzero(np.asarray(replay.is_first))
  ends = np.append(starts[1:], replay.num_steps)
  lengths = ends - starts - 1                      # transitions per episode
  finished_at = np.cumsum(lengths)                 # env steps when each episode ended
  available = int(np.searchsorted(finished_at, medium_step, side="right"))
  if available == 0:
    raise GenerationError(f"no episode of the training replay finished by the medium "
                          f"snapshot's step {medium_step}.")
  first = available
  total = 0
  while first > 0 and total + lengths[first - 1] <= size:
    first -= 1
    total += int(lengths[first])
  if first == available:
    raise GenerationError(f"sizes.mixed={size} is smaller than one episode "
                          f"({int(lengths[available - 1])} transitions).")
  span = slice(int(starts[first]), int(ends[available - 1]))
  steps = jax.tree_util.tree_map(lambda x: np.asarray(x)[span], replay)
  return steps, {"episodes": available - first, "transitions": total,
                 "first_episode": int(first)}


def concatenate_datasets(paths: List[str], observation_keys=OBSERVATION_KEYS) -> Steps:
  """The episodes of several datasets, back to back (same observation spec)."""
  parts = [load_dataset(p, observation_keys=observation_keys)[0] for p in paths]
  return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)


def render_dataset(source: str, destination: str, image_size: int, *,
                   camera_id: Optional[int] = None, episodes_per_shard: int = 16) -> dict:
  """Copies a state dataset (with ``physics``) adding ``pixels`` rendered from each step's
  saved physics state. Resumable: a rerun continues after the committed episodes.

  Args:
    source: dataset with ``state`` and ``physics`` observations.
    destination: new (or partially written) dataset directory.
    image_size: S of the uint8 ``[S, S, 3]`` frames (64: Offline DV2, 84: DrQ+BC).
    camera_id: MuJoCo camera (None: the environment's default, 2 for quadruped else 0).
    episodes_per_shard: shard size of the destination.

  Returns:
    The destination's metadata.

  Raises:
    DatasetError: the source has no ``physics`` observation or does not match a resumed
      destination.
  """
  metadata = read_metadata(source)
  if "physics" not in metadata["observation_spec"]:
    raise DatasetError(source, "has no 'physics' observation (MuJoCo states) to render from; "
                       "only datasets generated by this module (or with record_physics) can "
                       "be rendered.")
  steps, _ = load_dataset(source)
  env = make_env(metadata["task"], obs_type="pixels", image_size=image_size,
                 camera_id=camera_id, action_repeat=metadata["action_repeat"])
  spec = {key: (tuple(entry["shape"]), entry["dtype"])
          for key, entry in metadata["observation_spec"].items()}
  spec["pixels"] = ((image_size, image_size, 3), np.uint8)
  card = dict(metadata["extra"].get("card", {}), observation=f"{image_size}px",
              rendered_from=os.path.abspath(source), image_size=image_size,
              camera_id=env.camera_id)
  writer = EpisodeWriter(destination, observation_spec=spec, action_dim=metadata["action_dim"],
                         task=metadata["task"], behaviour_policy=metadata["behaviour_policy"],
                         action_repeat=metadata["action_repeat"], seed=metadata["seed"],
                         perturbation=metadata.get("perturbation"), extra={"card": card},
                         episodes_per_shard=episodes_per_shard, resume=True)
  starts = np.flatnonzero(steps.is_first)
  ends = np.append(starts[1:], steps.num_steps)
  done = int(ends[writer.num_committed_episodes - 1]) if writer.num_committed_episodes else 0
  progress = Progress(f"render {image_size}px", steps.num_steps, start=done, unit="frames")
  last_print = 0.0
  for episode in range(writer.num_committed_episodes, len(starts)):
    span = slice(int(starts[episode]), int(ends[episode]))
    episode_steps = jax.tree_util.tree_map(lambda x: np.asarray(x)[span], steps)
    frames = np.empty((span.stop - span.start, image_size, image_size, 3), np.uint8)
    for t, physics_state in enumerate(episode_steps.observation["physics"]):
      env.set_physics_state(physics_state)
      frames[t] = env.render()
    writer.add_episode({
        "observation": dict(episode_steps.observation, pixels=frames),
        **{key: getattr(episode_steps, key) for key in
           ("action", "reward", "discount", "is_first", "is_last", "is_terminal")}})
    if time.time() - last_print > 10 or episode == len(starts) - 1:
      progress.update(span.stop, {"episodes": episode + 1})
      last_print = time.time()
  env.close()
  writer.close()
  _write_card(destination, writer.metadata)
  return writer.metadata


# ------------------------------------------------------------------------------------------
# 4. The whole procedure.


def generate_dataset(config: ml_collections.ConfigDict, root: str, kind: str,
                     image_sizes=()) -> Dict[str, str]:
  """Builds dataset ``kind`` of ``config.task`` (and whatever it needs first).

  Args:
    config: generation config (``benchmarks.datasets.configs.get_config``).
    root: catalog root.
    kind: one of ``DATASET_KINDS``.
    image_sizes: also render pixels at these sizes (e.g. ``(64,)``, ``(84,)``).

  Returns:
    ``{"state": path, "<S>px": path, ...}``.
  """
  if kind not in DATASET_KINDS:
    raise ValueError(f"unknown dataset kind {kind!r}; choose one of {DATASET_KINDS}.")
  path = dataset_directory(root, config.task, kind)
  if not _is_complete(path):
    _build_state_dataset(config, root, kind, path)
  paths = {"state": path}
  for size in image_sizes:
    pixel_path = dataset_directory(root, config.task, kind, f"{int(size)}px")
    if not _is_complete(pixel_path):
      render_dataset(path, pixel_path + PARTIAL_SUFFIX, int(size),
                     episodes_per_shard=config.episodes_per_shard)
      _finish(pixel_path)
    paths[f"{int(size)}px"] = pixel_path
  return paths


def _build_state_dataset(config: ml_collections.ConfigDict, root: str, kind: str,
                         path: str) -> None:
  card = {"task": config.task, "kind": kind, "observation": "state", "seed": config.seed,
          "action_repeat": config.action_repeat, "code_version": git_revision(),
          "stochastic_actions": bool(config.stochastic_actions),
          "generator": "benchmarks.datasets.vd4rl (V-D4RL section 4.1)"}
  if kind == "random":
    probe = _env_factory(config)(0)
    spec = env_spec(probe)
    probe.close()
    card["policy"] = "uniform random actions"
    collect_rollouts(config, path + PARTIAL_SUFFIX, kind,
                     _random_episodes(config, spec.action_min, spec.action_max),
                     config.sizes.random, {"kind": "random"}, card)
    _finish(path)
    return

  train_behaviour(config, root)
  selection = select_policies(config, root)
  card["selection_rule"] = selection["rule"]
  card["medium_policy"] = selection["medium"]
  card["expert_policy"] = selection["expert"]
  if kind in ("medium", "expert"):
    chosen = selection[kind]
    card["policy"] = (f"SAC snapshot at {chosen['frames']:,} frames (evaluated return "
                      f"{chosen['return_mean']:.1f} ± {chosen['return_std']:.1f})")
    collect_rollouts(
        config, path + PARTIAL_SUFFIX, kind,
        _snapshot_episodes(config, root, kind, chosen["step"]),
        config.sizes[kind],
        {"agent": "sac", "kind": kind, "snapshot_step": chosen["step"],
         "snapshot_frames": chosen["frames"], "evaluated_return_mean": chosen["return_mean"],
         "evaluated_return_std": chosen["return_std"],
         "stochastic_actions": bool(config.stochastic_actions)}, card)
    _finish(path)
    return

  if kind == "mixed":
    workdir = os.path.join(task_directory(root, config.task), BEHAVIOUR_DIR)
    replay, _ = load_dataset(os.path.join(workdir, TRAINING_REPLAY))
    steps, info = mixed_episodes(replay, selection["medium"]["step"], config.sizes.mixed)
    card["policy"] = (f"SAC replay up to the medium snapshot ({selection['medium']['frames']:,}"
                      f" frames): episodes {info['first_episode']}.."
                      f"{info['first_episode'] + info['episodes'] - 1} of the training run")
    behaviour = {"agent": "sac", "kind": "mixed", "replay_until_step": selection["medium"]["step"],
                 **info}
  else:  # medexp
    parts = [generate_dataset(config, root, part)["state"] for part in ("medium", "expert")]
    steps = concatenate_datasets(parts)
    card["policy"] = "medium episodes followed by expert episodes"
    behaviour = {"kind": "medexp", "sources": [os.path.abspath(p) for p in parts]}
  _write_atomically(path, lambda tmp: write_dataset(
      tmp, steps, task=config.task, behaviour_policy=behaviour,
      action_repeat=config.action_repeat, seed=config.seed, extra={"card": card},
      episodes_per_shard=config.episodes_per_shard))


def generate(config: ml_collections.ConfigDict, root: str, kinds=DATASET_KINDS,
             image_sizes=()) -> Dict[str, Dict[str, str]]:
  """Builds several dataset kinds of one task; prints each statistics table."""
  built = {}
  for kind in kinds:
    built[kind] = generate_dataset(config, root, kind, image_sizes)
    metadata = read_metadata(built[kind]["state"])
    print(format_statistics_table(metadata["statistics"], f"{config.task} {kind}"), flush=True)
  return built


# ------------------------------------------------------------------------------------------
# Completion, atomic writes and cards.


def _is_complete(path: str) -> bool:
  """A finished dataset: the directory exists (partial work lives under ``.partial``)."""
  return os.path.isdir(path) and os.path.isfile(os.path.join(path, "metadata.json"))


def _finish(path: str) -> None:
  """Moves a finished ``<path>.partial`` dataset to ``path`` and writes its card."""
  os.replace(path + PARTIAL_SUFFIX, path)
  _write_card(path, read_metadata(path))


def _write_atomically(path: str, write: Callable[[str], Any]) -> None:
  """Runs ``write(tmp)`` on a fresh temporary directory, then renames it to ``path``.

  Only our own ``.partial`` directory is ever removed; an existing ``path`` is never touched.
  """
  if os.path.exists(path):
    raise DatasetError(path, "already exists; datasets are never overwritten.")
  temp = path + PARTIAL_SUFFIX
  shutil.rmtree(temp, ignore_errors=True)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write(temp)
  os.replace(temp, path)
  _write_card(path, read_metadata(path))


def dataset_card(metadata: dict) -> str:
  """The Markdown dataset card of a generated dataset (from its metadata)."""
  card = metadata["extra"].get("card", {})
  stats = metadata["statistics"]
  lines = [f"# {card.get('task', metadata['task'])} / {card.get('kind', '?')} / "
           f"{card.get('observation', 'state')}", ""]
  fields = [
      ("Task", metadata["task"]), ("Behaviour", card.get("policy", metadata["behaviour_policy"])),
      ("Seed", metadata["seed"]), ("Action repeat", metadata["action_repeat"]),
      ("Transitions", f"{metadata['num_transitions']:,}"),
      ("Episodes", f"{metadata['num_episodes']:,}"),
      ("Observations", ", ".join(f"{k} {v['dtype']}{v['shape']}"
                                 for k, v in metadata["observation_spec"].items())),
      ("Actions", "sampled from the actor's Gaussian" if card.get("stochastic_actions", True)
       else "the actor's mode (deterministic)"),
      ("Code version", card.get("code_version", "unknown")),
      ("Generator", card.get("generator", "-")),
  ]
  for name in ("medium_policy", "expert_policy"):
    if name in card:
      row = card[name]
      fields.append((name.replace("_", " ").capitalize(),
                     f"snapshot at step {row['step']:,} ({row['frames']:,} frames), evaluated "
                     f"return {row['return_mean']:.1f} ± {row['return_std']:.1f}"))
  if "selection_rule" in card:
    fields.append(("Selection rule", card["selection_rule"]))
  if "rendered_from" in card:
    fields.append(("Pixels", f"{card['image_size']}x{card['image_size']} RGB, camera "
                             f"{card['camera_id']}, rendered from {card['rendered_from']}"))
  lines += [f"- **{name}**: {value}" for name, value in fields]
  lines += ["", "## Return statistics (V-D4RL appendix A layout)", "",
            format_statistics_table(stats, f"{card.get('kind', metadata['task'])}"), ""]
  return "\n".join(lines)


def _write_card(path: str, metadata: dict) -> None:
  with open(os.path.join(path, CARD_FILE), "w", encoding="utf-8") as f:
    f.write(dataset_card(metadata))
