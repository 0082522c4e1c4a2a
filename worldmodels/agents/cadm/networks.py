"""CaDM's networks: the context encoder and the forward and backward ensembles it conditions.

Shapes: ``B`` rows, ``K`` context transitions, ``S`` / ``A`` state / action sizes, ``C`` context
size, ``E`` members. Context features are ``(s, a, s' - s)`` per past transition, ``[B, K, D]``
with ``D = 2 S + A`` (:func:`context_features`).
"""

from __future__ import annotations

from typing import Dict

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.models.context import MLPContextEncoder
from worldmodels.models.ensemble import EnsembleNetwork


def context_features(state: jax.Array, action: jax.Array, next_state: jax.Array) -> jax.Array:
  """``concat(s, a, s' - s)`` along the last axis."""
  return jnp.concatenate([state, action, next_state - state], axis=-1)


class CaDMNetworks(nn.Module):
  """``__call__(context [B, K, D], mask [B, K], state, action, next_state [B, S|A|S])`` ->
  ``{"context" [B, C], "forward": (mean, logvar) [E, B, S + 1], "backward": (mean, logvar)
  [E, B, S]}``; every member sees the same rows."""

  config: ml_collections.ConfigDict
  state_dim: int

  def setup(self):
    c = self.config
    self.encoder = MLPContextEncoder(tuple(c.context_hidden), c.context_size)
    ensemble = lambda out: EnsembleNetwork(c.num_members, tuple(c.hidden_sizes), out,
                                           c.activation, c.init_max_logvar, c.init_min_logvar)
    self.forward_model = ensemble(self.state_dim + 1)
    self.backward_model = ensemble(self.state_dim)

  def encode(self, context: jax.Array, mask: jax.Array) -> jax.Array:
    return self.encoder(context, mask)

  def predict_forward(self, state, action, code):
    x = jnp.concatenate([state, action, code], axis=-1)
    return self.forward_model(jnp.broadcast_to(x, (self.config.num_members,) + x.shape))[:2]

  def predict_backward(self, next_state, action, code):
    x = jnp.concatenate([next_state, action, code], axis=-1)
    return self.backward_model(jnp.broadcast_to(x, (self.config.num_members,) + x.shape))[:2]

  def __call__(self, context, mask, state, action, next_state) -> Dict[str, object]:
    code = self.encode(context, mask)
    return {"context": code, "forward": self.predict_forward(state, action, code),
            "backward": self.predict_backward(next_state, action, code)}
