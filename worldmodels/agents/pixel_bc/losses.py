"""Pixel BC's loss: MSE between the actor's actions on encoded frames and the dataset's.

Shapes: frames ``uint8 [B, S, S, C]``, actions ``[B, A]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from worldmodels.rl.pixels import PixelNetworks


def bc_loss(params, networks: PixelNetworks, frames: jax.Array, data_action: jax.Array):
  """``mean((pi(encoder(frames)) - a)^2)``, differentiated through actor and encoder
  (``params = {"encoder": ..., "actor": ...}``)."""
  features = networks.encoder.apply(params["encoder"], frames)
  loss = jnp.mean((networks.actor.apply(params["actor"], features) - data_action) ** 2)
  return loss, {"bc_loss": loss}
