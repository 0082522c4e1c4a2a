"""MrCoM's scenario suite (benchmarks.scenarios): observation functions on known arrays, the
target-speed reward, torso scaling touching only the torso, and deterministic splits."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses  # noqa: E402

import dm_env  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from dm_env import specs  # noqa: E402

from benchmarks.envs import make_env  # noqa: E402
from benchmarks.scenarios import (SPLITS, AddDimensions, AddGaussian, Identity,  # noqa: E402
                                  MaskFixed, MaskRandom, ObservedEnv, Scenario,
                                  normalised_score, sample_scenarios, speed_term)
from benchmarks.shifts import ModelDefaults, apply_perturbation, raw_model  # noqa: E402

STATE = np.arange(1.0, 25.0, dtype=np.float32)  # walker-walk's 24 dimensions, all non-zero


def test_add_gaussian_adds_the_generators_noise_to_every_dimension():
  out = AddGaussian(std=0.1)(STATE, np.random.default_rng(3))
  np.testing.assert_allclose(out, STATE + 0.1 * np.random.default_rng(3).standard_normal(24),
                             rtol=1e-6)
  draws = np.stack([AddGaussian(0.1)(STATE, np.random.default_rng(s)) - STATE
                    for s in range(400)])
  assert np.all(draws != 0) and abs(draws.std() - 0.1) < 0.01 and abs(draws.mean()) < 0.01


def test_add_dimensions_appends_ten_percent_noise_dimensions():
  function, rng = AddDimensions(0.1), np.random.default_rng(0)
  assert function.output_dim(24) == 27 and function.output_dim(15) == 17  # ceil(10%)
  first, second = function(STATE, rng), function(STATE, rng)
  assert first.shape == (27,) and first.dtype == np.float32
  np.testing.assert_array_equal(first[:24], STATE)
  assert not np.array_equal(first[24:], second[24:])  # fresh noise each step


def test_random_mask_zeroes_a_fresh_ten_percent_each_step():
  function, rng = MaskRandom(0.1), np.random.default_rng(0)
  masks = [function(STATE, rng) == 0 for _ in range(20)]
  assert all(mask.sum() == 2 for mask in masks)  # round(0.1 x 24)
  for mask, out in zip(masks, (function(STATE, np.random.default_rng(s)) for s in range(20))):
    np.testing.assert_array_equal(out[out != 0], STATE[out != 0])  # the rest untouched
  assert len({tuple(np.flatnonzero(m)) for m in masks}) > 1


def test_fixed_mask_zeroes_the_same_dimensions_at_every_step():
  function = MaskFixed(0.1, seed=7)
  indices = function.indices(24)
  assert len(indices) == 2
  for seed in range(5):
    out = function(STATE, np.random.default_rng(seed))
    np.testing.assert_array_equal(np.flatnonzero(out == 0), indices)
  assert not np.array_equal(MaskFixed(0.1, seed=8).indices(24), indices) or \
      not np.array_equal(MaskFixed(0.1, seed=9).indices(24), indices)
  np.testing.assert_array_equal(Identity()(STATE, None), STATE)
  with pytest.raises(ValueError, match="Msk-F: fraction"):
    MaskFixed(1.5)


class _ConstantEnv(dm_env.Environment):
  def observation_spec(self):
    return {"state": specs.Array((24,), np.float32, name="state")}

  def action_spec(self):
    return specs.BoundedArray((1,), np.float32, -1.0, 1.0)

  def reset(self):
    return dm_env.restart({"state": STATE})

  def step(self, action):
    return dm_env.transition(0.0, {"state": STATE})


def test_observed_env_transforms_the_state_and_its_spec():
  env = ObservedEnv(_ConstantEnv(), AddDimensions(0.1), seed=0)
  assert env.observation_spec()["state"].shape == (27,)
  assert env.reset().observation["state"].shape == (27,)
  np.testing.assert_array_equal(env.step(np.zeros(1)).observation["state"][:24], STATE)


def test_the_target_speed_term_peaks_at_the_target():
  speeds = np.linspace(0.0, 8.0, 801)
  term = speed_term(speeds, 3.0)
  assert speeds[np.argmax(term)] == pytest.approx(3.0) and term.max() == 1.0
  np.testing.assert_allclose(speed_term([0.0, 1.5, 4.5, 6.0, 7.0], 3.0), [0, 0.5, 0.5, 0, 0])
  with pytest.raises(ValueError, match="positive"):
    speed_term(1.0, 0.0)


def test_a_scenarios_env_pays_the_target_speed_reward():
  env = Scenario("cheetah-run", rho=0.5).make_env(v_max=4.0, seed=0, action_repeat=1,
                                                  episode_length=10)
  physics = env.env.env.physics  # ObservedEnv -> ShiftedEnv -> DMCEnv
  env.reset()
  rng = np.random.default_rng(0)
  rewards = []
  for _ in range(10):
    rewards.append(env.step(rng.uniform(-1, 1, 6).astype(np.float32)).reward)
    assert rewards[-1] == pytest.approx(float(speed_term(physics.speed(), 2.0)))
    # The suite's own reward (speed / 10 below 10 m/s) would differ wherever the speed is > 0.
    assert physics.speed() <= 0 or rewards[-1] != pytest.approx(physics.speed() / 10)
  assert max(rewards) > 0  # the comparison was made at a positive speed


_FIELDS = [f.name for f in dataclasses.fields(ModelDefaults)]


@pytest.mark.parametrize("task,torso_geoms,children", [
    ("walker-walk", {"torso"}, {"right_thigh", "left_thigh"}),
    ("hopper-hop", {"torso", "nose"}, {"pelvis"}),
    ("cheetah-run", {"torso", "head"}, {"bthigh", "fthigh"}),
])
def test_torso_scaling_changes_only_the_torso_and_where_its_children_hang(task, torso_geoms,
                                                                          children):
  model = raw_model(make_env(task))
  defaults = ModelDefaults.snapshot(model)
  apply_perturbation(model, Scenario(task, torso_length=1.2, torso_size=0.9).perturbation(),
                     defaults)
  torso = model.body("torso").id
  geoms = {model.geom(g).name for g in np.flatnonzero(model.geom_bodyid == torso)}
  assert geoms == torso_geoms

  def changed_rows(name):
    now, before = getattr(model, name), getattr(defaults, name)
    rows = np.flatnonzero(np.any((now != before).reshape(len(now), -1), axis=1))
    return set(rows.tolist())

  assert changed_rows("body_mass") == changed_rows("body_inertia") == {torso}
  np.testing.assert_allclose(model.body_mass[torso], 0.9 * defaults.body_mass[torso])
  moved = {model.body(b).name for b in changed_rows("body_pos")}
  assert moved - {"torso"} == children  # the hips (or pelvis) move; the torso may be raised
  for name in ("geom_size", "geom_rbound", "geom_aabb"):
    assert {model.geom(g).name for g in changed_rows(name)} == torso_geoms, name
  assert {model.geom(g).name for g in changed_rows("geom_pos")} <= torso_geoms
  assert not changed_rows("dof_damping") and not changed_rows("actuator_gear")
  main = model.geom("torso").id
  np.testing.assert_allclose(model.geom_size[main, :2],
                             [0.9 * defaults.geom_size[main, 0], 1.2 * defaults.geom_size[main, 1]])
  # The broad-phase bound covers the scaled capsule: half-length plus radius.
  assert model.geom_rbound[main] == pytest.approx(model.geom_size[main, 1] +
                                                  model.geom_size[main, 0])


def test_splits_are_deterministic_and_sample_their_intervals():
  for split in SPLITS:
    first = sample_scenarios(split, "walker-walk", 20, seed=0)
    assert first == sample_scenarios(split, "walker-walk", 20, seed=0)
    assert first != sample_scenarios(split, "walker-walk", 20, seed=1)
  dynamics = [f for s in sample_scenarios("id-dynamics", "hopper-hop", 50, 0)
              for f in (s.torso_length, s.torso_size)]
  assert all(0.8 <= f <= 1.2 for f in dynamics)
  ood = sample_scenarios("ood-both", "cheetah-run", 50, 0)
  assert all(0.6 <= f < 0.8 or 1.2 < f <= 1.4 for s in ood for f in (s.torso_length,
                                                                     s.torso_size))
  assert all(0.25 <= s.rho < 0.5 or 1.0 < s.rho <= 1.25 for s in ood)
  assert any(s.rho < 0.5 for s in ood) and any(s.rho > 1.0 for s in ood)
  objective = sample_scenarios("id-objective", "walker-walk", 10, 0)
  assert all(s.torso_length == s.torso_size == 1.0 and 0.5 <= s.rho <= 1.0 for s in objective)
  masked = sample_scenarios("obs-Msk-F", "walker-walk", 3, 0)
  assert {s.observation for s in masked} == {"Msk-F"} and len({s.seed for s in masked}) == 3
  assert masked[0].name.endswith(f"Msk-F-s{masked[0].seed}")
  with pytest.raises(ValueError, match="unknown split"):
    sample_scenarios("id-everything", "walker-walk", 1, 0)
  with pytest.raises(ValueError, match="unknown embodiment"):
    Scenario("humanoid-walk")


def test_the_normalised_score_maps_returns_to_0_100():
  np.testing.assert_allclose(normalised_score([0.0, 250.0, 1000.0, -5.0, 1200.0]),
                             [0.0, 25.0, 100.0, 0.0, 100.0])
