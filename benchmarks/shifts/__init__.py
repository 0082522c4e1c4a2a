"""Shifted dynamics for zero-shot evaluation: MuJoCo model perturbations and shifted envs."""

from __future__ import annotations

from benchmarks.shifts.perturbations import (CHEETAH_GRID_FACTORS, WALKER_GRID_FACTORS,
                                             BodyPartScale, Compose, CrippledActuators,
                                             DampingScale, MassScale, MidEpisodeSwitch,
                                             ModelDefaults, Perturbation, TorsoLength,
                                             apply_perturbation, crippled_ant_legs, grid,
                                             halfcheetah_body_part)
from benchmarks.shifts.shifted_env import (ShiftedEnv, make_shifted_env_factory, raw_data,
                                           raw_model)

__all__ = [
    "CHEETAH_GRID_FACTORS",
    "WALKER_GRID_FACTORS",
    "BodyPartScale",
    "Compose",
    "CrippledActuators",
    "DampingScale",
    "MassScale",
    "MidEpisodeSwitch",
    "ModelDefaults",
    "Perturbation",
    "ShiftedEnv",
    "TorsoLength",
    "apply_perturbation",
    "crippled_ant_legs",
    "grid",
    "halfcheetah_body_part",
    "make_shifted_env_factory",
    "raw_data",
    "raw_model",
]
