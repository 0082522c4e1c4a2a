"""BC loss: mean squared error between the policy's and the dataset's actions ``[B, A]``."""

from __future__ import annotations

import jax.numpy as jnp

from worldmodels.rl.networks import DeterministicActor


def bc_loss(params, actor: DeterministicActor, obs, action):
  loss = jnp.mean((actor.apply(params, obs) - action) ** 2)
  return loss, {"bc_loss": loss}
