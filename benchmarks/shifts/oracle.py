"""The oracle context of AugWM's "is augmenting dynamics even worthwhile" check.

Under DAS, shifted dynamics are modelled as ``delta* = z * delta``: the state change under the
test dynamics is the training dynamics' change scaled per dimension. The oracle measures ``z``
from the simulator: for each transition ``(s, a, s')`` of the (shifted) test episode it replays
``a`` from the same MuJoCo state in an unshifted twin of the environment, giving the training
dynamics' ``delta``, and fits ``z_d = sum(delta*_d delta_d) / sum(delta_d^2)`` over the episode
so far (least squares per dimension; dimensions whose ``delta`` has not moved keep z = 1),
clipped to the augmentation's train range. It needs observations with ``"physics"`` (make the
test environments with ``record_physics=True``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from benchmarks.envs import make_env

_MIN_SUM_SQUARES = 1e-8


class OracleContext:
  """True per-dimension DAS scale of the test dynamics, from an unshifted simulator twin.

  Attributes:
    low, high: the clip range (AugWM's augmentation train range).
  """

  def __init__(self, task: str, low: float, high: float, action_repeat: int = 2,
               observation_key: str = "state"):
    self.low, self.high, self.key = low, high, observation_key
    # Never reaches its time limit: each transition is replayed from a set state.
    self._twin = make_env(task, action_repeat=action_repeat, episode_length=10**8)
    self._twin.reset()
    self.reset()

  def reset(self) -> None:
    self._cross = self._squares = None

  def observe(self, observation: Mapping[str, np.ndarray], action: np.ndarray,
              next_observation: Mapping[str, np.ndarray]) -> None:
    """Adds one test transition; ``observation`` must hold ``"physics"``."""
    if "physics" not in observation:
      raise KeyError("OracleContext needs the 'physics' observation: make the test environments "
                     "with record_physics=True.")
    s = np.asarray(observation[self.key], np.float64)
    true_delta = np.asarray(next_observation[self.key], np.float64) - s
    self._twin.set_physics_state(observation["physics"])
    default_next = self._twin.step(np.asarray(action, np.float32)).observation[self.key]
    delta = np.asarray(default_next, np.float64) - s
    if self._cross is None:
      self._cross, self._squares = np.zeros_like(s), np.zeros_like(s)
    self._cross += true_delta * delta
    self._squares += delta * delta

  def context(self) -> np.ndarray:
    """``[S]`` float32 z over the transitions observed since ``reset``."""
    if self._cross is None:
      raise RuntimeError("OracleContext.context() before any observed transition.")
    moved = self._squares > _MIN_SUM_SQUARES
    z = np.where(moved, self._cross / np.where(moved, self._squares, 1.0), 1.0)
    return np.clip(z, self.low, self.high).astype(np.float32)
