"""SAC hyperparameters: twin Q and a tanh-Gaussian actor of 2 x 256 ReLU layers, Adam 3e-4, batch
256, discount 0.99, Polyak 5e-3, learned temperature with target entropy -|A|, log-std clipped
to [-5, 2]; online, one update per environment step after 5k random steps."""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.observation_key = "state"
  c.hidden_sizes = (256, 256)
  c.activation = "relu"
  c.num_critics = 2
  c.actor_lr = 3e-4
  c.critic_lr = 3e-4
  c.alpha_lr = 3e-4
  c.discount = 0.99
  c.tau = 5e-3
  c.init_alpha = 1.0
  c.target_entropy = ml_collections.config_dict.placeholder(float)  # None -> -|A|
  c.log_std_min = -5.0
  c.log_std_max = 2.0
  c.batch_size = 256
  # Online phase (behaviour policies): environment steps, uniform random steps first.
  c.num_steps = 100_000
  c.random_steps = 5_000
  c.learning_starts = 5_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  """Shrinks every size so the whole path runs in seconds on CPU."""
  c = default_config()
  c.hidden_sizes = (32, 32)
  c.batch_size = 32
  c.num_steps = 200
  c.random_steps = 50
  c.learning_starts = 50
  return c
