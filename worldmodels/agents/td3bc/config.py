"""TD3+BC hyperparameters (Fujimoto & Gu 2021): alpha 2.5, lambda = alpha / mean|Q|."""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.observation_key = "state"
  c.hidden_sizes = (256, 256)
  c.activation = "relu"
  c.actor_lr = 3e-4
  c.critic_lr = 3e-4
  c.discount = 0.99
  c.tau = 5e-3
  c.policy_noise = 0.2
  c.noise_clip = 0.5
  c.policy_delay = 2
  c.alpha = 2.5
  c.normalize_observations = True
  c.batch_size = 256
  c.num_steps = 1_000_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.hidden_sizes = (32, 32)
  c.batch_size = 32
  c.num_steps = 100
  return c
