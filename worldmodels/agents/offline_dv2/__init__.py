"""Offline DreamerV2 (V-D4RL, Lu et al. 2023): actor-critic in the imagination of a frozen RSSM
artifact, with rewards penalised by the disagreement of its prior heads."""
