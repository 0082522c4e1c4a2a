"""CaDM world-model presets for ``experiments.train_model``:
``--config=experiments/configs/cadm.py:<preset>``.

Presets:

* ``default``: CaDM's settings (``worldmodels/agents/cadm/config.py``: K = 10 past transitions,
  a 10-d context, 5 members of 4 x 200, 20,000 updates of batch 128).
* ``cpu``: members of 3 x 200, 5,000 updates (minutes on this project's 2-core CPU).
* ``tiny``: seconds (tests).
"""

from experiments.configs import common
from worldmodels.agents.cadm import config as cadm_config


def get_config(preset: str = "default"):
  if preset == "tiny":
    c = common.model_base_config("cadm", cadm_config.tiny_config())
    c.dataset.observation_key = "state"
    c.steps_per_chunk, c.checkpoint_every, c.log_every_seconds = 10, 10, 0.0
    return c
  c = common.model_base_config("cadm", cadm_config.default_config())
  c.dataset.observation_key = "state"
  c.steps_per_chunk, c.checkpoint_every = 500, 5_000
  if preset == "default":
    return c
  if preset == "cpu":
    c.model.hidden_sizes = (200, 200, 200)
    c.model.num_steps = 5_000
    return c
  raise ValueError(f"unknown cadm preset {preset!r}; choose default, cpu or tiny")
