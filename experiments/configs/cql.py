"""CQL (pixels) launcher presets: ``--config=experiments/configs/cql.py:<preset>`` (``paper`` =
``default``, ``cpu``, ``tiny``: ``experiments.configs.common.pixel_agent_config``).
Needs ``--config.dataset.path`` (a pixel dataset, e.g. ``vd4rl/walker_walk/medium/84px``)."""

from experiments.configs.common import PIXEL_PRESETS, pixel_agent_config
from worldmodels.agents.cql import config as agent_config

PRESETS = PIXEL_PRESETS


def get_config(preset: str = "default"):
  return pixel_agent_config("cql", agent_config.default_config(), preset,
                            agent_config.tiny_config())
