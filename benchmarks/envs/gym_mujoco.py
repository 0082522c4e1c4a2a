"""gymnasium MuJoCo v5 locomotion tasks behind the same ``dm_env`` contract as ``DMCEnv``.

The AugWM experiments run on the OpenAI Gym / D4RL tasks (HalfCheetah, Walker2d, Hopper, Ant);
``GymMujocoEnv`` wraps their gymnasium v5 versions so that evaluation code written for our
dm_control envs works unchanged:

* observations are dicts ``{"state": float32 [D]}``;
* ``reset`` / ``step`` return ``dm_env.TimeStep``; after a LAST step, ``step`` resets;
* a termination (Hopper, Walker2d and Ant end the episode on unhealthy states; HalfCheetah
  never terminates) gives discount 0, the time limit (``episode_length`` agent steps, 1000 by
  default as in Gym and D4RL) gives discount 1 (a truncation);
* ``action_spec`` is a float32 ``BoundedArray`` and ``.model`` / ``.data`` are the raw MuJoCo
  model and data, which ``benchmarks.shifts.shifted_env`` perturbs in place;
* with ``record_physics=True`` observations also hold ``"physics"``: float32 ``[nq + nv]``, the
  MuJoCo state ``(qpos, qvel)`` (what D4RL stores as ``infos/qpos`` and ``infos/qvel``), as
  ``DMCEnv`` records ``physics.get_state()``.

Action repeat defaults to 1 (the D4RL convention: the task's own ``frame_skip`` already makes
one step 4 or 5 physics steps).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import dm_env
import gymnasium
import mujoco
import numpy as np
from dm_env import specs

GYM_TASKS: tuple[str, ...] = ("HalfCheetah-v5", "Walker2d-v5", "Hopper-v5", "Ant-v5")
DEFAULT_EPISODE_LENGTH = 1000  # agent steps
_SETTOTALMASS_WARNING = "'settotalmass' is deprecated"


def _make_bare_env(task_name: str, **env_kwargs: Any) -> gymnasium.Env:
  """The bare gymnasium ``MujocoEnv`` of ``task_name``, made without MuJoCo's harmless
  "'settotalmass' is deprecated" compiler warning (HalfCheetah's XML uses the attribute;
  unhandled, MuJoCo prints it and appends it to ``MUJOCO_LOG.TXT`` in the working directory).
  Other MuJoCo warnings raised meanwhile go to this module's logger."""

  def on_warning(message: str) -> None:
    if _SETTOTALMASS_WARNING not in message:
      logging.getLogger(__name__).warning("MuJoCo: %s", message)

  previous = mujoco.get_mju_user_warning()
  mujoco.set_mju_user_warning(on_warning)
  try:
    return gymnasium.make(task_name, disable_env_checker=True, **env_kwargs).unwrapped
  finally:
    mujoco.set_mju_user_warning(previous)


