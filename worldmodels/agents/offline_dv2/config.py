"""Offline DV2 hyperparameters (V-D4RL appendix C.1 and DreamerV2's defaults).

Imagination of horizon 5 from every posterior state of batches of 64 sequences of 50 steps,
reward ``r_hat - lambda * penalty`` (mean disagreement of the RSSM's prior heads, lambda 10;
``lagrangian`` tunes lambda towards ``target_penalty`` instead), lambda-returns (0.95, discount
0.99), the actor trained by dynamics backprop with entropy 1e-4, a critic regressed on the
returns with a slow copy (updated every 100 steps) computing them, Adam 8e-5 (eps 1e-5, clip
100) for both. 2,400 of V-D4RL's offline epochs of a 100k-step dataset: 75,000 updates.
"""

import ml_collections
from ml_collections import config_dict


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model_path = config_dict.placeholder(str)  # RSSM artifact (experiments.train_model)
  c.horizon = 5
  c.penalty = "mean_disagreement"  # or "log_prob_spread", "mixture_std"
  c.penalty_coef = 10.0
  c.lagrangian = False  # tune penalty_coef (from its value) so the mean penalty nears the target
  c.target_penalty = 1.5
  c.lagrange_lr = 1e-2
  c.discount = 0.99
  c.return_lambda = 0.95
  c.actor_layers = (400, 400, 400, 400)
  c.critic_layers = (400, 400, 400, 400)
  c.actor_lr = 8e-5
  c.critic_lr = 8e-5
  c.adam_eps = 1e-5
  c.grad_clip = 100.0
  c.actor_entropy = 1e-4
  c.slow_critic_every = 100
  c.return_normalisation = False  # DreamerV3: divide returns by max(1, EMA P95 - P5)
  c.batch_size = 64
  c.sequence_length = 50
  c.imagination_starts = 0  # 0: every posterior state of the batch (B * T); else a random subset
  c.num_steps = 75_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.horizon = 3
  c.actor_layers = (32, 32)
  c.critic_layers = (32, 32)
  c.batch_size = 4
  c.sequence_length = 8
  c.slow_critic_every = 5
  c.num_steps = 20
  return c
