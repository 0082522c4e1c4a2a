"""Data sources: named datasets with their own specs, indices and tables; bound samplers."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.conftest import synthetic_steps
from worldmodels.data import write_dataset
from worldmodels.data.samplers import (GroupedSampler, NStepSampler, SequenceSampler,
                                      TransitionSampler)
from worldmodels.data.source import DataSource
from worldmodels.data.spec import ArraySpec, DataSpec


@pytest.fixture(scope="module")
def two():
  """A 'hopper' dataset of 5-d states / 3-d actions and a 'walker' one of 8-d / 2-d, with
  pixels, of different episode lengths."""
  hopper = synthetic_steps((10, 12), obs_dim=5, action_dim=3)
  walker = synthetic_steps((7, 7, 7), obs_dim=8, action_dim=2, frame=(4, 4, 1), seed=1)
  return DataSource({"hopper": hopper, "walker": walker},
                    metadata={"walker": {"task": "walker-walk"}}, frame_stack=3)


def test_each_dataset_has_its_own_spec_and_index(two):
  assert two.names == ("hopper", "walker")
  hopper, walker = two.spec("hopper"), two.spec("walker")
  assert hopper.observation_shapes == {"state": (5,)} and hopper.action_dim == 3
  assert hopper.frame_stack == {}  # no image entry to stack
  assert walker.observations["pixels"] == ArraySpec((4, 4, 1), np.uint8)
  assert walker.observation_shapes == {"state": (8,), "pixels": (4, 4, 3)}  # 3 frames stacked
  assert walker.frame_stack == {"pixels": 3} and walker.action_dim == 2
  assert walker.task == "walker-walk" and walker.name == "walker"
  np.testing.assert_allclose(walker.observation_mean["state"],
                             np.asarray(two.steps("walker").observation["state"]).mean(0))
  assert "pixels" not in walker.observation_mean  # statistics of float entries only
  assert two.arrays["hopper"].index.num_transitions == 22
  assert two.arrays["walker"].index.num_transitions == 21
  assert two.spec("walker").mismatches(two.spec("hopper")) == [
      "observation 'state' is float32[8] here and float32[5] there",
      "observation entries ['pixels'] are missing there",
      "actions are 2-d here and 3-d there"]
  with pytest.raises(KeyError, match="holds 2 datasets"):
    two.spec()
  with pytest.raises(KeyError, match="no dataset 'cheetah'"):
    two.spec("cheetah")


def test_samplers_draw_from_their_dataset_inside_jit(two):
  hopper = TransitionSampler(6, dataset="hopper")
  walker = NStepSampler(6, n=3, gamma=0.5, frame_stack=two.spec("walker").frame_stack,
                        dataset="walker")
  for sampler in (hopper, walker):
    sampler.prepare(two)

  @jax.jit
  def draw(arrays, key):
    return hopper(arrays, key), walker(arrays, key)

  h, w = draw(two.arrays, jax.random.PRNGKey(0))
  assert h.observation["state"].shape == (6, 5) and h.action.shape == (6, 3)
  assert w.observation["state"].shape == (6, 8) and w.observation["pixels"].shape == (6, 4, 4, 3)
  # Synthetic states encode (episode, step in episode, global id): transitions stay inside
  # their episode, and the n-step successor is at most 3 steps on.
  episode, step = np.asarray(w.observation["state"][:, 0]), np.asarray(w.observation["state"][:, 1])
  np.testing.assert_array_equal(np.asarray(w.next_observation["state"][:, 0]), episode)
  gap = np.asarray(w.next_observation["state"][:, 1]) - step
  assert ((gap >= 1) & (gap <= 3)).all()
  with pytest.raises(KeyError, match="name the dataset"):
    TransitionSampler(4)(two.arrays, jax.random.PRNGKey(0))


def test_tables_are_computed_once_and_shared(two):
  sampler = SequenceSampler(4, length=6, dataset="walker")
  sampler.prepare(two)
  table = two.arrays["walker"].tables["sequence_starts/6"]
  SequenceSampler(2, length=6, dataset="walker").prepare(two)  # another agent, same table
  assert two.arrays["walker"].tables["sequence_starts/6"] is table
  assert "sequence_starts/6" not in two.arrays["hopper"].tables
  batch = jax.jit(sampler)(two.arrays, jax.random.PRNGKey(1))
  assert batch.observation["state"].shape == (4, 6, 8)
  assert not np.asarray(batch.is_last[:, :-1]).any()  # windows never cross an episode end


def test_load_from_disk_keeps_metadata(tmp_path):
  write_dataset(str(tmp_path / "d"), synthetic_steps((9, 9), obs_dim=3, action_dim=1),
                task="synthetic", behaviour_policy="random", action_repeat=1, seed=0)
  source = DataSource.load(str(tmp_path / "d"))
  assert source.names == (str(tmp_path / "d"),)
  assert source.metadata()["task"] == "synthetic" and source.spec().task == "synthetic"
  assert source.metadata()["path"] == str(tmp_path / "d")
  assert source.nbytes() > 0


def test_spec_checks_its_frame_stack():
  with pytest.raises(ValueError, match="only image entries"):
    DataSpec({"state": ((3,), np.float32)}, 2, frame_stack={"state": 2})
  with pytest.raises(ValueError, match="not an observation entry"):
    DataSpec({"state": ((3,), np.float32)}, 2, frame_stack={"pixels": 2})
  widened = DataSpec({"state": ((3,), np.float32)}, 2, observation_mean={"state": np.zeros(3)},
                     observation_std={"state": np.ones(3)}).with_observation("state", (6,))
  assert widened.observation_shapes == {"state": (6,)} and widened.observation_mean == {}


def test_a_grouped_sampler_mixes_scenarios_of_two_embodiments_in_one_batch():
  """Two walker scenarios and one hopper scenario (different sizes): one jitted draw gives a
  batch per embodiment, each row tagged with the scenario it came from."""
  datasets = {"walker/s0": synthetic_steps((9, 9), obs_dim=8, action_dim=2, seed=1),
              "walker/s1": synthetic_steps((12,), obs_dim=8, action_dim=2, seed=2),
              "hopper/s0": synthetic_steps((10,), obs_dim=5, action_dim=3, seed=3)}
  source = DataSource(datasets)
  sampler = GroupedSampler(SequenceSampler(3, 4), {"walker": ("walker/s0", "walker/s1"),
                                                   "hopper": ("hopper/s0",)})
  sampler.prepare(source)
  batch = jax.jit(sampler)(source.arrays, jax.random.PRNGKey(0))
  assert set(batch) == {"walker", "hopper"}
  walker, walker_ids = batch["walker"]
  hopper, hopper_ids = batch["hopper"]
  assert walker.observation["state"].shape == (6, 4, 8) and walker.action.shape == (6, 4, 2)
  assert hopper.observation["state"].shape == (3, 4, 5) and hopper.action.shape == (3, 4, 3)
  np.testing.assert_array_equal(walker_ids, [0, 0, 0, 1, 1, 1])
  np.testing.assert_array_equal(hopper_ids, [0, 0, 0])
  for row, scenario in enumerate(np.asarray(walker_ids)):  # each row is its scenario's data
    steps = datasets[("walker/s0", "walker/s1")[scenario]]
    ids = np.asarray(walker.observation["state"][row, :, 2]).astype(int)  # global step ids
    np.testing.assert_allclose(walker.action[row], steps.action[ids])
  with pytest.raises(ValueError, match="at least one dataset per group"):
    GroupedSampler(SequenceSampler(3, 4), {"walker": ()})
