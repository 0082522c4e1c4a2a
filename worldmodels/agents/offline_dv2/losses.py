"""Offline DV2 losses over imagined trajectories of a frozen RSSM.

Shapes: ``N`` start states (every posterior state of a ``[B, T]`` batch), ``H`` the imagination
horizon, ``F`` the RSSM's feature size, ``A`` actions. Per imagined step ``t -> t + 1``:
``r_t = r_hat(s_{t+1}) - lambda * u_t`` with ``u_t`` the prior heads' disagreement about
``s_{t+1}``, ``c_t = discount * p_continue(s_{t+1})``.
"""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp

from worldmodels.models.rssm import RSSM, Imagined, Latent, RSSMParams
from worldmodels.rl.returns import lambda_returns, trajectory_weights


def imagine(model: RSSM, model_params: RSSMParams, actor, actor_params, start: Latent,
            horizon: int, key: jax.Array) -> Imagined:
  """Imagined trajectories of the actor (reparameterised samples; the actor sees features with
  no gradient, the dynamics pass gradients back to the actions)."""

  def policy(features, k):
    return actor.apply(actor_params, jax.lax.stop_gradient(features)).sample(seed=k)

  return model.imagine(model_params, policy, start, horizon, key)


def penalised_returns(model: RSSM, model_params: RSSMParams, critic, critic_params,
                      trajectory: Imagined, config, penalty_coef: jax.Array
                      ) -> Dict[str, jax.Array]:
  """Rewards, penalties, continuations ``[H, N]``, lambda-returns ``[H, N]`` bootstrapped with
  ``critic_params`` (the slow critic) and the step weights ``[H, N]``."""
  next_features = trajectory.features[1:]
  reward = model.reward(model_params, next_features)
  penalty = model.penalty(jnp.moveaxis(trajectory.prior_stats, 1, 0),
                          trajectory.latents.stoch[1:], config.penalty)
  continues = config.discount * model.continuation(model_params, next_features)
  values = critic.apply(critic_params, trajectory.features)[..., 0]  # [H + 1, N]
  returns = lambda_returns(reward - penalty_coef * penalty, values, continues,
                           config.return_lambda)
  return {"reward": reward, "penalty": penalty, "continues": continues, "returns": returns,
          "weights": trajectory_weights(continues)}


def actor_loss(returns: jax.Array, weights: jax.Array, entropy: jax.Array, config,
               return_scale: jax.Array) -> jax.Array:
  """Dynamics backprop: ``-E[w_t (R_t / max(1, S) + eta H_t)]`` (S = 1 without DreamerV3's
  return normalisation)."""
  scale = jnp.maximum(1.0, return_scale) if config.return_normalisation else 1.0
  return -(weights * (returns / scale + config.actor_entropy * entropy)).mean()


def critic_loss(values: jax.Array, returns: jax.Array, weights: jax.Array) -> jax.Array:
  """``E[w_t (V(s_t) - sg(R_t))^2] / 2`` over ``[H, N]``."""
  return 0.5 * (weights * (values - jax.lax.stop_gradient(returns)) ** 2).mean()


def actor_entropy(actor, actor_params, features: jax.Array, key: jax.Array) -> jax.Array:
  """A reparameterised single-sample estimate ``[...]`` of the actor's entropy at ``features``
  (``-log pi(a|s)``, ``a ~ pi``; the tanh-Gaussian has no closed form)."""
  _, log_prob = actor.apply(actor_params, jax.lax.stop_gradient(features)).sample_and_log_prob(
      seed=key)
  return -log_prob


def lagrange_step(penalty_coef: jax.Array, mean_penalty: jax.Array, config) -> jax.Array:
  """Dual ascent on ``lambda >= 0`` for the constraint ``E[u] <= target_penalty``."""
  step = config.lagrange_lr * (jax.lax.stop_gradient(mean_penalty) - config.target_penalty)
  return jnp.maximum(0.0, penalty_coef + step)


def imagination_metrics(terms: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """Means of the imagined quantities, for logging."""
  return {"imagined_reward": terms["reward"].mean(), "penalty": terms["penalty"].mean(),
          "penalty_max": terms["penalty"].max(), "imagined_return": terms["returns"].mean(),
          "continue": terms["continues"].mean()}
