"""The V-D4RL generation procedure (paper section 4.1, appendix A), rebuildable from a seed.

The D4RL-style presets of the gymnasium tasks (``benchmarks.datasets.configs``) run the same
stages with D4RL's conventions (action repeat 1, terminations, medium at a third of the
expert's return); their cards list how each dataset differs from D4RL's
(:func:`d4rl_differences`).

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

Modules, one per part of the procedure: ``behaviour`` (stages 1 and 2, the SAC helpers and
:class:`GenerationError`), ``rollouts`` (stage 3's state datasets), ``render`` (stage 4),
``card`` (dataset cards, completion checks and atomic writes) and ``paths`` (the layout above).
This package runs the whole procedure and re-exports their names.
"""

from __future__ import annotations

import os
from typing import Dict

import ml_collections

from benchmarks.envs import env_spec
from worldmodels.data import load_dataset, read_metadata
from worldmodels.data.stats import format_statistics_table
from worldmodels.data.writer import write_dataset
from worldmodels.io import Lock
from worldmodels.provenance import git_revision

from benchmarks.datasets.configs import DATASET_KINDS, is_d4rl_task
from benchmarks.datasets.vd4rl.behaviour import (GenerationError, _env_factory,
                                                 choose_medium_and_expert, select_policies,
                                                 train_behaviour)
from benchmarks.datasets.vd4rl.card import (_finish, _is_complete, _write_atomically,
                                            generation_fingerprint,
                                            dataset_card)
from benchmarks.datasets.vd4rl.paths import (BEHAVIOUR_DIR, CARD_FILE, PARTIAL_SUFFIX,
                                             SELECTION_FILE, TRAINING_REPLAY, dataset_directory,
                                             generated_dataset_directory, generation_directory,
                                             task_directory)
from benchmarks.datasets.vd4rl.render import render_dataset
from benchmarks.datasets.vd4rl.rollouts import (OBSERVATION_KEYS, _random_episodes,
                                                _snapshot_episodes, collect_rollouts,
                                                concatenate_datasets, mixed_episodes)

__all__ = [
    "generation_fingerprint",
    "BEHAVIOUR_DIR",
    "CARD_FILE",
    "GenerationError",
    "OBSERVATION_KEYS",
    "PARTIAL_SUFFIX",
    "SELECTION_FILE",
    "TRAINING_REPLAY",
    "choose_medium_and_expert",
    "collect_rollouts",
    "concatenate_datasets",
    "d4rl_differences",
    "dataset_card",
    "dataset_directory",
    "generated_dataset_directory",
    "generation_directory",
    "generate",
    "generate_dataset",
    "mixed_episodes",
    "render_dataset",
    "select_policies",
    "task_directory",
    "train_behaviour",
]


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
  if config.get("scenario") is not None and image_sizes:
    raise ValueError("scenario datasets are state-only: pixels are rendered under default "
                     "dynamics, which a scenario's torso scaling changes.")
  path = generated_dataset_directory(root, config, kind)
  fingerprint = generation_fingerprint(config, kind)
  with Lock(path, f"generating {kind}"):
    if not _is_complete(path, fingerprint):
      _build_state_dataset(config, root, kind, path, fingerprint)
  paths = {"state": path}
  for size in image_sizes:
    pixel_path = generated_dataset_directory(root, config, kind, f"{int(size)}px")
    pixel_fingerprint = dict(fingerprint, image_size=int(size))
    with Lock(pixel_path, f"rendering {kind}"):
      if not _is_complete(pixel_path, pixel_fingerprint):
        render_dataset(path, pixel_path + PARTIAL_SUFFIX, int(size),
                       episodes_per_shard=config.episodes_per_shard,
                       fingerprint=pixel_fingerprint)
        _finish(pixel_path)
    paths[f"{int(size)}px"] = pixel_path
  return paths


