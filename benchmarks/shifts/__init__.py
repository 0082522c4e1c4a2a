"""Shifted dynamics for zero-shot evaluation: MuJoCo model perturbations and gymnasium tasks."""

from __future__ import annotations

from benchmarks.shifts.gym_envs import GYM_TASKS, GymMujocoEnv, make_gym_env_factory
from benchmarks.shifts.perturbations import (CHEETAH_GRID_FACTORS, WALKER_GRID_FACTORS,
                                             BodyPartScale, Compose, CrippledActuators,
                                             DampingScale, MassScale, MidEpisodeSwitch,
                                             ModelDefaults, Perturbation, ShiftedEnv,
                                             TorsoLength, apply_perturbation,
                                             crippled_ant_legs, grid, halfcheetah_body_part,
                                             make_shifted_env_factory, raw_data, raw_model)

__all__ = [
    "CHEETAH_GRID_FACTORS",
    "GYM_TASKS",
    "WALKER_GRID_FACTORS",
    "BodyPartScale",
    "Compose",
    "CrippledActuators",
    "DampingScale",
    "GymMujocoEnv",
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
    "make_gym_env_factory",
    "make_shifted_env_factory",
    "raw_data",
    "raw_model",
]
