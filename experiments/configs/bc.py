"""BC launcher presets: ``--config=experiments/configs/bc.py:<preset>``
(``default``, ``demo``, ``tiny``). Needs ``--config.dataset.path``."""

from worldmodels.agents.bc import config as bc_config
from experiments.configs.common import base_config, shrink_loop


def get_config(preset: str = "default"):
  if preset == "default":
    return base_config("bc", bc_config.default_config())
  if preset == "demo":
    c = base_config("bc", bc_config.default_config())
    c.agent.num_steps = 10_000
    c.loop.eval_every = 5_000
    c.loop.checkpoint_every = 10_000
    return c
  if preset == "tiny":
    return shrink_loop(base_config("bc", bc_config.tiny_config()))
  raise ValueError(f"unknown bc preset {preset!r}; choose default, demo or tiny")
