"""Environment factories for evaluation and online data collection.

``dmc``: the dm_control suite (``make_env``, ``make_env_factory``); ``gym_mujoco``: the
gymnasium MuJoCo v5 locomotion tasks behind the same ``dm_env`` contract (``GYM_TASKS``,
``GymMujocoEnv``, ``make_gym_env_factory``). The gymnasium names are loaded on first access,
so that importing this package imports neither gymnasium nor MuJoCo (nor dm_control, which
``dmc`` imports lazily itself).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from benchmarks.envs.dmc import (OBS_TYPES, SUITE_EPISODE_FRAMES, TASKS, DMCEnv, EnvSpec,
                                 RenderingError, env_spec, make_env, make_env_factory)

if TYPE_CHECKING:
  from benchmarks.envs.gym_mujoco import (DEFAULT_EPISODE_LENGTH, GYM_TASKS, GymMujocoEnv,
                                          make_gym_env_factory)

_LAZY_MODULES = {
    "DEFAULT_EPISODE_LENGTH": "benchmarks.envs.gym_mujoco",
    "GYM_TASKS": "benchmarks.envs.gym_mujoco",
    "GymMujocoEnv": "benchmarks.envs.gym_mujoco",
    "make_gym_env_factory": "benchmarks.envs.gym_mujoco",
}

__all__ = [
    "DEFAULT_EPISODE_LENGTH",
    "GYM_TASKS",
    "OBS_TYPES",
    "TASKS",
    "DMCEnv",
    "EnvSpec",
    "GymMujocoEnv",
    "RenderingError",
    "SUITE_EPISODE_FRAMES",
    "env_spec",
    "make_env",
    "make_env_factory",
    "make_gym_env_factory",
]


def __getattr__(name: str) -> Any:
  """Imports the gymnasium names on first access (PEP 562)."""
  if name in _LAZY_MODULES:
    value = getattr(importlib.import_module(_LAZY_MODULES[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))
