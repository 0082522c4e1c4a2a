"""Environment factories for evaluation and online data collection (dm_control suite)."""

from __future__ import annotations

from benchmarks.envs.dmc import (OBS_TYPES, TASKS, DMCEnv, EnvSpec, RenderingError, env_spec,
                                 make_env, make_env_factory)

__all__ = [
    "OBS_TYPES",
    "TASKS",
    "DMCEnv",
    "EnvSpec",
    "RenderingError",
    "env_spec",
    "make_env",
    "make_env_factory",
]
