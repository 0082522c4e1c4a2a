"""Probabilistic-ensemble world-model presets for ``experiments.train_model``:
``--config=experiments/configs/ensemble.py:<preset>`` (``default``, ``tiny``)."""

import ml_collections
from ml_collections import config_dict

from experiments.configs import common
from worldmodels.models import ensemble


def get_config(preset: str = "default"):
  c = ml_collections.ConfigDict()
  c.model_name = "ensemble"
  c.model = ensemble.default_config()
  c.seed = 0
  c.dataset = ml_collections.ConfigDict()
  c.dataset.path = config_dict.placeholder(str)  # a directory or a catalog name (vd4rl/...)
  c.dataset.root = config_dict.placeholder(str)  # catalog root (None: $WORLDMODELS_DATA)
  c.dataset.observation_key = "state"
  c.output = config_dict.placeholder(str)  # artifact directory (must not exist)
  c.workdir = config_dict.placeholder(str)  # checkpoints and logs; None: <output>.train
  c.mesh = common.mesh_config()  # e.g. --config.mesh.members=4 on 4 devices
  c.checkpoint_every_epochs = 10
  c.log_every_seconds = 10.0
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
