"""Zero-shot grid evaluation: every episode in one batch against episode by episode.

One MOPO-sized SAC policy (256 x 256, untrained: the work, not the values, is measured) acts on
HalfCheetah-v5 (17-d states, 6-d actions, 1000-step episodes) over a mass x damping grid with
several episodes per cell, through ``benchmarks.protocols.zero_shot.evaluate_grid``:

* batched: all cells and episodes at once, one vmapped policy call per step
  (``worldmodels.training.acting.run_episodes``);
* episode by episode: one ``EpisodeRunner`` per episode, one jitted policy call per step (the
  path before batching, and still ``evaluate_grid``'s for policies that do not batch);
* the minimal reference: the same environments stepped with a fixed action and no policy, i.e.
  the rate the simulator alone allows on this machine.

Figures: environment steps per second of each, the batched speed-up over episode by episode, and
the batched rate as a fraction of the bare environments' rate (1 would mean the policy costs
nothing).
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np

from benchmarks.envs import make_gym_env_factory
from benchmarks.protocols.zero_shot import evaluate_grid
from benchmarks.shifts import grid, make_shifted_env_factory
from worldmodels.agents.sac import config as sac_config
from worldmodels.agents.sac.learner import SACLearner
from worldmodels.data.spec import DataSpec
from worldmodels.training.acting import EpisodeRunner, compile_policy

TASK = "HalfCheetah-v5"


def _timed(fn: Callable[[], object]) -> float:
  started = time.perf_counter()
  fn()
  return time.perf_counter() - started


def run(factors=(0.5, 1.0, 1.5), episodes: int = 5, episode_length: int = 1000,
        tiny: bool = False) -> dict:
  """Seconds and env steps/s of the three ways over ``len(factors)^2`` cells x ``episodes``."""
  config = sac_config.tiny_config() if tiny else sac_config.default_config()
  agent = SACLearner(config, DataSpec({"state": ((17,), np.float32)}, 6))
  state = agent.init(jax.random.PRNGKey(0))
  base = make_gym_env_factory(TASK, episode_length=episode_length)
  settings = grid(list(factors), list(factors))
  factory_for = lambda setting: make_shifted_env_factory(base, setting)
  steps = len(settings) * episodes * episode_length
  # Compile both policy paths outside the timings (one short grid each).
  warm = dict(env_factory_for=lambda setting: make_shifted_env_factory(
      make_gym_env_factory(TASK, episode_length=2), setting), settings=settings[:2], episodes=1,
      seed=0)
  compiled = compile_policy(agent)
  evaluate_grid(agent, state, **warm)
  EpisodeRunner(make_gym_env_factory(TASK, episode_length=2)(0), agent,
                compiled=compiled).run_episode(state, jax.random.PRNGKey(0))
  out = {"cells": len(settings), "episodes": episodes, "steps": steps}

  def bare():
    zero = np.zeros(6, np.float32)
    for setting in settings:
      for episode in range(episodes):
        env = factory_for(setting)(episode)
        env.reset()
        while not env.step(zero).last():
          pass
        env.close()

  def batched():
    return evaluate_grid(agent, state, factory_for, settings, episodes, seed=0)

  def one_by_one():
    for setting in settings:
      for episode in range(episodes):
        runner = EpisodeRunner(factory_for(setting)(episode), agent, compiled=compiled)
        runner.run_episode(state, jax.random.PRNGKey(episode))
        runner.close()

  for name, fn in (("bare", bare), ("batched", batched), ("episode_by_episode", one_by_one)):
    seconds = _timed(fn)
    out[name] = {"seconds": seconds, "steps_per_s": steps / seconds}
  out["speed_up"] = out["batched"]["steps_per_s"] / out["episode_by_episode"]["steps_per_s"]
  out["fraction_of_bare"] = out["batched"]["steps_per_s"] / out["bare"]["steps_per_s"]
  return out


def main(tiny: bool = False) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code)."""
  sizes = {"factors": (1.0, 1.5), "episodes": 1, "episode_length": 20} if tiny else {}
  r = run(tiny=tiny, **sizes)
  print(f"{TASK}: {r['cells']} cells x {r['episodes']} episodes, {r['steps']} env steps per "
        "way; untrained SAC policy " + ("(tiny)" if tiny else "256x256"))
  for name in ("bare", "batched", "episode_by_episode"):
    print(f"{name}: {r[name]['steps_per_s']:.0f} env steps/s ({r[name]['seconds']:.1f} s)")
  line = (f"evaluation: {r['batched']['steps_per_s']:.0f} env steps/s batched, speed-up "
          f"{r['speed_up']:.1f} over episode by episode, {r['fraction_of_bare']:.2f} of the "
          "bare environments' rate")
  print(line)
  return line
