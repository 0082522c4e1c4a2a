"""AugWM launcher presets: ``--config=experiments/configs/augwm.py:<preset>``.

Needs ``--config.dataset.path`` and ``--config.agent.model_path``. Presets: ``default`` (DAS +
learned context, 900 epochs), ``demo`` (CPU-sized), ``tiny``, and the paper's table 3
``(h, lambda)`` per D4RL dataset (same names as MOPO's: e.g. ``halfcheetah-mixed``).
Variants by override: ``--config.agent.augmentation={none,rad,rans,das}``,
``--config.agent.use_context={True,False}``, ``--config.agent.test_context={default,learned}``.
"""

from worldmodels.agents.augwm import config as augwm_config
from experiments.configs.common import base_config, shrink_loop
from experiments.configs.mopo import TABLE3


def get_config(preset: str = "default"):
  if preset == "default":
    return base_config("augwm", augwm_config.default_config())
  if preset in TABLE3:
    c = base_config("augwm", augwm_config.default_config())
    c.agent.horizon, c.agent.penalty_coef = TABLE3[preset]
    return c
  if preset == "demo":
    c = base_config("augwm", augwm_config.default_config())
    c.agent.num_steps = 30_000
    c.agent.rollout_batch_size = 10_000
    c.loop.eval_every = 10_000
    return c
  if preset == "tiny":
    return shrink_loop(base_config("augwm", augwm_config.tiny_config()))
  raise ValueError(f"unknown augwm preset {preset!r}; choose default, demo, tiny or one of "
                   f"{sorted(TABLE3)}")
