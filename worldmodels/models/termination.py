"""Known termination functions ``(s, a, s') -> done [B]`` of tasks that have them.

dm_control tasks never terminate (time limits only). The gymnasium MuJoCo v5 tasks end when the
robot is unhealthy; these mirror gymnasium's default healthy ranges on its default observations
(``exclude_current_positions_from_observation=True``, so ``obs[0]`` is the torso height).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp

TerminationFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def hopper_v5(state, action, next_state):
  """Unhealthy: height <= 0.7, |angle| >= 0.2, or any of obs[1:] outside (-100, 100)."""
  del state, action
  z, angle = next_state[:, 0], next_state[:, 1]
  healthy = ((z > 0.7) & (jnp.abs(angle) < 0.2)
             & jnp.all(jnp.abs(next_state[:, 1:]) < 100.0, axis=-1))
  return ~healthy


def walker2d_v5(state, action, next_state):
  """Unhealthy: height outside (0.8, 2.0) or |angle| >= 1."""
  del state, action
  z, angle = next_state[:, 0], next_state[:, 1]
  return ~((z > 0.8) & (z < 2.0) & (jnp.abs(angle) < 1.0))


def ant_v5(state, action, next_state):
  """Unhealthy: torso height outside [0.2, 1.0] or a non-finite observation."""
  del state, action
  z = next_state[:, 0]
  return ~((z >= 0.2) & (z <= 1.0) & jnp.all(jnp.isfinite(next_state), axis=-1))


TERMINATION_FNS: Dict[str, TerminationFn] = {
    "Hopper-v5": hopper_v5, "Walker2d-v5": walker2d_v5, "Ant-v5": ant_v5}


def termination_for(task: Optional[str]) -> Optional[TerminationFn]:
  """The task's termination function, or None for tasks that never terminate (dm_control,
  HalfCheetah)."""
  return TERMINATION_FNS.get(task or "")
