"""CaDM's losses: forward and backward Gaussian NLLs of one transition given its context.

A training row is a window of ``K + 2`` steps inside an episode (:func:`split_window`): its first
``K`` transitions are the context, the last transition ``(s, a, r, s')`` the target. Forward
targets are ``(s' - s, r)`` from ``(s, a, c)``; backward targets ``s - s'`` from ``(s', a, c)``.
States are standardised by the learner first.
"""

from __future__ import annotations

from typing import Dict, Tuple

import flax.struct
import jax
import jax.numpy as jnp

from worldmodels.agents.cadm.networks import context_features
from worldmodels.data.samplers import SequenceBatch
from worldmodels.models.ensemble import gaussian_nll, logvar_bounds


@flax.struct.dataclass
class CaDMBatch:
  """``context [B, K, 2S + A]``, ``mask [B, K]``, and the target transition ``state``,
  ``action``, ``reward``, ``next_state``."""

  context: jax.Array
  mask: jax.Array
  state: jax.Array
  action: jax.Array
  reward: jax.Array
  next_state: jax.Array


def split_window(batch: SequenceBatch, context_length: int, mean: jax.Array,
                 std: jax.Array) -> CaDMBatch:
  """A ``[B, K + 2]`` window of standardised states as context plus target transition."""
  states = (batch.observation["state"] - mean) / std
  k = context_length
  if states.shape[1] != k + 2:
    raise ValueError(f"CaDM windows are K + 2 = {k + 2} steps, got {states.shape[1]}.")
  context = context_features(states[:, :k], batch.action[:, :k], states[:, 1:k + 1])
  return CaDMBatch(context, jnp.ones(context.shape[:2], bool), states[:, k], batch.action[:, k],
                   batch.reward[:, k], states[:, k + 1])


def forward_targets(state: jax.Array, reward: jax.Array, next_state: jax.Array) -> jax.Array:
  """``(s' - s, r)``: ``[..., S + 1]``."""
  return jnp.concatenate([next_state - state, reward[..., None]], axis=-1)


def backward_targets(state: jax.Array, next_state: jax.Array) -> jax.Array:
  """``s - s'``: what the backward model predicts from ``s'`` (and ``a``, ``c``)."""
  return state - next_state


def prediction_terms(forward: Tuple[jax.Array, jax.Array], backward: Tuple[jax.Array, jax.Array],
                     batch: CaDMBatch) -> Dict[str, jax.Array]:
  """Per-member NLLs ``[E]`` and MSEs of the forward and backward predictions of ``batch``."""
  y_forward = forward_targets(batch.state, batch.reward, batch.next_state)
  y_backward = backward_targets(batch.state, batch.next_state)
  return {"forward_nll": gaussian_nll(*forward, y_forward),
          "backward_nll": gaussian_nll(*backward, y_backward),
          "forward_mse": ((forward[0] - y_forward) ** 2).mean(),
          "backward_mse": ((backward[0] - y_backward) ** 2).mean()}


def cadm_loss(networks, params: dict, batch: CaDMBatch,
              config) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Forward NLL + ``backward_weight`` x backward NLL (summed over members) + the log-variance
  bound regularisers of both ensembles."""
  out = networks.apply(params, batch.context, batch.mask, batch.state, batch.action,
                       batch.next_state)
  terms = prediction_terms(out["forward"], out["backward"], batch)
  p = params["params"]
  bounds = logvar_bounds({"params": p["forward_model"]}) + logvar_bounds(
      {"params": p["backward_model"]})
  loss = (terms["forward_nll"].sum() + config.backward_weight * terms["backward_nll"].sum()
          + config.logvar_bound_coef * bounds)
  metrics = {k: v.mean() for k, v in terms.items()}
  return loss, metrics
