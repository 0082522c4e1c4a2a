"""SAC launcher presets: ``--config=experiments/configs/sac.py:<preset>``.

Presets: ``default`` (1e5 env steps, the behaviour-policy setting), ``demo`` (the README's main
job), ``tiny`` (seconds on CPU).
"""

from worldmodels.agents.sac import config as sac_config
from experiments.configs.common import base_config, shrink_loop


def _online(c):
  c.env.task = "walker-walk"
  return c


def get_config(preset: str = "default"):
  return _online(_preset(preset))


def _preset(preset: str):
  if preset == "default":
    return base_config("sac", sac_config.default_config())
  if preset == "demo":
    c = base_config("sac", sac_config.default_config())
    c.agent.num_steps = 40_000
    c.agent.random_steps = 2_000
    c.agent.learning_starts = 2_000
    c.loop.eval_every = 10_000
    c.loop.checkpoint_every = 10_000
    c.loop.eval_episodes = 5
    c.loop.replay_capacity = 60_000
    return c
  if preset == "tiny":
    return shrink_loop(base_config("sac", sac_config.tiny_config()))
  raise ValueError(f"unknown sac preset {preset!r}; choose default, demo or tiny")
