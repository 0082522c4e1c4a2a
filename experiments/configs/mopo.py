"""MOPO launcher presets: ``--config=experiments/configs/mopo.py:<preset>``.

Needs ``--config.dataset.path`` and ``--config.agent.model_path`` (an ensemble artifact from
``python -m experiments.train_model``). Presets: ``default``, ``demo`` (CPU-sized), ``tiny``, and
the AugWM paper's table 3 per-dataset ``(h, lambda)``: ``halfcheetah-random``,
``halfcheetah-medium``, ``halfcheetah-mixed``, ``halfcheetah-medexp``, ``walker2d-random``,
``walker2d-medium``, ``walker2d-mixed``, ``walker2d-medexp``.
"""

from worldmodels.agents.mopo import config as mopo_config
from experiments.configs.common import base_config, shrink_loop

# AugWM table 3: (rollout horizon h, penalty coefficient lambda) per D4RL dataset.
TABLE3 = {
    "halfcheetah-random": (5, 0.5), "halfcheetah-medium": (1, 1.0),
    "halfcheetah-mixed": (5, 1.0), "halfcheetah-medexp": (5, 1.0),
    "walker2d-random": (1, 1.0), "walker2d-medium": (1, 1.0),
    "walker2d-mixed": (1, 1.0), "walker2d-medexp": (1, 2.0),
}


def model_based_presets(agent_name: str, agent_config, preset: str):
  """Presets shared by the model-based agents (MOPO, AugWM): ``default``, ``demo``, ``tiny`` and
  the table-3 datasets. ``agent_config`` is the agent's config module."""
  if preset == "tiny":
    return shrink_loop(base_config(agent_name, agent_config.tiny_config()))
  c = base_config(agent_name, agent_config.default_config())
  if preset == "default":
    return c
  if preset in TABLE3:
    c.agent.horizon, c.agent.penalty_coef = TABLE3[preset]
    return c
  if preset == "demo":
    c.agent.num_steps = 30_000
    c.agent.rollout_batch_size = 10_000
    c.loop.eval_every = 10_000
    return c
  raise ValueError(f"unknown {agent_name} preset {preset!r}; choose default, demo, tiny or one "
                   f"of {sorted(TABLE3)}")


def get_config(preset: str = "default"):
  return model_based_presets("mopo", mopo_config, preset)
