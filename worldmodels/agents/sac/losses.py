"""SAC losses (Haarnoja et al. 2018): soft twin-Q TD, reparameterised actor, temperature.

Shapes: observations ``[B, D]``, actions ``[B, A]``, rewards and discounts ``[B]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from worldmodels.agents.sac.networks import SACNetworks


def critic_loss(critic_params, networks: SACNetworks, actor_params, target_critic_params,
                alpha: jax.Array, obs, action, reward, discount, next_obs, gamma: float,
                key: jax.Array):
  """Soft Bellman error of every critic against ``min`` of the target critics."""
  next_dist = networks.actor.apply(actor_params, next_obs)
  next_action, next_log_prob = next_dist.sample_and_log_prob(seed=key)
  next_q = networks.critic.apply(target_critic_params, next_obs, next_action).min(axis=0)
  target = reward + gamma * discount * (next_q - alpha * next_log_prob)
  q = networks.critic.apply(critic_params, obs, action)  # [C, B]
  loss = 0.5 * jnp.mean(jnp.sum((q - jax.lax.stop_gradient(target)) ** 2, axis=0))
  return loss, {"critic_loss": loss, "q_mean": q.mean(), "target_mean": target.mean()}


def actor_loss(actor_params, networks: SACNetworks, critic_params, alpha: jax.Array, obs,
               key: jax.Array):
  """``E[alpha * log pi(a|s) - min_i Q_i(s, a)]`` with ``a ~ pi`` reparameterised."""
  dist = networks.actor.apply(actor_params, obs)
  action, log_prob = dist.sample_and_log_prob(seed=key)
  q = networks.critic.apply(critic_params, obs, action).min(axis=0)
  loss = jnp.mean(alpha * log_prob - q)
  return loss, {"actor_loss": loss, "entropy": -log_prob.mean()}


def alpha_loss(log_alpha: jax.Array, entropy: jax.Array, target_entropy: float):
  """Temperature loss: drives the policy entropy towards ``target_entropy``."""
  loss = log_alpha * jax.lax.stop_gradient(entropy - target_entropy)
  return loss, {"alpha_loss": loss, "alpha": jnp.exp(log_alpha)}
