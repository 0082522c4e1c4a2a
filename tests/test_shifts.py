"""Tests for benchmarks.shifts (model perturbations, shifted envs) and the gymnasium adapter
of benchmarks.envs.gym_mujoco."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses  # noqa: E402

import dm_env  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from dm_env import specs  # noqa: E402

from benchmarks.envs import GYM_TASKS, make_env_factory, make_gym_env_factory  # noqa: E402
from benchmarks.shifts import (CHEETAH_GRID_FACTORS, WALKER_GRID_FACTORS,  # noqa: E402
                               BodyPartScale, Compose, CrippledActuators, DampingScale,
                               MassScale, MidEpisodeSwitch, ModelDefaults,
                               TorsoLength, apply_perturbation, crippled_ant_legs, grid,
                               halfcheetah_body_part, make_shifted_env_factory, raw_model)

_FIELDS = [field.name for field in dataclasses.fields(ModelDefaults)]


def _changed_fields(model, defaults: ModelDefaults) -> set[str]:
  return {name for name in _FIELDS
          if not np.array_equal(getattr(model, name), getattr(defaults, name))}


def _rollout(env: dm_env.Environment, actions: np.ndarray) -> np.ndarray:
  """States after each of ``actions`` from a reset."""
  env.reset()
  return np.stack([env.step(action).observation["state"] for action in actions])


def _actions(env: dm_env.Environment, steps: int, seed: int = 0) -> np.ndarray:
  spec = env.action_spec()
  return np.random.default_rng(seed).uniform(spec.minimum, spec.maximum,
                                             (steps,) + spec.shape).astype(np.float32)


@pytest.fixture(scope="module")
def cheetah_factory():
  return make_env_factory("cheetah-run", episode_length=20)


def test_mass_and_damping_change_exactly_their_fields_and_start_from_defaults(cheetah_factory):
  env = cheetah_factory(0)
  model = raw_model(env)
  defaults = ModelDefaults.snapshot(model)
  apply_perturbation(model, MassScale(2.0), defaults)
  assert _changed_fields(model, defaults) == {"body_mass", "body_inertia"}
  apply_perturbation(model, MassScale(0.5), defaults)  # From the defaults, not x2 x0.5 = x1.
  np.testing.assert_allclose(model.body_mass, 0.5 * defaults.body_mass)
  np.testing.assert_allclose(model.body_inertia, 0.5 * defaults.body_inertia)
  apply_perturbation(model, DampingScale(1.5), defaults)  # The mass change is undone.
  assert _changed_fields(model, defaults) == {"dof_damping"}
  np.testing.assert_allclose(model.dof_damping, 1.5 * defaults.dof_damping)
  apply_perturbation(model, Compose(MassScale(0.75), DampingScale(1.25)), defaults)
  assert _changed_fields(model, defaults) == {"body_mass", "body_inertia", "dof_damping"}
  np.testing.assert_allclose(model.body_mass, 0.75 * defaults.body_mass)
  np.testing.assert_allclose(model.dof_damping, 1.25 * defaults.dof_damping)


def test_mass_scale_changes_the_dynamics_and_unit_scale_does_not(cheetah_factory):
  actions = _actions(cheetah_factory(0), 20)
  reference = _rollout(cheetah_factory(0), actions)
  unit = _rollout(make_shifted_env_factory(cheetah_factory, MassScale(1.0))(0), actions)
  heavy = _rollout(make_shifted_env_factory(cheetah_factory, MassScale(1.5))(0), actions)
  np.testing.assert_array_equal(unit, reference)
  assert np.abs(heavy - reference).max() > 1e-2


def test_body_part_scale_scales_named_bodies_and_head_geom():
  env = make_gym_env_factory("HalfCheetah-v5", episode_length=5)(0)
  model = raw_model(env)
  defaults = ModelDefaults.snapshot(model)
  big_foot = halfcheetah_body_part("foot", big=True)
  assert big_foot.name == "big_foot"
  apply_perturbation(model, big_foot, defaults)
  feet = [model.body("bfoot").id, model.body("ffoot").id]
  changed_bodies = np.flatnonzero(model.body_mass != defaults.body_mass)
  np.testing.assert_array_equal(changed_bodies, sorted(feet))
  np.testing.assert_allclose(model.body_mass[feet], 1.25 * defaults.body_mass[feet])
  changed_geoms = {model.geom(g).name
                   for g in np.flatnonzero((model.geom_size != defaults.geom_size).any(axis=1))}
  assert changed_geoms == {"bfoot", "ffoot"}

  small_head = halfcheetah_body_part("head", big=False)
  apply_perturbation(model, small_head, defaults)
  head, torso = model.geom("head").id, model.body("torso").id
  np.testing.assert_allclose(model.geom_size[head], 0.75 * defaults.geom_size[head])
  assert 0.75 * defaults.body_mass[torso] < model.body_mass[torso] < defaults.body_mass[torso]
  assert BodyPartScale(("torso",), 1.2).name == "torso×1.2"


def test_crippled_actuator_has_no_effect(cheetah_factory):
  factory = make_shifted_env_factory(cheetah_factory, CrippledActuators((0, 3)))
  assert factory(0).active.name == "crippled:0+3"
  actions = _actions(factory(0), 15)
  reference = _rollout(factory(0), actions)  # Fresh envs: same seed, same initial state.
  altered = actions.copy()
  altered[:, [0, 3]] = -actions[:, [0, 3]]
  np.testing.assert_array_equal(_rollout(factory(0), altered), reference)
  other = actions.copy()
  other[:, 1] = -actions[:, 1]
  assert np.abs(_rollout(factory(0), other) - reference).max() > 1e-3


def test_crippled_ant_legs_resolve_actuators():
  legs = crippled_ant_legs(0, 3)
  assert legs.indices == (0, 1, 2, 3) and legs.name == "crippled_leg:0+3"
  with pytest.raises(ValueError):
    crippled_ant_legs(4)


@pytest.mark.parametrize("task, hips, lift", [
    ("walker-walk", ("right_thigh", "left_thigh"), 0.3 * 0.2),
    ("hopper-hop", ("pelvis",), 0.125 * 0.2),
    ("cheetah-run", ("bthigh", "fthigh"), 0.0),
])
def test_torso_length_stretches_the_torso(task, hips, lift):
  env = make_shifted_env_factory(make_env_factory(task, episode_length=5),
                                 TorsoLength(1.2))(0)
  model, defaults = env.model, env.defaults
  torso_geom = model.geom("torso").id
  assert env.active.name == "torso_len×1.2"
  np.testing.assert_allclose(model.geom_size[torso_geom, 1],
                             1.2 * defaults.geom_size[torso_geom, 1])
  np.testing.assert_allclose(model.geom_size[torso_geom, 0], defaults.geom_size[torso_geom, 0])
  for hip in hips:
    body = model.body(hip).id
    moved = np.linalg.norm(model.body_pos[body] - defaults.body_pos[body])
    assert moved > 1e-3
  torso = model.body("torso").id
  np.testing.assert_allclose(model.body_pos[torso, 2] - defaults.body_pos[torso, 2], lift,
                             atol=1e-9)
  np.testing.assert_array_equal(model.body_mass, defaults.body_mass)
  assert np.isfinite(_rollout(env, _actions(env, 5))).all()


def test_mid_episode_switch_changes_the_model_at_the_step(cheetah_factory):
  switch = MidEpisodeSwitch(3, Compose(MassScale(1.0), DampingScale(1.0)),
                            Compose(MassScale(0.75), DampingScale(0.5)))
  assert switch.name == "mass×1,damping×1→mass×0.75,damping×0.5@3"
  env = make_shifted_env_factory(cheetah_factory, switch)(0)
  masses = []  # The torso mass in force at each agent step.
  inner_step = env.env.step

  def recording_step(action):
    masses.append(env.model.body_mass[1])
    return inner_step(action)

  env.env.step = recording_step
  default_mass = env.defaults.body_mass[1]
  for _ in range(2):  # The second episode starts again from `before`.
    masses.clear()
    time_step = env.reset()
    assert env.active is switch.before
    while not time_step.last():
      time_step = env.step(np.zeros(6, np.float32))
    np.testing.assert_allclose(masses[:3], default_mass)
    np.testing.assert_allclose(masses[3:], 0.75 * default_mass)
    assert len(masses) == 20
  np.testing.assert_allclose(env.model.dof_damping, 0.5 * env.defaults.dof_damping)


def test_grids_have_the_paper_cells():
  cheetah = grid(CHEETAH_GRID_FACTORS, CHEETAH_GRID_FACTORS)
  walker = grid(WALKER_GRID_FACTORS, WALKER_GRID_FACTORS)
  assert len(cheetah) == 49 and len(walker) == 25
  assert CHEETAH_GRID_FACTORS == (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
  assert cheetah[0].name == "mass×0.25,damping×0.25"
  assert cheetah[1].name == "mass×0.5,damping×0.25"  # Damping-major: a row is one damping.
  assert walker[-1].name == "mass×1.5,damping×1.5"
  assert len({cell.name for cell in cheetah}) == 49


def test_gym_envs_follow_the_dm_env_contract():
  for task in GYM_TASKS:
    env = make_gym_env_factory(task, episode_length=3)(0)
    spec = env.action_spec()
    assert isinstance(spec, specs.BoundedArray) and spec.dtype == np.float32
    time_step = env.reset()
    assert time_step.first()
    state = time_step.observation["state"]
    assert state.dtype == np.float32 and state.shape == env.observation_spec()["state"].shape
    steps = [env.step(np.zeros(spec.shape, np.float32)) for _ in range(3)]
    assert [s.step_type for s in steps] == [dm_env.StepType.MID, dm_env.StepType.MID,
                                           dm_env.StepType.LAST]
    assert steps[-1].discount == 1.0  # Time limit: a truncation.
    assert env.step(np.zeros(spec.shape, np.float32)).first()  # Steps after LAST reset.
    assert env.model.nu == spec.shape[0] and env.data.qpos.size == env.model.nq


def test_gym_seeding_is_reproducible():
  factory = make_gym_env_factory("Hopper-v5", episode_length=10)
  first = factory(3).reset().observation["state"]
  np.testing.assert_array_equal(factory(3).reset().observation["state"], first)
  assert not np.array_equal(factory(4).reset().observation["state"], first)


def test_hopper_falling_over_terminates_with_discount_zero():
  env = make_gym_env_factory("Hopper-v5")(0)
  action = np.array([1.0, -1.0, 1.0], np.float32)
  time_step = env.reset()
  steps = 0
  while not time_step.last():
    time_step = env.step(action)
    steps += 1
  assert steps < 1000 and time_step.discount == 0.0


def test_perturbations_apply_to_gym_envs():
  factory = make_shifted_env_factory(make_gym_env_factory("Walker2d-v5", episode_length=10),
                                     Compose(MassScale(1.5), TorsoLength(0.8)))
  env = factory(0)
  np.testing.assert_allclose(env.model.body_mass, 1.5 * env.defaults.body_mass)
  torso_geom = env.model.geom("torso_geom").id
  np.testing.assert_allclose(env.model.geom_size[torso_geom, 1],
                             0.8 * env.defaults.geom_size[torso_geom, 1])
  assert np.isfinite(_rollout(env, _actions(env, 10))).all()


def test_oracle_context_measures_the_true_scale():
  """Unshifted dynamics: z = 1; damping x 0.25: velocity dimensions change more than the
  training dynamics predict (z != 1); the clip holds."""
  from benchmarks.shifts.oracle import OracleContext  # pylint: disable=import-outside-toplevel
  from benchmarks.shifts.perturbations import DampingScale  # pylint: disable=import-outside-toplevel

  def measure(setting):
    base = make_env_factory("cheetah-run", record_physics=True, episode_length=40)
    env = make_shifted_env_factory(base, setting)(3) if setting else base(3)
    oracle = OracleContext("cheetah-run", 0.5, 1.5)
    sums = oracle.init()
    rng = np.random.default_rng(0)
    timestep = env.reset()
    while not timestep.last():
      action = rng.uniform(-1, 1, 6).astype(np.float32)
      following = env.step(action)
      sums = oracle.observe(sums, timestep.observation, action, following.observation)
      timestep = following
    return oracle.context(sums)

  np.testing.assert_allclose(measure(None), 1.0, atol=1e-3)
  shifted = measure(DampingScale(0.25))
  assert shifted.shape == (17,) and shifted.min() >= 0.5 and shifted.max() <= 1.5
  assert np.abs(shifted - 1.0).max() > 0.01
  with pytest.raises(KeyError, match="record_physics=True"):
    OracleContext("cheetah-run", 0.5, 1.5).observe(None, {"state": np.zeros(17)}, np.zeros(6),
                                                   {"state": np.zeros(17)})


def test_true_scale_replays_recorded_gym_states_in_the_target_and_the_default_simulator():
  """HalfCheetah-v5, mass and damping x 1.5: every state dimension changes less than under the
  default dynamics (z < 1); the unit perturbation gives z = 1; the twin replays a recorded
  transition exactly."""
  from benchmarks.shifts.oracle import simulator_twin, true_scale  # pylint: disable=import-outside-toplevel
  env = make_gym_env_factory("HalfCheetah-v5", record_physics=True, episode_length=60)(0)
  rng = np.random.default_rng(0)
  states, physics, actions, following = [], [], [], []
  timestep = env.reset()
  while not timestep.last():
    action = rng.uniform(-1, 1, 6).astype(np.float32)
    after = env.step(action)
    states.append(timestep.observation["state"])
    physics.append(timestep.observation["physics"])
    actions.append(action)
    following.append(after.observation["state"])
    timestep = after
  twin = simulator_twin("HalfCheetah-v5", 1)
  twin.set_physics_state(physics[10])
  np.testing.assert_allclose(twin.step(actions[10]).observation["state"], following[10],
                             atol=1e-5)
  args = (np.asarray(states), np.asarray(physics), np.asarray(actions), 0.5, 1.5, 1)
  (unit,) = grid([1.0], [1.0])
  np.testing.assert_allclose(true_scale("HalfCheetah-v5", unit, *args), 1.0, atol=1e-4)
  (target,) = grid([1.5], [1.5])
  z = true_scale("HalfCheetah-v5", target, *args)
  assert z.shape == (17,) and z.max() < 0.99 and z.min() >= 0.5
  with pytest.raises(ValueError, match="as many states"):
    true_scale("HalfCheetah-v5", target, np.zeros((0, 17)), np.zeros((0, 18)), np.zeros((0, 6)),
               0.5, 1.5, 1)
