"""Tests for benchmarks.envs: dm_control factories, specs, action repeat, pixels, errors."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from dm_env import specs

from benchmarks.envs import (TASKS, RenderingError, env_spec, make_env,
                             make_env_factory)

# task -> (state dim D, action dim A).
_TASK_DIMS = {
    "walker-walk": (24, 6),
    "cheetah-run": (17, 6),
    "hopper-hop": (15, 4),
    "humanoid-walk": (67, 21),
    "quadruped-walk": (78, 12),
}
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _random_actions(env, num_steps, seed=0):
  """Returns float32 ``[num_steps, A]`` uniform actions within the env's bounds."""
  spec = env.action_spec()
  rng = np.random.default_rng(seed)
  return rng.uniform(spec.minimum, spec.maximum,
                     size=(num_steps,) + spec.shape).astype(np.float32)


def _run_script(script, mujoco_gl):
  """Runs ``script`` in a fresh interpreter (dm_control fixes its GL backend at import)."""
  env = {key: value for key, value in os.environ.items() if key != "MUJOCO_GL"}
  if mujoco_gl is not None:
    env["MUJOCO_GL"] = mujoco_gl
  return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=_REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=120, check=True)


def test_tasks_match_the_suite():
  from dm_control import suite
  assert TASKS == tuple(f"{domain}-{task}" for domain, task in suite.ALL_TASKS)


@pytest.mark.parametrize("task", sorted(_TASK_DIMS))
def test_state_env_specs_and_steps(task):
  state_dim, action_dim = _TASK_DIMS[task]
  env = make_env(task)
  assert env.task_name == task and env.action_repeat == 2
  assert env.observation_spec() == {"state": specs.Array((state_dim,), np.float32, "state")}
  spec = env_spec(env)
  assert spec.obs_shapes == {"state": (state_dim,)}
  assert spec.obs_dtypes == {"state": np.dtype(np.float32)}
  assert spec.action_dim == action_dim
  assert spec.action_min.dtype == np.float32 and spec.action_min.shape == (action_dim,)
  assert np.all(spec.action_min < spec.action_max)
  assert env.action_spec().dtype == np.float32

  time_step = env.reset()
  assert time_step.first()
  env.observation_spec()["state"].validate(time_step.observation["state"])
  for action in _random_actions(env, 3):
    time_step = env.step(action)
    env.observation_spec()["state"].validate(time_step.observation["state"])
    assert np.isfinite(time_step.reward) and time_step.discount == 1.0
  assert env.physics.model.nu == action_dim


def test_walker_action_bounds_are_unit():
  spec = env_spec(make_env("walker-walk"))
  np.testing.assert_array_equal(spec.action_min, -np.ones(6, np.float32))
  np.testing.assert_array_equal(spec.action_max, np.ones(6, np.float32))


def test_same_seed_same_observations_other_seed_differs():
  env_a, env_b, env_c = (make_env("hopper-hop", seed=seed) for seed in (7, 7, 8))
  first_a, first_b, first_c = env_a.reset(), env_b.reset(), env_c.reset()
  np.testing.assert_array_equal(first_a.observation["state"], first_b.observation["state"])
  assert not np.array_equal(first_a.observation["state"], first_c.observation["state"])
  for action in _random_actions(env_a, 10):
    step_a, step_b = env_a.step(action), env_b.step(action)
    np.testing.assert_array_equal(step_a.observation["state"], step_b.observation["state"])
    assert step_a.reward == step_b.reward


def test_factory_binds_everything_but_the_seed():
  factory = make_env_factory("cheetah-run", action_repeat=4)
  env = factory(3)
  assert env.task_name == "cheetah-run" and env.action_repeat == 4
  np.testing.assert_array_equal(env.reset().observation["state"],
                                make_env("cheetah-run", seed=3).reset().observation["state"])


@pytest.mark.parametrize("action_repeat", [1, 2, 3])
def test_action_repeat_sums_rewards_like_the_raw_suite(action_repeat):
  from dm_control import suite
  raw_env = suite.load("walker", "walk", task_kwargs={"random": 5})
  env = make_env("walker-walk", action_repeat=action_repeat, seed=5)
  raw_env.reset()
  env.reset()
  for action in _random_actions(env, 5):
    raw_steps = [raw_env.step(action) for _ in range(action_repeat)]
    raw_state = np.concatenate([np.asarray(value, np.float32).ravel()
                                for value in raw_steps[-1].observation.values()])
    time_step = env.step(action)
    assert time_step.reward == pytest.approx(sum(step.reward for step in raw_steps), rel=1e-12)
    np.testing.assert_array_equal(time_step.observation["state"], raw_state)


