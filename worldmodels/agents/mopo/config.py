"""MOPO hyperparameters (Yu et al. 2020): every 1000 policy updates, 50,000 rollouts of horizon
``h`` from dataset states with the penalty ``r - lambda * max_i ||sigma_i(s, a)||``, kept in a
model buffer of 5 rollout batches; each SAC batch takes 5% real and 95% model transitions.

Per-dataset ``(horizon, penalty_coef)`` presets of the AugWM paper's table 3 live in
``experiments/configs/mopo.py``.
"""

import ml_collections
from ml_collections import config_dict

from worldmodels.agents.sac import config as sac_config


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.observation_key = "state"
  c.sac = sac_config.default_config()  # the policy learner
  c.model_path = config_dict.placeholder(str)  # ensemble artifact (experiments.train_model)
  c.termination = config_dict.placeholder(str)  # task with a known termination fn, or None
  c.horizon = 5
  c.penalty = "max_aleatoric"  # or "disagreement", "mixture_std"
  c.penalty_coef = 1.0
  c.rollout_batch_size = 50_000
  c.rollout_every = 1000
  c.model_retain_epochs = 5  # the model buffer holds this many rollout batches
  c.real_ratio = 0.05
  c.batch_size = 256
  c.num_steps = 400_000  # AugWM table 4: 400 offline epochs of 1000 steps
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.sac = sac_config.tiny_config()
  c.horizon = 2
  c.rollout_batch_size = 64
  c.rollout_every = 20
  c.model_retain_epochs = 2
  c.batch_size = 32
  c.num_steps = 100
  return c
