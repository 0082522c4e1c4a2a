"""dm_control suite environments with the DrQ-v2 / V-D4RL conventions.

``make_env("walker-walk")`` returns a ``dm_env.Environment`` whose observations are dicts:

* ``"state"``: float32 ``[D]``, every suite observation entry flattened and concatenated in the
  suite's key order (``obs_type`` "state" or "both");
* ``"pixels"``: uint8 ``[H, W, 3]``, the current rendered frame (``obs_type`` "pixels" or
  "both"); frame stacks are the agent's: its spec declares them, the samplers rebuild them from
  stored frames and ``worldmodels.training.acting.FrameStack`` stacks live frames;
* ``"physics"`` (with ``record_physics=True``): float32 ``[P]``, the MuJoCo state
  ``physics.get_state()`` (qpos, qvel, act), from which pixels can be rendered later
  (``set_physics_state`` then ``render``) without re-running the policy.

Each agent step repeats its action ``action_repeat`` times (rewards summed, discounts
multiplied), so the suite's 1000-frame episodes last ``1000 / action_repeat`` agent steps.

dm_control is imported lazily, inside the functions that need it: it picks its OpenGL backend
from ``MUJOCO_GL`` once, at its first import, so ``make_env`` must be able to set that variable
first when pixels are requested.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any, Callable

import dm_env
import numpy as np
from dm_env import specs

if TYPE_CHECKING:
  from dm_control.mujoco import engine
  from dm_control.rl import control

# Every dm_control suite task, as "domain-task" (dm_control.suite.ALL_TASKS, kept in sync by a
# test; spelled out so that importing this module does not import dm_control).
TASKS: tuple[str, ...] = (
    "acrobot-swingup", "acrobot-swingup_sparse", "ball_in_cup-catch", "cartpole-balance",
    "cartpole-balance_sparse", "cartpole-swingup", "cartpole-swingup_sparse",
    "cartpole-two_poles", "cartpole-three_poles", "cheetah-run", "dog-stand", "dog-walk",
    "dog-trot", "dog-run", "dog-fetch", "finger-spin", "finger-turn_easy", "finger-turn_hard",
    "fish-upright", "fish-swim", "hopper-stand", "hopper-hop", "humanoid-stand",
    "humanoid-walk", "humanoid-run", "humanoid-run_pure_state", "humanoid_CMU-stand",
    "humanoid_CMU-walk", "humanoid_CMU-run", "lqr-lqr_2_1", "lqr-lqr_6_2",
    "manipulator-bring_ball", "manipulator-bring_peg", "manipulator-insert_ball",
    "manipulator-insert_peg", "pendulum-swingup", "point_mass-easy", "point_mass-hard",
    "quadruped-walk", "quadruped-run", "quadruped-escape", "quadruped-fetch", "reacher-easy",
    "reacher-hard", "stacker-stack_2", "stacker-stack_4", "swimmer-swimmer6",
    "swimmer-swimmer15", "walker-stand", "walker-walk", "walker-run",
)
OBS_TYPES: tuple[str, ...] = ("state", "pixels", "both")
SUITE_EPISODE_FRAMES = 1000  # the standard tasks' time limit, in physics control steps

# DrQ-v2 / V-D4RL camera choice: the quadruped is filmed by its tracking camera 2.
_DEFAULT_CAMERA_ID = 0
_DOMAIN_CAMERA_IDS = {"quadruped": 2}


_BACKEND_AT_IMPORT: dict = {}  # MUJOCO_GL when dm_control was first imported here


class RenderingError(RuntimeError):
  """MuJoCo could not render pixel observations (no usable OpenGL backend)."""


class _SettotalmassFilter(logging.Filter):
  """Drops MuJoCo's harmless 'settotalmass is deprecated' warning (cheetah's XML uses it)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "'settotalmass' is deprecated" not in record.getMessage()


_SETTOTALMASS_FILTER = _SettotalmassFilter()


@dataclasses.dataclass(frozen=True)
class EnvSpec:
  """Shapes and bounds of an environment, as models and agents need them.

  Attributes:
    obs_shapes: observation key -> shape, e.g. ``{"state": (24,)}``.
    obs_dtypes: observation key -> numpy dtype (float32 state, uint8 pixels).
    action_dim: A, the size of the action vector.
    action_min: float32 ``[A]`` lower action bounds.
    action_max: float32 ``[A]`` upper action bounds.
  """

  obs_shapes: dict[str, tuple[int, ...]]
  obs_dtypes: dict[str, np.dtype]
  action_dim: int
  action_min: np.ndarray
  action_max: np.ndarray