def _build_state_dataset(config: ml_collections.ConfigDict, root: str, kind: str,
                         path: str, fingerprint: dict) -> None:
  card = {"task": config.task, "kind": kind, "observation": "state", "seed": config.seed,
          "action_repeat": config.action_repeat, "code_version": git_revision(),
          "stochastic_actions": bool(config.stochastic_actions),
          "generator": "benchmarks.datasets.vd4rl (V-D4RL section 4.1)"}
  if is_d4rl_task(config.task):
    card["generator"] = ("benchmarks.datasets.vd4rl with D4RL's conventions "
                         "(benchmarks.datasets.configs, D4RL-style presets)")
    card["differences_from_d4rl"] = d4rl_differences(config, kind)
  if config.get("scenario") is not None:
    card["scenario"] = config.scenario.to_dict()
  if kind == "random":
    probe = _env_factory(config)(0)
    spec = env_spec(probe)
    probe.close()
    card["policy"] = "uniform random actions"
    collect_rollouts(config, path + PARTIAL_SUFFIX, kind,
                     _random_episodes(config, spec.action_min, spec.action_max),
                     config.sizes.random, {"kind": "random"}, card, fingerprint)
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
         "stochastic_actions": bool(config.stochastic_actions)}, card, fingerprint)
    _finish(path)
    return

  if kind == "mixed":
    workdir = os.path.join(generation_directory(root, config), BEHAVIOUR_DIR)
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
      action_repeat=config.action_repeat, seed=config.seed,
      extra={"card": card, "fingerprint": fingerprint},
      episodes_per_shard=config.episodes_per_shard))


def d4rl_differences(config: ml_collections.ConfigDict, kind: str) -> str:
  """How dataset ``kind`` of a D4RL-style config differs from D4RL's (Fu et al., 2020) dataset
  of the same name: the dataset card's "Differences from D4RL"."""
  notes = [f"gymnasium {config.task} (MuJoCo {_mujoco_version()}) instead of gym's v2 tasks on "
           "mujoco-py"]
  sizes = {"mixed": None, "medexp": config.sizes.medium + config.sizes.expert}
  size = sizes.get(kind, config.sizes.get(kind))
  if size is not None and size != 1_000_000 * (2 if kind == "medexp" else 1):
    notes.append(f"{size:,} transitions instead of D4RL's "
                 f"{2_000_000 if kind == 'medexp' else 1_000_000:,}")
  if kind == "random":
    notes.append("uniform random actions (D4RL rolls out a randomly initialised policy)")
  if kind != "random":
    notes.append(f"behaviour SAC of this project ({config.behaviour.num_steps:,} environment "
                 "steps, snapshots every "
                 f"{config.behaviour.snapshot_every_frames // config.action_repeat:,} steps); "
                 "its expert is the last snapshot, not D4RL's policy")
  if kind in ("medium", "mixed", "medexp"):
    rule = ("the first snapshot whose evaluated return reaches "
            f"{config.behaviour.medium_fraction_of_expert:.3g} of the expert's"
            if config.behaviour.medium_threshold is None else
            f"the first snapshot above {config.behaviour.medium_threshold:g}")
    notes.append(f"medium policy: {rule}")
  if kind == "mixed":
    notes.append("D4RL's medium-replay: every episode of the replay up to the medium snapshot")
  return "; ".join(notes) + "."


def _mujoco_version() -> str:
  import mujoco  # pylint: disable=import-outside-toplevel
  return mujoco.__version__


def generate(config: ml_collections.ConfigDict, root: str, kinds=DATASET_KINDS,
             image_sizes=()) -> Dict[str, Dict[str, str]]:
  """Builds several dataset kinds of one task; prints each statistics table."""
  built = {}
  for kind in kinds:
    built[kind] = generate_dataset(config, root, kind, image_sizes)
    metadata = read_metadata(built[kind]["state"])
    print(format_statistics_table(metadata["statistics"], f"{config.task} {kind}"), flush=True)
  return built
