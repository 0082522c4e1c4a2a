"""Probabilistic-ensemble world-model presets for ``experiments.train_model``:
``--config=experiments/configs/ensemble.py:<preset>`` (``default``, ``tiny``)."""

from experiments.configs import common
from worldmodels.models import ensemble


def get_config(preset: str = "default"):
  c = common.model_base_config("ensemble", ensemble.default_config())
  c.dataset.observation_key = "state"
  c.checkpoint_every_epochs = 10
  if preset == "default":
    return c
  if preset == "tiny":
    c.model.num_members, c.model.num_elites = 3, 2
    c.model.hidden_sizes = (32, 32)
    c.model.weight_decays = (2.5e-5, 5e-5, 1e-4)
    c.model.batch_size, c.model.holdout_size = 32, 100
    c.model.max_epochs = 3
    return c
  raise ValueError(f"unknown ensemble preset {preset!r}; choose default or tiny")
