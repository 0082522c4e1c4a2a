"""Learning tests on small real tasks (slow: `make test-slow`, minutes on 2 cores)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.envs import make_env, make_env_factory
from worldmodels.agents import make_agent
from worldmodels.agents.sac.config import default_config
from worldmodels.data.spec import DataSpec
from worldmodels.training.loop import LoopConfig, train


def _random_returns(task: str, episodes: int) -> np.ndarray:
  rng = np.random.default_rng(0)
  out = []
  for i in range(episodes):
    env = make_env(task, seed=10_000 + i)
    timestep, total = env.reset(), 0.0
    while not timestep.last():
      timestep = env.step(rng.uniform(-1, 1, env.action_spec().shape).astype(np.float32))
      total += timestep.reward
    out.append(total)
  return np.asarray(out)


@pytest.mark.slow
def test_sac_beats_random_on_walker_walk(tmp_path):
  config = default_config()
  config.num_steps, config.random_steps, config.learning_starts = 25_000, 2_000, 2_000
  agent = make_agent("sac", config, DataSpec({"state": ((24,), "float32")}, 6))
  loop = LoopConfig(steps_per_chunk=1000, eval_every=0, eval_episodes=5, checkpoint_every=0,
                    replay_capacity=30_000)
  result = train(agent, workdir=str(tmp_path), loop=loop,
                 env_factory=make_env_factory("walker-walk"))
  random_mean = _random_returns("walker-walk", 5).mean()
  assert result.evaluations[-1]["return_mean"] > 3 * random_mean, (
      result.evaluations[-1], random_mean)
