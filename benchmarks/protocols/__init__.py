"""Evaluation protocols: zero-shot evaluation on shifted dynamics (AugWM)."""

from __future__ import annotations

from benchmarks.protocols.zero_shot import (AgentPolicy, Comparison, GridResult, Policy,
                                            agent_policy, evaluate_grid, grid_coordinates,
                                            merge_seeds, run_episode)

__all__ = [
    "AgentPolicy",
    "Comparison",
    "GridResult",
    "Policy",
    "agent_policy",
    "evaluate_grid",
    "grid_coordinates",
    "merge_seeds",
    "run_episode",
]
