"""DrQ+BC's actor loss: DrQ-v2's actor (the policy's action with clipped noise, the minimum of
the twin critics) under TD3+BC's objective (V-D4RL appendix B.2).

Shapes: encoder features ``[B, E]``, actions ``[B, A]``.
"""

from __future__ import annotations

import jax

from worldmodels.rl import pixels
from worldmodels.rl.pixels import PixelNetworks
from worldmodels.rl.policy_losses import bc_regularised_objective


def actor_loss(actor_params, networks: PixelNetworks, critic_params, features: jax.Array,
               data_action: jax.Array, stddev: jax.Array, stddev_clip: float, alpha: float,
               key: jax.Array):
  """``-lambda * min_i Q_i(h, a_pi) + mean((a_pi - a)^2)``, ``a_pi = pi(h) + clipped noise``,
  ``lambda = alpha / mean|Q|`` (detached)."""
  mean = networks.actor.apply(actor_params, features)
  policy_action = pixels.noisy_action(key, mean, stddev, stddev_clip)
  q = networks.critic.apply(critic_params, features, policy_action).min(axis=0)
  return bc_regularised_objective(q, policy_action, data_action, alpha)
