"""The oracle context of AugWM's "is augmenting dynamics even worthwhile" check.

Under DAS, shifted dynamics are modelled as ``delta* = z * delta``: the state change under the
test dynamics is the training dynamics' change scaled per dimension. The oracle measures ``z``
from the simulator: for each transition ``(s, a, s')`` of the (shifted) test episode it replays
``a`` from the same MuJoCo state in an unshifted twin of the environment, giving the training
dynamics' ``delta``, and fits ``z_d = sum(delta*_d delta_d) / sum(delta_d^2)`` over the episode
so far (least squares per dimension; dimensions whose ``delta`` has not moved keep z = 1),
clipped to the augmentation's train range. It needs observations with ``"physics"`` (make the
test environments with ``record_physics=True``). dm_control tasks and the gymnasium ones
(``GYM_TASKS``) alike.

``true_scale`` measures the same ``z`` once, for a whole target environment, on a dataset's
recorded transitions: the paper's oracle experiment trains AugWM with it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np

from benchmarks.envs import GYM_TASKS, make_env, make_gym_env_factory
from benchmarks.shifts.perturbations import Perturbation
from benchmarks.shifts.shifted_env import ShiftedEnv

_NEVER = 10**8  # an episode length the twins never reach: each transition starts from a set state


def simulator_twin(task: str, action_repeat: int):
  """An environment of ``task`` that can be put in any recorded state and stepped from it."""
  if task in GYM_TASKS:
    env = make_gym_env_factory(task, action_repeat=action_repeat, episode_length=_NEVER)(0)
  else:
    env = make_env(task, action_repeat=action_repeat, episode_length=_NEVER)
  env.reset()
  return env

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
    self._twin = simulator_twin(task, action_repeat)

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


def true_scale(task: str, perturbation: Perturbation, states: np.ndarray, physics: np.ndarray,
               actions: np.ndarray, low: float, high: float, action_repeat: int = 2) -> np.ndarray:
  """The DAS scale ``z = delta* / delta`` of a perturbed environment, per state dimension.

  Each recorded transition start is replayed with its action in the perturbed and in the
  default simulator; ``z_d`` is the least-squares ratio of the two state changes over all of
  them (as :class:`OracleContext` fits it over an episode), clipped to ``[low, high]``.

  Args:
    task: the environment (dm_control or gymnasium).
    perturbation: the target dynamics.
    states: ``[N, S]`` observations ``"state"`` at the transition starts.
    physics: ``[N, P]`` their recorded ``"physics"`` states.
    actions: ``[N, A]`` the actions taken there.
    low, high: the clip range (AugWM's train range of z).
    action_repeat: the dataset's.

  Returns:
    ``[S]`` float32.
  """
  if not len(states) == len(physics) == len(actions) > 0:
    raise ValueError(f"true_scale needs as many states, physics states and actions (> 0), got "
                     f"{len(states)}, {len(physics)} and {len(actions)}")
  oracle = OracleContext(task, low, high, action_repeat)
  shifted = ShiftedEnv(simulator_twin(task, action_repeat), perturbation)
  sums = None
  for s, p, a in zip(states, physics, actions):
    shifted.env.set_physics_state(p)
    shifted_next = shifted.env.step(np.asarray(a, np.float32)).observation["state"]
    sums = oracle.observe(sums, {"state": s, "physics": p}, a, {"state": shifted_next})
  return oracle.context(sums)

