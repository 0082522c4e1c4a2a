"""TD3+BC networks: a deterministic tanh actor and twin critics."""

from __future__ import annotations

import dataclasses

import ml_collections

from worldmodels.rl.networks import Critics, DeterministicActor


@dataclasses.dataclass(frozen=True)
class TD3BCNetworks:
  actor: DeterministicActor
  critic: Critics


def make_networks(config: ml_collections.ConfigDict, action_dim: int) -> TD3BCNetworks:
  return TD3BCNetworks(
      actor=DeterministicActor(tuple(config.hidden_sizes), action_dim, config.activation),
      critic=Critics(tuple(config.hidden_sizes), 2, config.activation))
