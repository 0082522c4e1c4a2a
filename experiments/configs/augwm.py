"""AugWM launcher presets: ``--config=experiments/configs/augwm.py:<preset>``.

Needs ``--config.dataset.path`` and ``--config.agent.model_path``. Presets: ``default`` (DAS +
learned context, 900 epochs), ``demo`` (CPU-sized), ``tiny``, and the paper's table 3
``(h, lambda)`` per D4RL dataset (same names as MOPO's: e.g. ``halfcheetah-mixed``).
Variants by override: ``--config.agent.augmentation={none,rad,rans,das}``,
``--config.agent.use_context={True,False}``, ``--config.agent.test_context={default,learned}``.
"""

from worldmodels.agents.augwm import config as augwm_config
from experiments.configs.mopo import model_based_presets


def get_config(preset: str = "default"):
  return model_based_presets("augwm", augwm_config, preset)
