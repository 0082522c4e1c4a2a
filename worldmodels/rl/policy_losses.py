"""Policy objectives shared by state and pixel agents."""

from __future__ import annotations

from typing import Dict, Tuple

import jax
import jax.numpy as jnp


def bc_regularised_objective(q: jax.Array, policy_action: jax.Array, data_action: jax.Array,
                             alpha: float) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """TD3+BC's actor objective (Fujimoto & Gu 2021): ``-lambda * mean(Q) + mean((pi - a)^2)``
  with ``lambda = alpha / mean|Q|`` over the batch, detached.

  Args:
    q: ``[B]`` the critic at the policy's actions.
    policy_action: ``[B, A]`` the policy's actions (differentiated).
    data_action: ``[B, A]`` the dataset's actions.
    alpha: the BC weight (2.5 in both papers).

  Returns:
    The loss and ``{"actor_loss", "bc_loss", "lambda"}``.
  """
  lmbda = jax.lax.stop_gradient(alpha / jnp.mean(jnp.abs(q)))
  bc = jnp.mean((policy_action - data_action) ** 2)  # mean over batch and action dims
  loss = -lmbda * jnp.mean(q) + bc
  return loss, {"actor_loss": loss, "bc_loss": bc, "lambda": lmbda}