class DMCEnv(dm_env.Environment):
  """A dm_control suite environment with dict observations and action repeat.

  Attributes:
    task_name: the "domain-task" name, e.g. "walker-walk".
    action_repeat: physics control steps per agent step.
  """

  def __init__(self, suite_env: control.Environment, task_name: str, *, obs_type: str,
               action_repeat: int, image_size: int, camera_id: int,
               record_physics: bool = False):
    self.task_name = task_name
    self.camera_id = camera_id
    self._record_physics = record_physics
    self.action_repeat = action_repeat
    self._env = suite_env
    self._use_state = obs_type in ("state", "both")
    self._use_pixels = obs_type in ("pixels", "both")
    self._image_size = image_size
    self._frame: np.ndarray | None = None
    self._needs_reset = True

    suite_action_spec = suite_env.action_spec()
    self._action_spec = specs.BoundedArray(
        shape=suite_action_spec.shape, dtype=np.float32,
        minimum=np.asarray(suite_action_spec.minimum, np.float32),
        maximum=np.asarray(suite_action_spec.maximum, np.float32), name="action")
    self._observation_spec: dict[str, specs.Array] = {}
    if self._use_state:
      state_dim = sum(int(np.prod(spec.shape)) for spec in suite_env.observation_spec().values())
      self._observation_spec["state"] = specs.Array((state_dim,), np.float32, name="state")
    if record_physics:
      self._observation_spec["physics"] = specs.Array(
          suite_env.physics.get_state().shape, np.float32, name="physics")
    if self._use_pixels:
      self._observation_spec["pixels"] = specs.Array(
          (image_size, image_size, 3), np.uint8, name="pixels")
      # Render once now, so that a broken OpenGL setup fails at construction rather than at a
      # first reset that may come hours later (e.g. the first evaluation).
      self._render()

  @property
  def physics(self) -> engine.Physics:
    """The suite's ``dm_control.mujoco.Physics`` (its ``model`` may be perturbed in place)."""
    return self._env.physics

  def observation_spec(self) -> dict[str, specs.Array]:
    return dict(self._observation_spec)

  def action_spec(self) -> specs.BoundedArray:
    return self._action_spec

  def reset(self) -> dm_env.TimeStep:
    time_step = self._env.reset()
    self._needs_reset = False
    if self._use_pixels:
      self._frame = self._render()
    return time_step._replace(observation=self._observation(time_step.observation))

  def step(self, action: np.ndarray) -> dm_env.TimeStep:
    """Applies ``action`` (``[A]``) ``action_repeat`` times, or until the episode ends.

    Returns:
      The last suite time step with the summed reward, the product of the discounts and this
      wrapper's observation dict. After a LAST step, ``step`` resets instead (dm_env protocol).
    """
    if self._needs_reset:
      return self.reset()
    reward = 0.0
    discount = 1.0
    for _ in range(self.action_repeat):
      time_step = self._env.step(action)
      reward += time_step.reward
      discount *= time_step.discount
      if time_step.last():
        self._needs_reset = True
        break
    if self._use_pixels:
      self._frame = self._render()
    return time_step._replace(reward=reward, discount=discount,
                              observation=self._observation(time_step.observation))

  def close(self) -> None:
    self._env.close()

  def _observation(self, suite_observation: collections.OrderedDict) -> dict[str, np.ndarray]:
    observation = {}
    if self._use_state:
      observation["state"] = np.concatenate(
          [np.asarray(value, np.float32).ravel() for value in suite_observation.values()])
    if self._record_physics:
      observation["physics"] = self._env.physics.get_state().astype(np.float32)
    if self._use_pixels:
      observation["pixels"] = self._frame
    return observation

  def set_physics_state(self, physics_state: np.ndarray) -> None:
    """Puts the simulator in a recorded state (``[P]``, as in the ``"physics"`` observation)
    and recomputes everything derived from it, so ``render`` shows that state."""
    physics = self._env.physics
    with physics.reset_context():
      physics.set_state(np.asarray(physics_state, np.float64))

  def set_reward(self, reward_function: Callable[[engine.Physics], float]) -> None:
    """Replaces the task's reward: ``reward_function(physics)`` is called at every physics
    control step in place of the suite's, and summed over the action repeat as the suite's
    reward is (e.g. MrCoM's target-speed objectives, ``benchmarks.scenarios.objectives``)."""
    self._env.task.get_reward = reward_function

  def render(self, image_size: int | None = None) -> np.ndarray:
    """Renders the current simulator state, uint8 ``[S, S, 3]`` (S: ``image_size`` or the
    environment's own size), with this environment's camera."""
    return self._render(image_size)

  def _render(self, image_size: int | None = None) -> np.ndarray:
    """Returns the current frame, uint8 ``[image_size, image_size, 3]``."""
    size = image_size or self._image_size
    try:
      return self._env.physics.render(height=size, width=size, camera_id=self.camera_id)
    except Exception as error:  # Any backend failure: EGL, OSMesa, GLFW or none at all.
      raise _rendering_error(error) from error


def _rendering_error(error: Exception) -> RenderingError:
  """What was tried and what to do: the backend dm_control chose at its import (from
  ``MUJOCO_GL`` then, which ``benchmarks`` sets to egl unless the shell set it)."""
  chosen = _BACKEND_AT_IMPORT.get("MUJOCO_GL", os.environ.get("MUJOCO_GL"))
  other = "osmesa" if chosen == "egl" else "egl"
  return RenderingError(
      f"MuJoCo rendering failed with the {chosen or 'default (GLFW)'} OpenGL backend "
      f"(MUJOCO_GL={chosen!r} when dm_control was imported): {type(error).__name__}: {error}. "
      f"Install its library (egl: libegl1; osmesa: libosmesa6), or try MUJOCO_GL={other} in "
      "the shell.")


