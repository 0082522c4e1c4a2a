"""Evaluation protocols: zero-shot evaluation on shifted dynamics (AugWM)."""

from __future__ import annotations

from benchmarks.protocols.zero_shot import (Comparison, GridResult, episode_rewards,
                                            evaluate_grid, grid_coordinates, merge_seeds)

__all__ = [
    "Comparison",
    "GridResult",
    "episode_rewards",
    "evaluate_grid",
    "grid_coordinates",
    "merge_seeds",
]
