"""Tests of the importers of published offline-RL layouts (V-D4RL npz/hdf5, D4RL hdf5)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from benchmarks.datasets import importers
from benchmarks.datasets.importers import (IMPORTERS, d4rl_hdf5, import_d4rl_hdf5,
                                           import_dataset, import_vd4rl_hdf5,
                                           import_vd4rl_npz)
from worldmodels.data import DatasetError, load_dataset, read_metadata

ACTION_DIM, FRAME = 2, (8, 8, 3)
PROVENANCE = dict(task="walker_walk", seed=0)


# ---------------------------------------------------------------------------------------------
# Writers of the published layouts.


def dreamer_episode(transitions: int, index: int, terminal: bool = False) -> dict:
  """A DreamerV2 episode: entry t holds o_t with the action/reward that led to it."""
  n = transitions + 1
  rng = np.random.default_rng(index)
  action = rng.uniform(-1, 1, size=(n, ACTION_DIM)).astype(np.float32)
  action[0] = 0.0  # The reset entry's dummy action.
  reward = (np.arange(n) + 10 * index).astype(np.float32) / 10
  reward[0] = 0.0  # The reset entry's dummy reward.
  discount = np.ones(n, np.float32)
  discount[-1] = 0.0 if terminal else 1.0
  steps = np.arange(n)
  return {
      "image": ((steps + 20 * index)[:, None, None, None] + np.zeros((1, *FRAME))).astype(
          np.uint8),
      "action": action,
      "reward": reward,
      "discount": discount,
      "is_first": steps == 0,
      "is_last": steps == n - 1,
      "is_terminal": (steps == n - 1) & terminal,
  }


def write_npz_dir(directory, episodes: list[dict]) -> list[str]:
  os.makedirs(directory, exist_ok=True)
  paths = []
  for index, episode in enumerate(episodes):
    name = f"20220101T00000{index}-abc{index}-{len(episode['image'])}.npz"
    path = os.path.join(directory, name)
    np.savez_compressed(path, **episode)
    paths.append(path)
  return paths


def drqbc_shard(path, lengths: list[int], offset: int, terminal_last: bool = False,
                float_step_type: bool = False, **overrides) -> dict:
  """A DrQ+BC shard of episodes with ``lengths`` transitions (dm_env rows, channels first)."""
  step_type = np.concatenate([[0] + [1] * (length - 1) + [2] for length in lengths])
  n = len(step_type)
  rng = np.random.default_rng(offset)
  action = rng.uniform(-1, 1, size=(n, ACTION_DIM)).astype(np.float32)
  action[step_type == 0] = 0.0
  reward = ((np.arange(n) + offset) / 4).astype(np.float32)
  reward[step_type == 0] = 0.0
  discount = np.ones(n, np.float32)
  if terminal_last:
    discount[-1] = 0.0
  frames = ((np.arange(n) + offset) % 256).astype(np.uint8)[:, None, None, None]
  data = {
      "observation": np.broadcast_to(frames, (n, 3, 8, 8)).copy(),
      "action": action,
      "reward": reward,
      "discount": discount,
      "step_type": step_type.astype(np.float64 if float_step_type else np.int64),
  }
  data.update(overrides)
  h5py = pytest.importorskip("h5py")  # An optional dependency of the hdf5 importers.
  with h5py.File(path, "w") as file:
    for key, value in data.items():
      if value is not None:
        file.create_dataset(key, data=value, compression="gzip")
  return data


D4RL_ROWS = 10
"""Rows of the test D4RL file: episodes [0..2] timeout, [3..4] terminal, [5] timeout, and a
trailing partial episode [6..9] with neither flag."""


def d4rl_arrays(next_observations: bool = True) -> dict:
  n = D4RL_ROWS
  observations = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
  data = {
      "observations": observations,
      "actions": (np.arange(n * ACTION_DIM, dtype=np.float32).reshape(n, ACTION_DIM) / 100),
      "rewards": np.arange(n, dtype=np.float32) + 1,
      "terminals": np.isin(np.arange(n), [4]),
      "timeouts": np.isin(np.arange(n), [2, 5]),
  }
  if next_observations:
    data["next_observations"] = observations + 0.5
  return data


def write_hdf5(path, data: dict) -> str:
  h5py = pytest.importorskip("h5py")
  with h5py.File(path, "w") as file:
    for key, value in data.items():
      file.create_dataset(key, data=value)
    file.create_dataset("infos/qpos", data=np.zeros((len(data["rewards"]), 2)))
  return os.fspath(path)


def assert_names(error: pytest.ExceptionInfo, path, *words: str) -> None:
  """The DatasetError names the file and each of ``words`` (keys, expectations)."""
  assert error.value.path == os.fspath(path)
  assert str(error.value).startswith(os.fspath(path) + ": ")
  for word in words:
    assert word in error.value.problem, (word, error.value.problem)


def only_entries(directory) -> list[str]:
  return sorted(os.listdir(directory))


# ---------------------------------------------------------------------------------------------
# V-D4RL DreamerV2 npz.


def test_vd4rl_npz_shifts_the_first_step_offset(tmp_path):
  episodes = [dreamer_episode(3, 0), dreamer_episode(5, 1, terminal=True),
              dreamer_episode(4, 2)]
  files = write_npz_dir(tmp_path / "npz", episodes)
  metadata = import_vd4rl_npz(tmp_path / "npz", tmp_path / "out", **PROVENANCE,
                              episodes_per_shard=2)
  steps, loaded = load_dataset(tmp_path / "out")
  assert loaded == metadata == read_metadata(tmp_path / "out")

  assert metadata["episode_lengths"] == [3, 5, 4]
  assert metadata["action_repeat"] == 2 and metadata["task"] == "walker_walk"
  assert metadata["observation_spec"] == {"pixels": {"shape": [8, 8, 3], "dtype": "uint8"}}
  assert metadata["behaviour_policy"] == {"kind": "imported", "format": "vd4rl-npz",
                                          "source": str(tmp_path / "npz")}
  assert metadata["extra"]["source_files"] == [os.path.basename(path) for path in files]
  np.testing.assert_allclose(metadata["episode_returns"],
                             [episode["reward"].sum() for episode in episodes], rtol=1e-6)

  # Our action[0] is the npz action[1]: the action taken at o_0.
  np.testing.assert_array_equal(steps.action[0], episodes[0]["action"][1])
  offset = 0
  for episode in episodes:
    n = len(episode["reward"])
    part = slice(offset, offset + n)
    np.testing.assert_array_equal(steps.observation["pixels"][part], episode["image"])
    np.testing.assert_array_equal(steps.action[part][:-1], episode["action"][1:])
    np.testing.assert_array_equal(steps.reward[part][:-1], episode["reward"][1:])
    np.testing.assert_array_equal(steps.discount[part][:-1], episode["discount"][1:])
    assert not steps.action[part][-1].any() and steps.reward[part][-1] == 0
    assert steps.discount[part][-1] == 0
    np.testing.assert_array_equal(steps.is_first[part], episode["is_first"])
    np.testing.assert_array_equal(steps.is_last[part], episode["is_last"])
    np.testing.assert_array_equal(steps.is_terminal[part], episode["is_terminal"])
    offset += n
  assert steps.is_terminal.sum() == 1 and steps.discount[3 + 1 + 4] == 0  # Into the terminal.


def test_vd4rl_npz_state_keys_and_derived_flags(tmp_path):
  episode = dreamer_episode(3, 0)
  del episode["is_terminal"]  # Older DreamerV2 files: derived from discount == 0.
  episode["position"] = np.arange(8, dtype=np.float64).reshape(4, 2)
  episode["velocity"] = np.arange(4, dtype=np.float32)[:, None] * 10
  episode["log_reward"] = np.zeros(4, np.float32)
  write_npz_dir(tmp_path / "npz", [episode])
  metadata = import_dataset("vd4rl-npz", tmp_path / "npz", tmp_path / "out", **PROVENANCE,
                            state_keys=["position", "velocity"], extra={"quality": "expert"})
  steps, _ = load_dataset(tmp_path / "out")
  assert metadata["observation_spec"]["state"] == {"shape": [3], "dtype": "float32"}
  np.testing.assert_array_equal(
      steps.observation["state"],
      np.concatenate([episode["position"], episode["velocity"]], axis=1).astype(np.float32))
  assert metadata["extra"]["ignored_keys"] == ["log_reward"]
  assert metadata["extra"]["state_keys"] == ["position", "velocity"]
  assert metadata["extra"]["quality"] == "expert"
  assert not steps.is_terminal.any()


# ---------------------------------------------------------------------------------------------
# V-D4RL DrQ+BC hdf5.


def test_vd4rl_hdf5_splits_by_step_type_and_shifts(tmp_path):
  source = tmp_path / "hdf5"
  source.mkdir()
  # Sorted name order: "a_..." is read before "b_...".
  second = drqbc_shard(source / "b_shard.hdf5", [2], offset=100, terminal_last=True,
                       state=np.arange(6, dtype=np.float64).reshape(3, 2) + 100)
  first = drqbc_shard(source / "a_shard.hdf5", [3, 1], offset=0, float_step_type=True,
                      state=np.arange(12, dtype=np.float64).reshape(6, 2))
  metadata = import_vd4rl_hdf5(source, tmp_path / "out", **PROVENANCE)
  steps, _ = load_dataset(tmp_path / "out")

  assert metadata["episode_lengths"] == [3, 1, 2]
  assert metadata["extra"]["source_files"] == ["a_shard.hdf5", "b_shard.hdf5"]
  assert metadata["observation_spec"] == {"pixels": {"shape": [8, 8, 3], "dtype": "uint8"},
                                          "state": {"shape": [2], "dtype": "float32"}}
  assert metadata["extra"]["state_keys"] == ["state"]  # Found in the shards.
  rows = {key: np.concatenate([first[key], second[key]]) for key in first}
  np.testing.assert_array_equal(steps.observation["state"], rows["state"].astype(np.float32))
  # Rows are episodes back to back, as are our steps: the same row indices, shifted by one
  # within each episode for action/reward/discount.
  np.testing.assert_array_equal(steps.observation["pixels"],
                                rows["observation"].transpose(0, 2, 3, 1))
  last = rows["step_type"] == 2
  np.testing.assert_array_equal(steps.is_first, rows["step_type"] == 0)
  np.testing.assert_array_equal(steps.is_last, last)
  np.testing.assert_array_equal(steps.action[~last], rows["action"][1:][~last[:-1]])
  np.testing.assert_array_equal(steps.reward[~last], rows["reward"][1:][~last[:-1]])
  np.testing.assert_array_equal(steps.discount[~last], rows["discount"][1:][~last[:-1]])
  np.testing.assert_array_equal(steps.action[0], first["action"][1])
  assert not steps.action[last].any() and not steps.reward[last].any()
  np.testing.assert_array_equal(steps.is_terminal, np.arange(len(last)) == len(last) - 1)
  np.testing.assert_allclose(metadata["episode_returns"],
                             [first["reward"][:4].sum(), first["reward"][4:].sum(),
                              second["reward"].sum()], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# D4RL hdf5.


@pytest.mark.parametrize("block_rows", [d4rl_hdf5.D4RL_BLOCK_ROWS, 3])
def test_d4rl_with_next_observations(tmp_path, monkeypatch, block_rows):
  monkeypatch.setattr(d4rl_hdf5, "D4RL_BLOCK_ROWS", block_rows)  # 3: several blocks.
  data = d4rl_arrays(next_observations=True)
  path = write_hdf5(tmp_path / "hopper.hdf5", data)
  metadata = import_d4rl_hdf5(path, tmp_path / "out", task="hopper-medium-v2")
  steps, _ = load_dataset(tmp_path / "out")

  assert metadata["episode_lengths"] == [3, 2, 1, 4]  # Trailing partial episode kept.
  assert metadata["action_repeat"] == 1
  assert metadata["observation_spec"] == {"state": {"shape": [3], "dtype": "float32"}}
  assert metadata["extra"]["has_next_observations"] is True
  assert metadata["extra"]["dropped_final_transitions"] == 0
  episodes = [(0, 2), (3, 4), (5, 5), (6, 9)]
  expected_state = np.concatenate([
      np.concatenate([data["observations"][s:e + 1], data["next_observations"][e:e + 1]])
      for s, e in episodes]).astype(np.float32)
  np.testing.assert_array_equal(steps.observation["state"], expected_state)
  transitions = ~steps.is_last
  np.testing.assert_array_equal(steps.action[transitions], data["actions"])  # No offset.
  np.testing.assert_array_equal(steps.reward[transitions], data["rewards"])
  np.testing.assert_array_equal(steps.discount[transitions], np.where(data["terminals"], 0, 1))
  assert steps.is_terminal.tolist() == [False] * 6 + [True] + [False] * 7
  np.testing.assert_allclose(metadata["episode_returns"],
                             [data["rewards"][s:e + 1].sum() for s, e in episodes])


def test_d4rl_without_next_observations_drops_final_transitions(tmp_path):
  data = d4rl_arrays(next_observations=False)
  data["rewards"] = data["rewards"][:, None]  # [N, 1] is accepted.
  data["terminals"] = data["terminals"].astype(np.float32)  # 0/1 floats are accepted.
  path = write_hdf5(tmp_path / "hopper.hdf5", data)
  metadata = import_d4rl_hdf5(path, tmp_path / "out", task="hopper-medium-v0")
  steps, _ = load_dataset(tmp_path / "out")

  # [0..2] -> 2 transitions, [3..4] (terminal) -> 1, [5] -> nothing left (skipped), [6..9] -> 3.
  assert metadata["episode_lengths"] == [2, 1, 3]
  extra = metadata["extra"]
  assert (extra["dropped_final_transitions"], extra["dropped_terminal_transitions"],
          extra["skipped_episodes"], extra["has_next_observations"]) == (4, 1, 1, False)
  kept_rows = [0, 1, 2, 3, 4, 6, 7, 8, 9]  # Each episode ends at its dropped row's observation.
  np.testing.assert_array_equal(steps.observation["state"],
                                data["observations"][kept_rows].astype(np.float32))
  transition_rows = [0, 1, 3, 6, 7, 8]
  np.testing.assert_array_equal(steps.action[~steps.is_last], data["actions"][transition_rows])
  np.testing.assert_array_equal(steps.reward[~steps.is_last],
                                data["rewards"][transition_rows, 0])
  assert not steps.is_terminal.any() and (steps.discount[~steps.is_last] == 1).all()


def test_d4rl_without_timeouts_uses_max_episode_steps(tmp_path):
  data = d4rl_arrays()
  del data["timeouts"]
  path = write_hdf5(tmp_path / "old.hdf5", data)
  with pytest.raises(DatasetError) as error:
    import_d4rl_hdf5(path, tmp_path / "out", task="hopper")
  assert_names(error, path, "'timeouts'", "max_episode_steps")
  metadata = import_d4rl_hdf5(path, tmp_path / "out", task="hopper", max_episode_steps=3)
  # Terminal at row 4 ends [3..4]; time limit 3 ends [0..2] and [5..7]; [8..9] trails.
  assert metadata["episode_lengths"] == [3, 2, 3, 2]


# ---------------------------------------------------------------------------------------------
# Errors.


def _npz_case(change):
  def make(tmp_path):
    episodes = [dreamer_episode(3, 0), dreamer_episode(4, 1)]
    change(episodes[1])
    return write_npz_dir(tmp_path / "src", episodes)[1], tmp_path / "src"
  return make


def _set(key, index, value):
  def change(episode):
    episode[key][index] = value
  return change


def _hdf5_case(**overrides):
  def make(tmp_path):
    (tmp_path / "src").mkdir()
    drqbc_shard(tmp_path / "src" / "0.hdf5", [2], offset=0)
    if overrides.get("step_type") is not None:
      overrides["step_type"] = np.asarray(overrides["step_type"])
    path = tmp_path / "src" / "1.hdf5"
    drqbc_shard(path, [2, 3], offset=10, **overrides)  # step_type 0 1 2 0 1 1 2.
    return path, tmp_path / "src"
  return make


def _d4rl_case(change):
  def make(tmp_path):
    data = d4rl_arrays()
    change(data)
    (tmp_path / "src").mkdir()
    return write_hdf5(tmp_path / "src" / "d4rl.hdf5", data), tmp_path / "src" / "d4rl.hdf5"
  return make


def _drop(key):
  return lambda data: data.pop(key)


ERROR_CASES = {
    "npz missing key": ("vd4rl-npz", _npz_case(_drop("action")), ["missing key 'action'"]),
    "npz length mismatch": ("vd4rl-npz", _npz_case(
        lambda e: e.update(reward=e["reward"][:-1])), ["'reward' has 4 entries", "'image'"]),
    "npz nan": ("vd4rl-npz", _npz_case(_set("action", (2, 1), np.nan)),
                ["'action'", "NaN", "entry 2"]),
    "npz bad is_first": ("vd4rl-npz", _npz_case(_set("is_first", 2, True)),
                         ["'is_first'", "entry 0 only", "[0, 2]"]),
    "npz is_last missing at end": ("vd4rl-npz", _npz_case(_set("is_last", -1, False)),
                                   ["'is_last'"]),
    "npz terminal mid-episode": ("vd4rl-npz", _npz_case(_set("is_terminal", 1, True)),
                                 ["'is_terminal'", "last entry"]),
    "npz terminal with discount 1": ("vd4rl-npz", _npz_case(_set("is_terminal", -1, True)),
                                     ["'is_terminal'", "'discount'", "disagree"]),
    "npz wrong ndim": ("vd4rl-npz", _npz_case(lambda e: e.update(image=e["image"][..., 0])),
                       ["'image'", "[T+1, H, W, C]"]),
    "npz one entry": ("vd4rl-npz", _npz_case(
        lambda e: e.update({k: v[:1] for k, v in e.items()})), ["'image'", "at least 2"]),
    "npz frame size differs": ("vd4rl-npz", _npz_case(
        lambda e: e.update(image=np.zeros((5, 16, 16, 3), np.uint8))),
        ["'observation/pixels'", "(5, 8, 8, 3)", "first one"]),
    "npz action dim differs": ("vd4rl-npz", _npz_case(
        lambda e: e.update(action=np.zeros((5, 3), np.float32))), ["'action'", "(5, 2)"]),
    "hdf5 missing key": ("vd4rl-hdf5", _hdf5_case(step_type=None), ["missing key 'step_type'"]),
    "hdf5 not starting with FIRST": ("vd4rl-hdf5", _hdf5_case(
        step_type=[1, 1, 2, 0, 1, 1, 2]), ["'step_type'", "row 0", "FIRST"]),
    "hdf5 episode without transition": ("vd4rl-hdf5", _hdf5_case(
        step_type=[0, 0, 2, 0, 1, 1, 2]), ["'step_type'", "row 1 is FIRST", "LAST"]),
    "hdf5 ends inside an episode": ("vd4rl-hdf5", _hdf5_case(
        step_type=[0, 1, 2, 0, 1, 1, 1]), ["'step_type'", "ends inside an episode"]),
    "hdf5 bad step type": ("vd4rl-hdf5", _hdf5_case(
        step_type=[0, 1, 2, 0, 1, 5, 2]), ["'step_type'", "[5]"]),
    "hdf5 length mismatch": ("vd4rl-hdf5", _hdf5_case(
        reward=np.zeros(6, np.float32)), ["'reward' has 6 rows", "'observation' has 7"]),
    "hdf5 channels last": ("vd4rl-hdf5", _hdf5_case(
        observation=np.zeros((7, 8, 8, 3), np.uint8)), ["'observation'", "channels-first"]),
    "hdf5 inf": ("vd4rl-hdf5", _hdf5_case(
        discount=np.array([1, 1, 1, 1, 1, np.inf, 1], np.float32)),
        ["'discount'", "NaN or inf", "row 5", "rows 3..6"]),
    "d4rl missing key": ("d4rl-hdf5", _d4rl_case(_drop("terminals")),
                         ["missing key 'terminals'"]),
    "d4rl length mismatch": ("d4rl-hdf5", _d4rl_case(
        lambda d: d.update(actions=d["actions"][:-2])), ["'actions' has 8 rows"]),
    "d4rl nan": ("d4rl-hdf5", _d4rl_case(
        lambda d: d["observations"].__setitem__((7, 0), np.nan)),
        ["'observations'", "NaN", "row 7"]),
    "d4rl wrong ndim": ("d4rl-hdf5", _d4rl_case(
        lambda d: d.update(actions=d["actions"][:, 0])), ["'actions'", "[N, A]"]),
    "d4rl bad flags": ("d4rl-hdf5", _d4rl_case(
        lambda d: d.update(timeouts=np.full(D4RL_ROWS, 3))), ["'timeouts'", "booleans"]),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_malformed_source_raises_and_writes_nothing(tmp_path, case):
  format_name, make, words = ERROR_CASES[case]
  bad_file, source = make(tmp_path)
  before = only_entries(tmp_path)
  destination = tmp_path / "new" / "dataset"
  with pytest.raises(DatasetError) as error:
    import_dataset(format_name, source, destination, task="walker_walk", episodes_per_shard=1)
  assert_names(error, bad_file, *words)
  assert only_entries(tmp_path) == before  # No destination, parent or temporary directory.


def test_missing_and_empty_sources(tmp_path):
  for format_name in IMPORTERS:
    with pytest.raises(DatasetError) as error:
      import_dataset(format_name, tmp_path / "nowhere", tmp_path / "out", task="t")
    assert_names(error, tmp_path / "nowhere", "does not exist")
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "notes.txt").write_text("not an episode")
  with pytest.raises(DatasetError) as error:
    import_vd4rl_npz(tmp_path / "empty", tmp_path / "out", task="t")
  assert_names(error, tmp_path / "empty", "no *.npz files")
  with pytest.raises(DatasetError) as error:
    import_vd4rl_hdf5(tmp_path / "empty", tmp_path / "out", task="t")
  assert_names(error, tmp_path / "empty", "no *.hdf5 files")
  with pytest.raises(DatasetError) as error:
    import_d4rl_hdf5(tmp_path / "empty", tmp_path / "out", task="t")
  assert_names(error, tmp_path / "empty", "is a directory")
  (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
  with pytest.raises(DatasetError) as error:
    import_vd4rl_npz(tmp_path / "garbage.npz", tmp_path / "out", task="t")
  assert_names(error, tmp_path / "garbage.npz", "cannot read")
  assert not (tmp_path / "out").exists()


def test_destination_holding_data_is_refused(tmp_path):
  write_npz_dir(tmp_path / "npz", [dreamer_episode(3, 0)])
  import_vd4rl_npz(tmp_path / "npz", tmp_path / "out", task="t")
  before = read_metadata(tmp_path / "out")
  with pytest.raises(DatasetError) as error:
    import_vd4rl_npz(tmp_path / "npz", tmp_path / "out", task="t")
  assert_names(error, tmp_path / "out", "already exists")
  assert read_metadata(tmp_path / "out") == before
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "notes.txt").write_text("keep")
  with pytest.raises(DatasetError, match="already exists"):
    import_vd4rl_npz(tmp_path / "npz", tmp_path / "mine", task="t")
  assert only_entries(tmp_path / "mine") == ["notes.txt"]
  (tmp_path / "empty").mkdir()  # An empty directory is a fine destination.
  assert import_vd4rl_npz(tmp_path / "npz", tmp_path / "empty", task="t")["num_episodes"] == 1


def test_bad_arguments_and_missing_h5py(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match="known formats: vd4rl-npz, vd4rl-hdf5, d4rl-hdf5"):
    import_dataset("minari", tmp_path, tmp_path / "out", task="t")
  path = write_hdf5(tmp_path / "d4rl.hdf5", d4rl_arrays())
  with pytest.raises(ValueError, match="action_repeat must be an int >= 1, got None"):
    import_d4rl_hdf5(path, tmp_path / "out", task="t", action_repeat=None)
  monkeypatch.setitem(sys.modules, "h5py", None)
  with pytest.raises(ImportError, match="pip install h5py"):
    importers.import_d4rl_hdf5(path, tmp_path / "out", task="t")
  assert not (tmp_path / "out").exists()
