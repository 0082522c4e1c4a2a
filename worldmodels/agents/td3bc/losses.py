"""TD3+BC losses. Shapes: observations ``[B, D]``, actions ``[B, A]``, rewards ``[B]``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from worldmodels.agents.td3bc.networks import TD3BCNetworks
from worldmodels.rl.policy_losses import bc_regularised_objective


def critic_loss(critic_params, networks: TD3BCNetworks, target_actor_params,
                target_critic_params, obs, action, reward, discount, next_obs, gamma: float,
                policy_noise: float, noise_clip: float, key: jax.Array):
  """Clipped double-Q TD with target policy smoothing (TD3)."""
  noise = jnp.clip(policy_noise * jax.random.normal(key, action.shape), -noise_clip, noise_clip)
  next_action = jnp.clip(networks.actor.apply(target_actor_params, next_obs) + noise, -1.0, 1.0)
  next_q = networks.critic.apply(target_critic_params, next_obs, next_action).min(axis=0)
  target = jax.lax.stop_gradient(reward + gamma * discount * next_q)
  q = networks.critic.apply(critic_params, obs, action)  # [2, B]
  loss = jnp.mean(jnp.sum((q - target) ** 2, axis=0))
  return loss, {"critic_loss": loss, "q_mean": q.mean()}


def actor_loss(actor_params, networks: TD3BCNetworks, critic_params, obs, action,
               alpha: float):
  """``-lambda * Q_1(s, pi(s)) + (pi(s) - a)^2`` with ``lambda = alpha / mean|Q|`` (detached)."""
  pi = networks.actor.apply(actor_params, obs)
  q = networks.critic.apply(critic_params, obs, pi)[0]
  return bc_regularised_objective(q, pi, action, alpha)
