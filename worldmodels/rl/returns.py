"""Returns of imagined trajectories (Dreamer): lambda-returns and DreamerV3's return scale.

Shapes: ``H`` imagined steps, ``N`` trajectories (time first, as ``lax.scan`` returns them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def lambda_returns(rewards: jax.Array, values: jax.Array, continues: jax.Array,
                   lam: float) -> jax.Array:
  """TD(lambda) returns ``[H, N]`` of an imagined trajectory.

  ``R_t = r_t + c_t ((1 - lam) V_{t+1} + lam R_{t+1})`` with ``R_H = V_H``.

  Args:
    rewards: ``[H, N]``, ``r_t`` of the step ``t -> t + 1``.
    values: ``[H + 1, N]``, ``V(s_0) .. V(s_H)`` (``V(s_0)`` is not used).
    continues: ``[H, N]``, the discount times the continuation probability of ``s_{t+1}``.
    lam: lambda (0: one-step TD targets, 1: Monte Carlo with a bootstrap at ``H``).
  """
  def body(next_return, inputs):
    reward, cont, next_value = inputs
    ret = reward + cont * ((1 - lam) * next_value + lam * next_return)
    return ret, ret

  _, returns = jax.lax.scan(body, values[-1], (rewards, continues, values[1:]), reverse=True)
  return returns


def trajectory_weights(continues: jax.Array) -> jax.Array:
  """``[H, N]`` weights of the steps of imagined trajectories: ``w_0 = 1``, ``w_t =
  prod_{i<t} c_i`` (the discounted probability of still being in the episode), no gradient."""
  ones = jnp.ones_like(continues[:1])
  return jax.lax.stop_gradient(jnp.cumprod(jnp.concatenate([ones, continues[:-1]]), 0))


def update_return_scale(scale: jax.Array, returns: jax.Array, decay: float = 0.99) -> jax.Array:
  """DreamerV3's return normalisation: the EMA of the 5th-to-95th percentile range of
  ``returns``; the actor divides advantages by ``max(1, scale)``."""
  spread = jnp.percentile(returns, 95) - jnp.percentile(returns, 5)
  return decay * scale + (1 - decay) * jax.lax.stop_gradient(spread)
