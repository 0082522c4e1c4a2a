"""Behaviour cloning hyperparameters: deterministic actor, MSE to the data action."""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.observation_key = "state"
  c.hidden_sizes = (256, 256)
  c.activation = "relu"
  c.lr = 3e-4
  c.normalize_observations = True
  c.batch_size = 256
  c.num_steps = 100_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.hidden_sizes = (32, 32)
  c.batch_size = 32
  c.num_steps = 100
  return c