def test_episode_lasts_500_agent_steps_with_action_repeat_2():
  env = make_env("cheetah-run")
  env.reset()
  zero_action = np.zeros(env.action_spec().shape, np.float32)
  num_steps = 0
  time_step = env.step(zero_action)
  num_steps += 1
  while not time_step.last():
    time_step = env.step(zero_action)
    num_steps += 1
  assert num_steps == 500
  assert env.step(zero_action).first()  # dm_env protocol: stepping after LAST resets.


@pytest.mark.parametrize("image_size", [64, 84])
def test_pixels_shape_dtype_and_content(image_size):
  env = make_env("walker-walk", obs_type="pixels", image_size=image_size)
  expected = specs.Array((image_size, image_size, 3), np.uint8, "pixels")
  assert env.observation_spec() == {"pixels": expected}
  for time_step in (env.reset(), env.step(_random_actions(env, 1)[0])):
    pixels = time_step.observation["pixels"]
    expected.validate(pixels)
    assert pixels.min() != pixels.max()


def test_both_has_state_and_pixels_and_quadruped_uses_camera_2():
  env = make_env("quadruped-walk", obs_type="both")
  observation = env.reset().observation
  assert set(observation) == {"state", "pixels"}
  assert observation["state"].shape == (78,)
  np.testing.assert_array_equal(observation["pixels"],
                                env.physics.render(height=64, width=64, camera_id=2))


def test_frame_stack_fills_on_reset_and_shifts_on_step():
  from worldmodels.training.acting import FrameStack  # pylint: disable=import-outside-toplevel
  env = FrameStack(make_env("cheetah-run", obs_type="pixels"), {"pixels": 3})
  assert env.observation_spec()["pixels"].shape == (64, 64, 9)
  previous = env.reset().observation["pixels"]
  assert previous.shape == (64, 64, 9) and previous.dtype == np.uint8
  np.testing.assert_array_equal(previous[..., 0:3], previous[..., 3:6])
  np.testing.assert_array_equal(previous[..., 0:3], previous[..., 6:9])
  for action in _random_actions(env, 3):
    pixels = env.step(action).observation["pixels"]
    np.testing.assert_array_equal(pixels[..., 0:6], previous[..., 3:9])
    np.testing.assert_array_equal(pixels[..., 6:9],
                                  env.physics.render(height=64, width=64, camera_id=0))
    previous = pixels


def test_unknown_task_names_the_task_and_lists_known_ones():
  with pytest.raises(ValueError, match="walker-fly") as info:
    make_env("walker-fly")
  assert "walker-walk" in str(info.value) and "quadruped-walk" in str(info.value)
  with pytest.raises(ValueError, match="walker_walk"):
    make_env("walker_walk")


def test_bad_obs_type_names_the_argument():
  with pytest.raises(ValueError, match="obs_type.*'rgb'"):
    make_env("walker-walk", obs_type="rgb")


def test_import_is_lazy_and_pixels_default_to_egl():
  """Importing ``benchmarks`` (any entry point under it, or API use) picks EGL before
  dm_control can be imported, unless the shell chose a backend; no GLFW warning."""
  result = _run_script("""
      import os, sys
      import benchmarks.envs
      assert "dm_control" not in sys.modules
      assert os.environ["MUJOCO_GL"] == "egl"
      env = benchmarks.envs.make_env("walker-walk", obs_type="pixels")
      print(os.environ["MUJOCO_GL"], env.reset().observation["pixels"].shape)
      """, mujoco_gl=None)
  assert result.stdout.split() == ["egl", "(64,", "64,", "3)"]
  assert "GLFW" not in result.stderr and "DISPLAY" not in result.stderr
  chosen = _run_script("""
      import os, benchmarks
      print(os.environ["MUJOCO_GL"])
      """, mujoco_gl="osmesa")
  assert chosen.stdout.split() == ["osmesa"]  # the shell's choice is kept


def test_rendering_failure_raises_rendering_error():
  result = _run_script("""
      import benchmarks.envs
      benchmarks.envs.make_env("walker-walk")  # State needs no rendering.
      try:
        benchmarks.envs.make_env("walker-walk", obs_type="pixels")
      except benchmarks.envs.RenderingError as error:
        print(error)
      """, mujoco_gl="disable")
  message = result.stdout
  assert "with the disable OpenGL backend (MUJOCO_GL='disable' when dm_control was" in message
  assert "No OpenGL rendering backend is available" in message
  assert "libegl1" in message and "libosmesa6" in message and "try MUJOCO_GL=egl" in message
  assert issubclass(RenderingError, RuntimeError)