class GymMujocoEnv(dm_env.Environment):
  """A gymnasium MuJoCo task as a ``dm_env.Environment`` with dict observations.

  Attributes:
    task_name: the gymnasium id, e.g. "Hopper-v5".
    action_repeat: gymnasium steps per agent step (rewards summed).
    episode_length: agent steps before truncation.
  """

  def __init__(self, task_name: str, *, seed: int = 0, action_repeat: int = 1,
               episode_length: int = DEFAULT_EPISODE_LENGTH, record_physics: bool = False,
               **env_kwargs: Any):
    """Makes the task and seeds it with ``reset(seed=seed)`` (once; later resets continue
    the seeded random stream).

    Args:
      task_name: one of ``GYM_TASKS``.
      seed: seeds the initial-state noise.
      action_repeat: gymnasium steps per agent step.
      episode_length: agent steps per episode.
      record_physics: add the ``"physics"`` observation (float32 ``[nq + nv]``: qpos, qvel).
      **env_kwargs: keyword arguments of the gymnasium env (e.g. ``terminate_when_unhealthy``).

    Raises:
      ValueError: unknown task or non-positive ``action_repeat`` / ``episode_length``.
    """
    if task_name not in GYM_TASKS:
      raise ValueError(f"Unknown task {task_name!r}; known tasks: {', '.join(GYM_TASKS)}.")
    for name, value in (("action_repeat", action_repeat), ("episode_length", episode_length)):
      if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    self.task_name = task_name
    self.action_repeat = action_repeat
    self.episode_length = episode_length
    # The bare MujocoEnv: this adapter enforces the time limit itself, in agent steps.
    self._env = _make_bare_env(task_name, **env_kwargs)
    self._env.reset(seed=seed)
    self._step_in_episode = 0
    self._needs_reset = True
    space = self._env.action_space
    self._action_spec = specs.BoundedArray(
        shape=space.shape, dtype=np.float32, minimum=np.asarray(space.low, np.float32),
        maximum=np.asarray(space.high, np.float32), name="action")
    self._record_physics = record_physics
    self._observation_spec = {
        "state": specs.Array(self._env.observation_space.shape, np.float32, name="state")}
    if record_physics:
      model = self._env.model
      self._observation_spec["physics"] = specs.Array((model.nq + model.nv,), np.float32,
                                                      name="physics")

  @property
  def model(self) -> mujoco.MjModel:
    """The raw MuJoCo model (may be perturbed in place)."""
    return self._env.model

  @property
  def data(self) -> mujoco.MjData:
    """The raw MuJoCo data."""
    return self._env.data

  def set_physics_state(self, physics_state: np.ndarray) -> None:
    """Puts the simulator in a recorded state (``[nq + nv]``, as in the ``"physics"``
    observation: qpos, then qvel)."""
    nq = self._env.model.nq
    state = np.asarray(physics_state, np.float64)
    self._env.set_state(state[:nq], state[nq:])

  def observation_spec(self) -> dict[str, specs.Array]:
    return dict(self._observation_spec)

  def action_spec(self) -> specs.BoundedArray:
    return self._action_spec

  def reset(self) -> dm_env.TimeStep:
    observation, _ = self._env.reset()
    self._step_in_episode = 0
    self._needs_reset = False
    return dm_env.restart(self._observation(observation))

  def step(self, action: np.ndarray) -> dm_env.TimeStep:
    """Applies ``action`` ``action_repeat`` times, or until the episode terminates.

    Returns:
      A MID step, or a LAST step with discount 0 (termination) or 1 (time limit). After a
      LAST step, ``step`` resets instead (dm_env protocol).
    """
    if self._needs_reset:
      return self.reset()
    reward = 0.0
    terminated = False
    for _ in range(self.action_repeat):
      observation, step_reward, terminated, _, _ = self._env.step(
          np.asarray(action, np.float32))
      reward += float(step_reward)
      if terminated:
        break
    self._step_in_episode += 1
    observation = self._observation(observation)
    if terminated:
      self._needs_reset = True
      return dm_env.termination(reward, observation)
    if self._step_in_episode >= self.episode_length:
      self._needs_reset = True
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def close(self) -> None:
    self._env.close()

  def _observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
    out = {"state": np.asarray(observation, np.float32)}
    if self._record_physics:
      data = self._env.data
      out["physics"] = np.concatenate([data.qpos, data.qvel]).astype(np.float32)
    return out


def make_gym_env_factory(task_name: str, **kwargs: Any) -> Callable[[int], GymMujocoEnv]:
  """Binds every ``GymMujocoEnv`` argument but the seed.

  Args:
    task_name: one of ``GYM_TASKS``.
    **kwargs: any other keyword argument of ``GymMujocoEnv`` except ``seed``.

  Returns:
    ``factory(seed)`` returning ``GymMujocoEnv(task_name, seed=seed, **kwargs)``.
  """

  def factory(seed: int) -> GymMujocoEnv:
    """Returns a new environment for ``task_name`` seeded with ``seed``."""
    return GymMujocoEnv(task_name, seed=seed, **kwargs)

  return factory
