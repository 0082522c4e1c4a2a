"""Stages 1 and 2: the SAC behaviour run and the selection of its medium and expert snapshots."""

from __future__ import annotations

import json
import os
from typing import List

import ml_collections

from benchmarks.envs import env_spec, make_env_factory, make_gym_env_factory
from worldmodels.io import atomic_text
from worldmodels import provenance
from worldmodels.agents import make_agent
from worldmodels.data import read_metadata
from worldmodels.data.spec import DataSpec
from worldmodels.data.writer import write_dataset
from worldmodels.training.logging import read_jsonl
from worldmodels.training.loop import LoopConfig, train

from benchmarks.datasets.configs import is_d4rl_task
from benchmarks.datasets.vd4rl.card import (_is_complete, _write_atomically,
                                            generation_fingerprint)
from benchmarks.datasets.vd4rl.paths import (BEHAVIOUR_DIR, SELECTION_FILE, TRAINING_REPLAY,
                                             generation_directory)


class GenerationError(RuntimeError):
  """A generation stage cannot proceed (e.g. no snapshot reaches the medium threshold)."""


def _env_factory(config: ml_collections.ConfigDict, **kwargs):
  """``seed -> env`` of the generation: the DMC task, its ``config.scenario`` (MrCoM's torso
  scaling, target-speed reward and observation function; ``benchmarks.scenarios``), or the
  gymnasium task of a D4RL-style preset."""
  settings = dict(action_repeat=config.action_repeat, episode_length=config.episode_length,
                  record_physics=True, **kwargs)
  if is_d4rl_task(config.task):
    return make_gym_env_factory(config.task, **settings)
  scenario = config.get("scenario")
  if scenario is None:
    return make_env_factory(config.task, **settings)
  from benchmarks.scenarios.suite import Scenario  # pylint: disable=import-outside-toplevel
  fields = Scenario(config.task, scenario.torso_length, scenario.torso_size, scenario.rho,
                    scenario.observation, scenario.seed)
  return lambda seed: fields.make_env(scenario.v_max, seed=seed, **settings)


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


def train_behaviour(config: ml_collections.ConfigDict, root: str) -> str:
  """Trains (or resumes) the SAC behaviour run of ``config.task``; returns its workdir.

  Snapshots every ``behaviour.snapshot_every_frames`` frames, each evaluated with
  ``behaviour.selection_episodes`` deterministic episodes (``eval.jsonl``); at the end the
  whole replay is written as the dataset ``behaviour/training_replay`` (state + physics).
  """
  workdir = os.path.join(generation_directory(root, config), BEHAVIOUR_DIR)
  replay_path = os.path.join(workdir, TRAINING_REPLAY)
  fingerprint = generation_fingerprint(config, "training_replay")
  if _is_complete(replay_path, fingerprint, legacy=_legacy_replay_fingerprint(replay_path)):
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
  result = train(agent, workdir=workdir, loop=loop, env_factory=_env_factory(config),
                 fingerprint=provenance.fingerprint(generation=fingerprint))
  if result.replay is None:
    raise GenerationError(f"the SAC run in {workdir} collected no complete episode; raise "
                          "--config.behaviour.num_steps.")
  _write_atomically(replay_path, lambda path: write_dataset(
      path, result.replay, task=config.task,
      behaviour_policy={"agent": "sac", "kind": "training replay",
                        "env_steps": int(config.behaviour.num_steps)},
      action_repeat=config.action_repeat, seed=config.seed,
      extra={"fingerprint": fingerprint}, episodes_per_shard=config.episodes_per_shard))
  return workdir


def _legacy_replay_fingerprint(replay_path: str) -> dict | None:
  """A finished training replay's recorded fingerprint in the form written before the medium
  threshold left it (which did not change the run), without the threshold; None otherwise."""
  if not os.path.isfile(os.path.join(replay_path, "metadata.json")):
    return None
  recorded = read_metadata(replay_path)["extra"].get("fingerprint") or {}
  behaviour = recorded.get("behaviour")
  if not isinstance(behaviour, dict) or "medium_threshold" not in behaviour:
    return None
  return {**recorded, "behaviour": {k: v for k, v in behaviour.items()
                                    if k != "medium_threshold"}}


