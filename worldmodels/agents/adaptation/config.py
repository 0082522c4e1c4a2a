"""Scenario adaptation hyperparameters (MBPO, Janner et al. 2019, as MrCoM's appendix C.2 uses
it): in the target scenario, one SAC update per environment step on batches of 5% real and 95%
model transitions; every 250 steps, 10,000 rollouts of horizon 5 (MrCoM's table 6) branched from
states of the target's replay, each conditioned on the real transitions that led to its start;
the model buffer keeps 5 rollout batches. 100,000 environment steps (MrCoM's appendix C.2).
No uncertainty penalty by default (MBPO's); the model is the read-only artifact, never tuned."""

import ml_collections
from ml_collections import config_dict

from worldmodels.agents.sac import config as sac_config


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.observation_key = "state"
  c.sac = sac_config.default_config()  # the policy learner
  c.model_path = config_dict.placeholder(str)  # a contextual model artifact (e.g. CaDM's)
  c.termination = config_dict.placeholder(str)  # task with a known termination fn, or None
  c.horizon = 5
  c.penalty = config_dict.placeholder(str)  # None: MBPO's unpenalised rollouts
  c.penalty_coef = 0.0
  c.rollout_batch_size = 10_000
  c.rollout_every = 250
  c.model_retain_epochs = 5
  c.real_ratio = 0.05
  c.batch_size = 256
  c.num_steps = 100_000  # environment steps in the target scenario
  c.random_steps = 5_000
  c.learning_starts = 5_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.sac = sac_config.tiny_config()
  c.horizon = 2
  c.rollout_batch_size = 16
  c.rollout_every = 10
  c.model_retain_epochs = 2
  c.batch_size = 32
  c.num_steps = 120
  c.random_steps = 40
  c.learning_starts = 40
  return c
