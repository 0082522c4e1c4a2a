"""Offline DV2 networks: a tanh-Gaussian actor and a value MLP on RSSM features ``[N, F]``."""

from __future__ import annotations

import dataclasses

import ml_collections

from worldmodels.rl.networks import MLP, TanhGaussianActor


@dataclasses.dataclass(frozen=True)
class DV2Networks:
  actor: TanhGaussianActor
  critic: MLP  # features [N, F] -> [N, 1]


def make_networks(config: ml_collections.ConfigDict, action_dim: int) -> DV2Networks:
  return DV2Networks(actor=TanhGaussianActor(tuple(config.actor_layers), action_dim, "elu"),
                     critic=MLP(tuple(config.critic_layers), 1, "elu"))