def _load_suite_env(domain: str, task: str, seed: int, needs_rendering: bool,
                    episode_frames: int | None = None) -> control.Environment:
  """Imports dm_control (setting ``MUJOCO_GL=egl`` first if pixels are needed) and loads."""
  if needs_rendering:
    os.environ.setdefault("MUJOCO_GL", "egl")
  _BACKEND_AT_IMPORT.setdefault("MUJOCO_GL", os.environ.get("MUJOCO_GL"))
  try:
    from dm_control import suite
  except Exception as error:  # A missing OpenGL library fails the backend import.
    if needs_rendering:
      raise _rendering_error(error) from error
    raise
  absl_logger = logging.getLogger("absl")
  absl_logger.addFilter(_SETTOTALMASS_FILTER)  # Idempotent: filters are kept once.
  env = suite.load(domain, task, task_kwargs={"random": seed})
  if episode_frames is not None:
    # Half a control step below the limit so float rounding cannot add or drop a step.
    time_limit = (episode_frames - 0.5) * env.control_timestep()
    env = suite.load(domain, task, task_kwargs={"random": seed, "time_limit": time_limit})
  return env


def make_env(task: str, *, obs_type: str = "state", action_repeat: int = 2,
             image_size: int = 64, camera_id: int | None = None,
             seed: int = 0, episode_length: int | None = None,
             record_physics: bool = False) -> DMCEnv:
  """Makes a dm_control suite environment.

  Args:
    task: "domain-task", one of ``TASKS`` (e.g. "walker-walk", "quadruped-walk").
    obs_type: "state" (float32 ``[D]``), "pixels" (uint8 ``[H, W, 3]``) or
      "both".
    action_repeat: physics control steps per agent step (V-D4RL uses 2).
    image_size: H = W of rendered frames.
    camera_id: MuJoCo camera for pixels; None picks 2 for quadruped and 0 otherwise.
    seed: seeds the task's random state (initial states); same seed and actions give the
      same observations.
    episode_length: agent steps per episode (None: the suite's limit, 1000 frames for the
      standard tasks, i.e. 500 steps at action repeat 2). Shorter episodes make tiny test runs.
    record_physics: add the ``"physics"`` observation (the MuJoCo state, float32 ``[P]``).

  Returns:
    A ``DMCEnv`` (a ``dm_env.Environment``) with dict observations.

  Raises:
    ValueError: unknown ``task`` or ``obs_type``, or a non-positive ``action_repeat`` or
      ``image_size``.
    RenderingError: pixels were requested and MuJoCo cannot render.
  """
  if task not in TASKS:
    raise ValueError(f"Unknown task {task!r}; known tasks: {', '.join(TASKS)}.")
  if obs_type not in OBS_TYPES:
    raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}.")
  for name, value in (("action_repeat", action_repeat), ("image_size", image_size)):
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {value}.")
  domain, task_in_domain = task.split("-", 1)
  needs_rendering = obs_type != "state"
  if episode_length is not None and episode_length < 1:
    raise ValueError(f"episode_length must be >= 1 or None, got {episode_length}.")
  suite_env = _load_suite_env(domain, task_in_domain, seed, needs_rendering,
                              None if episode_length is None else episode_length * action_repeat)
  if camera_id is None:
    camera_id = _DOMAIN_CAMERA_IDS.get(domain, _DEFAULT_CAMERA_ID)
  return DMCEnv(suite_env, task, obs_type=obs_type, action_repeat=action_repeat,
                image_size=image_size, camera_id=camera_id,
                record_physics=record_physics)


def make_env_factory(task: str, **kwargs: Any) -> Callable[[int], DMCEnv]:
  """Binds every ``make_env`` argument but the seed (how the training loop gets envs).

  Args:
    task: as in ``make_env``.
    **kwargs: any other keyword argument of ``make_env`` except ``seed``.

  Returns:
    ``factory(seed)`` returning ``make_env(task, seed=seed, **kwargs)``.
  """

  def factory(seed: int) -> DMCEnv:
    """Returns a new environment for ``task`` seeded with ``seed``."""
    return make_env(task, seed=seed, **kwargs)

  return factory


def env_spec(env: dm_env.Environment) -> EnvSpec:
  """Reads the observation shapes/dtypes and action bounds of ``env``."""
  observation_spec = env.observation_spec()
  action_spec = env.action_spec()
  return EnvSpec(
      obs_shapes={key: tuple(spec.shape) for key, spec in observation_spec.items()},
      obs_dtypes={key: np.dtype(spec.dtype) for key, spec in observation_spec.items()},
      action_dim=int(np.prod(action_spec.shape)),
      action_min=np.broadcast_to(np.asarray(action_spec.minimum, np.float32),
                                 action_spec.shape).copy(),
      action_max=np.broadcast_to(np.asarray(action_spec.maximum, np.float32),
                                 action_spec.shape).copy())
