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

import dataclasses
from typing import Mapping, Optional

import numpy as np

from benchmarks.envs import make_env

_MIN_SUM_SQUARES = 1e-8


@dataclasses.dataclass(frozen=True)
class OracleSums:
  """The per-dimension least-squares sums over the transitions seen: ``cross = sum(delta* *
  delta)`` and ``squares = sum(delta^2)`` (``[S]`` float64)."""

  cross: np.ndarray
  squares: np.ndarray


class OracleContext:
  """True per-dimension DAS scale of the test dynamics, from an unshifted simulator twin.

  Its state over an episode is a carry (``init`` / ``observe`` / ``context``), so a stateful
  policy can hold it (``worldmodels.agents.augwm.context.AugWMPolicy``); the twin itself keeps
  nothing between calls (each transition is replayed from its recorded MuJoCo state).

  Attributes:
    low, high: the clip range (AugWM's augmentation train range).
  """

  def __init__(self, task: str, low: float, high: float, action_repeat: int = 2,
               observation_key: str = "state"):
    self.low, self.high, self.key = low, high, observation_key
    # Never reaches its time limit: each transition is replayed from a set state.
    self._twin = make_env(task, action_repeat=action_repeat, episode_length=10**8)
    self._twin.reset()

  def init(self) -> Optional[OracleSums]:
    """The carry before any transition."""
    return None

  def observe(self, sums: Optional[OracleSums], observation: Mapping[str, np.ndarray],
              action: np.ndarray, next_observation: Mapping[str, np.ndarray]) -> OracleSums:
    """Adds one test transition; ``observation`` must hold ``"physics"``."""
    if "physics" not in observation:
      raise KeyError("OracleContext needs the 'physics' observation: make the test environments "
                     "with record_physics=True.")
    s = np.asarray(observation[self.key], np.float64)
    true_delta = np.asarray(next_observation[self.key], np.float64) - s
    self._twin.set_physics_state(observation["physics"])
    default_next = self._twin.step(np.asarray(action, np.float32)).observation[self.key]
    delta = np.asarray(default_next, np.float64) - s
    if sums is None:
      sums = OracleSums(np.zeros_like(s), np.zeros_like(s))
    return OracleSums(sums.cross + true_delta * delta, sums.squares + delta * delta)

  def context(self, sums: Optional[OracleSums]) -> np.ndarray:
    """``[S]`` float32 z over the transitions observed so far."""
    if sums is None:
      raise RuntimeError("OracleContext.context() before any observed transition.")
    moved = sums.squares > _MIN_SUM_SQUARES
    z = np.where(moved, sums.cross / np.where(moved, sums.squares, 1.0), 1.0)
    return np.clip(z, self.low, self.high).astype(np.float32)
