"""BC network: the shared deterministic tanh actor."""

from __future__ import annotations

import ml_collections

from worldmodels.rl.networks import DeterministicActor


def make_networks(config: ml_collections.ConfigDict, action_dim: int) -> DeterministicActor:
  return DeterministicActor(tuple(config.hidden_sizes), action_dim, config.activation)
