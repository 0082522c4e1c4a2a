"""MrCoM's multi-scenario suite: observation functions, target-speed objectives, scenarios and
their in- and out-of-distribution splits (``../shared/specs/mrcom.md``)."""

from __future__ import annotations

from benchmarks.scenarios.objectives import (EMBODIMENTS, normalised_score, speed_term,
                                             target_speed_reward)
from benchmarks.scenarios.observations import (OBSERVATION_FUNCTIONS, AddDimensions,
                                               AddGaussian, Identity, MaskFixed, MaskRandom,
                                               ObservedEnv)
from benchmarks.scenarios.suite import SPLITS, Scenario, sample_scenarios, scenario_env_factory

__all__ = [
    "EMBODIMENTS", "OBSERVATION_FUNCTIONS", "SPLITS", "AddDimensions", "AddGaussian", "Identity",
    "MaskFixed", "MaskRandom", "ObservedEnv", "Scenario", "normalised_score", "sample_scenarios",
    "scenario_env_factory", "speed_term", "target_speed_reward",
]
