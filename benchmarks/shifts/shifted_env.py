"""Shifted environments: a MuJoCo ``dm_env.Environment`` run under a perturbation.

``ShiftedEnv`` wraps a ``dm_env.Environment`` (our dm_control ``DMCEnv`` or the gymnasium
adapter ``benchmarks.envs.GymMujocoEnv``), snapshots the defaults of its model once, at
construction, and applies its perturbation (``benchmarks.shifts.perturbations``) with
``apply_perturbation``; a ``MidEpisodeSwitch`` perturbation makes it change the dynamics
mid-episode. ``make_shifted_env_factory`` builds such envs per seed; ``raw_model`` /
``raw_data`` reach the raw MuJoCo model and data of either kind of env.
"""

from __future__ import annotations

from typing import Callable

import dm_env
import mujoco
import numpy as np

from benchmarks.shifts.perturbations import (MidEpisodeSwitch, ModelDefaults, Perturbation,
                                             apply_perturbation)


def raw_model(env: dm_env.Environment) -> mujoco.MjModel:
  """The raw ``mujoco.MjModel`` of a dm_control ``DMCEnv`` (``.physics``) or a gym adapter
  (``.model``)."""
  if hasattr(env, "physics"):
    return env.physics.model.ptr
  return env.model


def raw_data(env: dm_env.Environment) -> mujoco.MjData:
  """The raw ``mujoco.MjData`` of ``env``, as ``raw_model``."""
  if hasattr(env, "physics"):
    return env.physics.data.ptr
  return env.data


class ShiftedEnv(dm_env.Environment):
  """A MuJoCo ``dm_env.Environment`` with perturbed dynamics.

  The defaults of the wrapped env's model are snapshotted once, at construction, before the
  perturbation is applied; every later change starts from them. A ``MidEpisodeSwitch``
  perturbation applies its ``before`` at each reset and its ``after`` from agent step ``step``.

  Attributes:
    perturbation: the perturbation (or switch) in force.
    defaults: the snapshot of the unperturbed model.
  """

  def __init__(self, env: dm_env.Environment, perturbation: Perturbation):
    self.perturbation = perturbation
    self._env = env
    self.defaults = ModelDefaults.snapshot(raw_model(env))
    self._active: Perturbation | None = None
    self._step_in_episode = 0
    self._needs_reset = True
    self._activate(self._scheduled(0))

  @property
  def env(self) -> dm_env.Environment:
    """The wrapped environment."""
    return self._env

  @property
  def model(self) -> mujoco.MjModel:
    """The (perturbed) raw MuJoCo model."""
    return raw_model(self._env)

  @property
  def data(self) -> mujoco.MjData:
    """The raw MuJoCo data."""
    return raw_data(self._env)

  @property
  def active(self) -> Perturbation:
    """The perturbation applied to the model right now."""
    return self._active

  def observation_spec(self):
    return self._env.observation_spec()

  def action_spec(self):
    return self._env.action_spec()

  def reset(self) -> dm_env.TimeStep:
    self._step_in_episode = 0
    self._needs_reset = False
    self._activate(self._scheduled(0))
    return self._env.reset()

  def step(self, action: np.ndarray) -> dm_env.TimeStep:
    """One agent step under the perturbation scheduled for it; resets after a LAST step."""
    if self._needs_reset:
      return self.reset()
    self._activate(self._scheduled(self._step_in_episode))
    time_step = self._env.step(action)
    self._step_in_episode += 1
    self._needs_reset = time_step.last()
    return time_step

  def close(self) -> None:
    self._env.close()

  def _scheduled(self, step_in_episode: int) -> Perturbation:
    if isinstance(self.perturbation, MidEpisodeSwitch):
      return self.perturbation.at(step_in_episode)
    return self.perturbation

  def _activate(self, perturbation: Perturbation) -> None:
    if perturbation is not self._active:
      apply_perturbation(self.model, perturbation, self.defaults)
      self._active = perturbation


def make_shifted_env_factory(base_factory: Callable[[int], dm_env.Environment],
                             perturbation: Perturbation) -> Callable[[int], ShiftedEnv]:
  """``factory(seed)`` returning ``ShiftedEnv(base_factory(seed), perturbation)``.

  Args:
    base_factory: ``seed -> env`` for a MuJoCo env, e.g. ``benchmarks.envs.make_env_factory(
      "walker-walk")`` or ``benchmarks.envs.make_gym_env_factory("Walker2d-v5")``.
    perturbation: applied to each new env's model.
  """

  def factory(seed: int) -> ShiftedEnv:
    """Returns a new perturbed environment seeded with ``seed``."""
    return ShiftedEnv(base_factory(seed), perturbation)

  return factory