def select_policies(config: ml_collections.ConfigDict, root: str) -> dict:
  """Picks the medium and expert snapshots from the behaviour run's evaluations.

  Returns (and writes to ``behaviour/selection.json``): ``medium`` and ``expert``, each with
  ``step`` (env steps), ``frames``, ``return_mean``, ``return_std``, and the rule and every
  snapshot evaluation.

  Raises:
    GenerationError: the run is missing, or no snapshot exceeds the threshold (the message
      gives the best one and what to change).
  """
  workdir = os.path.join(generation_directory(root, config), BEHAVIOUR_DIR)
  eval_path = os.path.join(workdir, "eval.jsonl")
  if not os.path.exists(eval_path):
    raise GenerationError(f"no behaviour evaluations at {eval_path}; train the behaviour "
                          "policy first (generate runs it).")
  rows = _latest_rows(read_jsonl(eval_path))
  fraction = config.behaviour.get("medium_fraction_of_expert")
  threshold = config.behaviour.medium_threshold
  selection = choose_medium_and_expert(rows, threshold, config.action_repeat, workdir,
                                       fraction_of_expert=fraction)
  episodes = config.behaviour.selection_episodes
  if threshold is None:
    selection["rule"] = (
        f"medium: first snapshot whose mean return over {episodes} deterministic evaluation "
        f"episodes reaches {fraction:.3g} of the expert's ({selection['threshold']:.1f}, "
        "D4RL); expert: the last snapshot of the run")
  else:
    selection["rule"] = (
        f"medium: first snapshot whose mean return over {episodes} deterministic evaluation "
        f"episodes exceeds {threshold:g}; expert: the last snapshot of the run")
  with atomic_text(os.path.join(workdir, SELECTION_FILE)) as f:
    json.dump(selection, f, indent=2)
  return selection


def _latest_rows(rows: List[dict]) -> List[dict]:
  """One evaluation per step (a resumed run may have evaluated a step twice: keep the last)."""
  by_step = {int(row["step"]): row for row in rows}
  return [by_step[step] for step in sorted(by_step)]


def choose_medium_and_expert(evaluations: List[dict], threshold: float | None,
                             action_repeat: int, source: str = "the behaviour run", *,
                             fraction_of_expert: float | None = None) -> dict:
  """The V-D4RL (or D4RL) selection rule on snapshot evaluations.

  Args:
    evaluations: rows with ``step``, ``return_mean``, ``return_std`` in step order.
    threshold: medium = the first row with ``return_mean > threshold`` (V-D4RL); None: the
      first row with ``return_mean >= fraction_of_expert x`` the expert's (D4RL's medium, a
      third of the expert).
    action_repeat: to report frames.
    source: named in errors.
    fraction_of_expert: used when ``threshold`` is None.

  Returns:
    ``{"medium": row, "expert": row, "threshold": float, "evaluations": [...]}`` (rows reduced
    to step, frames, return_mean, return_std).

  Raises:
    GenerationError: no evaluations, none above the threshold, or (fraction rule) an expert
      whose return is not positive.
  """
  if not evaluations:
    raise GenerationError(f"{source} has no snapshot evaluations.")
  table = [{"step": int(r["step"]), "frames": int(r["step"]) * action_repeat,
            "return_mean": float(r["return_mean"]), "return_std": float(r["return_std"])}
           for r in evaluations]
  expert = table[-1]
  if threshold is None:
    if fraction_of_expert is None:
      raise ValueError("choose_medium_and_expert needs a threshold or a fraction_of_expert.")
    if expert["return_mean"] <= 0:
      raise GenerationError(
          f"the expert of {source} (step {expert['step']}) returns {expert['return_mean']:.1f};"
          f" a medium at {fraction_of_expert:.3g} of it needs a positive expert return. Train "
          "longer (behaviour.num_steps) or set behaviour.medium_threshold.")
    threshold = fraction_of_expert * expert["return_mean"]
    above = [row for row in table if row["return_mean"] >= threshold]
  else:
    above = [row for row in table if row["return_mean"] > threshold]
  if not above:
    best = max(table, key=lambda row: row["return_mean"])
    raise GenerationError(
        f"no snapshot of {source} scores above the medium threshold {threshold:g} (best: "
        f"{best['return_mean']:.1f} at step {best['step']}); train longer "
        "(behaviour.num_steps) or lower behaviour.medium_threshold, e.g. python -m "
        "benchmarks.datasets generate ... --set behaviour.medium_threshold=300 (the trained "
        "behaviour run is reused).")
  return {"medium": above[0], "expert": expert, "threshold": float(threshold),
          "evaluations": table}
