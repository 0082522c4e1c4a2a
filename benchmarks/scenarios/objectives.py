"""MrCoM's objectives: run at a target forward speed ``v* = rho * v_max``.

The reward of each embodiment keeps its DMC task's posture terms and replaces the task's "at
least this fast" speed term by one that peaks at the target (ours; the paper states only that
the objective is a target speed):

    speed_term(v; v*) = max(0, 1 - |v - v*| / v*),

1 at ``v = v*``, falling linearly to 0 at standstill and at twice the target. Per embodiment:

* ``cheetah-run``: ``speed_term`` of the torso's forward speed (DMC: ``tolerance(v, (10, inf),
  margin 10)``).
* ``walker-walk``: ``stand * (5 * speed_term + 1) / 6`` of the horizontal velocity, with DMC's
  ``stand = (3 * tolerance(torso height, (1.2, inf), margin 0.6) + (1 + upright) / 2) / 4``.
* ``hopper-hop``: ``standing * speed_term``, with DMC's ``standing = tolerance(height,
  (0.6, 2))``.

``v_max`` is the fastest forward speed under default dynamics; it is measured (the mean forward
speed of the expert behaviour policy) and recorded with the datasets.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

EMBODIMENTS = ("hopper-hop", "walker-walk", "cheetah-run")


def speed_term(speed, target: float):
  """``max(0, 1 - |speed - target| / target)``: 1 at the target, 0 at 0 and 2 x target."""
  if target <= 0:
    raise ValueError(f"the target speed must be positive, got {target}.")
  return np.maximum(0.0, 1.0 - np.abs(np.asarray(speed, np.float64) - target) / target)


def forward_speed(task: str, physics) -> float:
  """The forward speed that the embodiment's speed term reads."""
  if task == "walker-walk":
    return float(physics.horizontal_velocity())
  if task in ("cheetah-run", "hopper-hop"):
    return float(physics.speed())
  raise ValueError(f"no target-speed objective for {task!r}; MrCoM's embodiments are "
                   f"{', '.join(EMBODIMENTS)}.")


def target_speed_reward(task: str, target: float) -> Callable[[object], float]:
  """``reward(physics)`` of ``task`` with the speed term peaking at ``target`` (for
  ``DMCEnv.set_reward``)."""
  from dm_control.utils import rewards  # pylint: disable=import-outside-toplevel
  speed_term(1.0, target)  # a clear error for a bad target now, not at the first step
  if task == "cheetah-run":
    return lambda physics: float(speed_term(forward_speed(task, physics), target))
  if task == "walker-walk":
    def walker(physics) -> float:
      standing = rewards.tolerance(physics.torso_height(), bounds=(1.2, float("inf")),
                                   margin=0.6)
      stand = (3 * standing + (1 + physics.torso_upright()) / 2) / 4
      return float(stand * (5 * speed_term(forward_speed(task, physics), target) + 1) / 6)
    return walker
  if task == "hopper-hop":
    def hopper(physics) -> float:
      standing = rewards.tolerance(physics.height(), (0.6, 2.0))
      return float(standing * speed_term(forward_speed(task, physics), target))
    return hopper
  forward_speed(task, None)  # raises the error naming the embodiments
  raise AssertionError("unreachable")


MAX_RETURN = 1000.0  # DMC episodes: 1000 frames, rewards in [0, 1] per frame


def normalised_score(episode_return):
  """MrCoM's normalised score in [0, 100] (``../shared/specs/mrcom.md``, ours):
  ``100 x return / 1000``, DMC returns lying in [0, 1000]."""
  return np.clip(100.0 * np.asarray(episode_return, np.float64) / MAX_RETURN, 0.0, 100.0)
