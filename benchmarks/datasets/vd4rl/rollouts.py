"""Stage 3: the state datasets, rolled out (random, medium, expert) or built from other
datasets (mixed from the training replay, medexp from medium and expert)."""

from __future__ import annotations

import os
import time
from typing import Callable, List

import dm_env
import jax
import ml_collections
import numpy as np

from benchmarks.envs import env_spec
from worldmodels.data import load_dataset
from worldmodels.data.types import Steps
from worldmodels.data.writer import EpisodeWriter
from worldmodels.training.acting import (Episode, EpisodeRunner, compile_policy,
                                         episode_to_rlds)
from worldmodels.training.logging import Progress
from worldmodels.training.loop import restore_snapshot

from benchmarks.datasets.configs import DATASET_KINDS
from benchmarks.datasets.vd4rl.behaviour import GenerationError, _env_factory, _sac_agent
from benchmarks.datasets.vd4rl.paths import BEHAVIOUR_DIR, generation_directory

OBSERVATION_KEYS = ("state", "physics")
_KIND_IDS = {kind: index for index, kind in enumerate(DATASET_KINDS)}


# ------------------------------------------------------------------------------------------
# Rollout datasets (random, medium, expert).


def _episode_seed(seed: int, kind: str, episode: int) -> int:
  return int(np.random.SeedSequence([seed, _KIND_IDS[kind], episode]).generate_state(1)[0])


def collect_rollouts(config: ml_collections.ConfigDict, path: str, kind: str,
                     run_episode: Callable[[dm_env.Environment, int], Episode],
                     num_transitions: int,
                     behaviour_policy: dict, card: dict,
                     fingerprint: dict | None = None) -> dict:
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
    fingerprint: the generation settings, stored under ``extra.fingerprint`` (a resumed
      partial dataset must have been started with the same).

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
                         extra={"card": card, "fingerprint": fingerprint},
                         episodes_per_shard=config.episodes_per_shard,
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
  workdir = os.path.join(generation_directory(root, config), BEHAVIOUR_DIR)
  state = restore_snapshot(agent, workdir, step)
  compiled = compile_policy(agent)
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), _KIND_IDS[kind])

  def run_episode(env: dm_env.Environment, episode: int) -> Episode:
    runner = EpisodeRunner(env, agent, eval_mode=not config.stochastic_actions,
                           compiled=compiled)
    return runner.run_episode(state, jax.random.fold_in(base, episode), record=True)

  return run_episode


# ------------------------------------------------------------------------------------------
# Datasets built from other datasets (mixed, medexp).


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
