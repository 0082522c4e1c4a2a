"""SAC networks: a tanh-Gaussian actor and twin critics (shared modules of worldmodels.rl)."""

from __future__ import annotations

import dataclasses

import ml_collections

from worldmodels.rl.networks import Critics, TanhGaussianActor


@dataclasses.dataclass(frozen=True)
class SACNetworks:
  actor: TanhGaussianActor
  critic: Critics


def make_networks(config: ml_collections.ConfigDict, action_dim: int) -> SACNetworks:
  return SACNetworks(
      actor=TanhGaussianActor(tuple(config.hidden_sizes), action_dim, config.activation,
                              config.log_std_min, config.log_std_max),
      critic=Critics(tuple(config.hidden_sizes), config.num_critics, config.activation))
