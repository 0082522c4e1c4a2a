"""Tests of the episodic dataset format: writer, reader, errors, statistics and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils.lazy_imports_utils import array_record_module

from worldmodels.data import (DatasetError, EpisodeWriter, Steps, dataset_statistics,
                              format_statistics_table, load_dataset, read_metadata,
                              write_dataset)
from worldmodels.data import format as fmt
from worldmodels.data.source import DataSource

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_DIM, ACTION_DIM, FRAME = 3, 2, (8, 8, 3)
SPEC = {"state": ((STATE_DIM,), np.float32), "pixels": (FRAME, np.uint8)}
PROVENANCE = dict(task="cartpole_swingup", behaviour_policy={"kind": "random"},
                  action_repeat=8, seed=0)


def make_episode(rng: np.random.Generator, transitions: int, terminal: bool = False) -> dict:
  """A random valid episode of ``transitions + 1`` steps."""
  n = transitions + 1
  reward = rng.normal(size=n).astype(np.float32)
  reward[-1] = 0.0
  is_last = np.arange(n) == n - 1
  return {
      "observation": {
          "state": rng.normal(size=(n, STATE_DIM)).astype(np.float32),
          "pixels": rng.integers(0, 256, size=(n, *FRAME), dtype=np.uint8),
      },
      "action": rng.uniform(-1, 1, size=(n, ACTION_DIM)).astype(np.float32),
      "reward": reward,
      "discount": np.ones(n, np.float32),
      "is_first": np.arange(n) == 0,
      "is_last": is_last,
      "is_terminal": is_last & terminal,
  }


def write_episodes(path, episodes, **kwargs) -> None:
  with EpisodeWriter(path, observation_spec=SPEC, action_dim=ACTION_DIM,
                     episodes_per_shard=kwargs.pop("episodes_per_shard", 2),
                     **PROVENANCE, **kwargs) as writer:
    for episode in episodes:
      writer.add_episode(episode)


def concat(episodes: list[dict], key: str) -> np.ndarray:
  if key.startswith("observation/"):
    return np.concatenate([episode["observation"][key[12:]] for episode in episodes])
  return np.concatenate([episode[key] for episode in episodes])


@pytest.fixture
def episodes():
  rng = np.random.default_rng(0)
  return [make_episode(rng, transitions, terminal=index == 1)
          for index, transitions in enumerate([4, 7, 1, 5, 3])]


@pytest.fixture
def dataset(tmp_path, episodes):
  path = tmp_path / "data"
  write_episodes(path, episodes)
  return path


def test_round_trip(dataset, episodes):
  steps, metadata = load_dataset(dataset)
  for key in ["observation/state", "observation/pixels", *fmt.STEP_FIELDS[1:]]:
    loaded = (steps.observation[key[12:]] if key.startswith("observation/")
              else getattr(steps, key))
    expected = concat(episodes, key)
    assert loaded.dtype == expected.dtype, key
    np.testing.assert_array_equal(loaded, expected, err_msg=key)
  assert isinstance(steps.action, np.ndarray)
  assert (steps.num_steps, steps.num_episodes, steps.num_transitions) == (25, 5, 20)

  assert metadata["format"] == "worldmodels.episodic" and metadata["format_version"] == 1
  assert metadata["dataset_version"] == "1.0.0" and metadata["task"] == "cartpole_swingup"
  assert metadata["behaviour_policy"] == {"kind": "random"} and metadata["perturbation"] is None
  assert metadata["observation_spec"] == {"state": {"shape": [3], "dtype": "float32"},
                                          "pixels": {"shape": [8, 8, 3], "dtype": "uint8"}}
  assert metadata["action_dim"] == ACTION_DIM and metadata["action_repeat"] == 8
  assert (metadata["num_episodes"], metadata["num_steps"], metadata["num_transitions"]) == (
      5, 25, 20)
  assert metadata["episode_lengths"] == [4, 7, 1, 5, 3]
  np.testing.assert_allclose(metadata["episode_returns"],
                             [episode["reward"].sum() for episode in episodes], rtol=1e-6)
  assert metadata["shards"] == [{"file": fmt.shard_filename(i), "num_episodes": n}
                                for i, n in enumerate([2, 2, 1])]
  assert metadata["statistics"] == dataset_statistics(metadata["episode_returns"], 20)
  assert metadata == read_metadata(dataset)

  states, _ = load_dataset(dataset, observation_keys=["state"])
  assert list(states.observation) == ["state"]
  np.testing.assert_array_equal(states.observation["state"], steps.observation["state"])


def test_tfds_reads_dataset_without_tensorflow(dataset, episodes):
  source = tfds.builder_from_directory(os.fspath(dataset)).as_data_source(split="train")
  assert len(source) == len(episodes)
  example = source[3]
  assert int(example["episode_id"]) == 3
  np.testing.assert_array_equal(example["steps"]["observation"]["pixels"],
                                episodes[3]["observation"]["pixels"])
  assert "tensorflow" not in sys.modules


def test_load_into_a_data_source(dataset):
  """The data source puts the loaded steps on the device once, with their index."""
  source = DataSource.load(dataset, observation_keys=["state"])
  arrays = source.arrays[source.resolve(None)]
  assert isinstance(arrays.steps.reward, jax.Array) and arrays.steps.reward.shape == (25,)
  assert set(arrays.steps.observation) == {"state"}
  np.testing.assert_array_equal(np.asarray(arrays.steps.reward), source.steps().reward)


def test_write_dataset_from_steps(tmp_path, episodes):
  flat = Steps(observation={"state": concat(episodes, "observation/state"),
                            "pixels": concat(episodes, "observation/pixels")},
               **{key: concat(episodes, key) for key in fmt.STEP_FIELDS[1:]})
  metadata = write_dataset(tmp_path / "flat", flat, episodes_per_shard=3, **PROVENANCE,
                           dataset_version="2.1.0", extra={"source": "test"})
  assert metadata["episode_lengths"] == [4, 7, 1, 5, 3]
  assert metadata["dataset_version"] == "2.1.0" and metadata["extra"] == {"source": "test"}
  loaded, _ = load_dataset(tmp_path / "flat")
  for key in ("action", "reward", "is_terminal"):
    np.testing.assert_array_equal(getattr(loaded, key), getattr(flat, key))
  np.testing.assert_array_equal(loaded.observation["pixels"], flat.observation["pixels"])

  broken = flat.replace(is_last=np.zeros_like(flat.is_last))
  with pytest.raises(DatasetError, match="episode 0: 'is_last'"):
    write_dataset(tmp_path / "broken", broken, **PROVENANCE)
  assert not (tmp_path / "broken").exists()


def test_resume_after_kill(tmp_path):
  rng = np.random.default_rng(1)
  path = tmp_path / "data"
  all_episodes = [make_episode(rng, 2 + index % 3) for index in range(9)]
  writer = EpisodeWriter(path, observation_spec=SPEC, action_dim=ACTION_DIM,
                         episodes_per_shard=2, **PROVENANCE)
  for episode in all_episodes[:5]:
    writer.add_episode(episode)
  assert writer.num_episodes == 5 and writer.num_committed_episodes == 4
  del writer  # Killed: the buffered fifth episode is lost, never closed.
  stale = path / (fmt.shard_filename(2) + ".tmp")
  stale.write_bytes(b"half a shard")
  orphan = path / fmt.shard_filename(3)  # Renamed, but killed before metadata.json listed it.
  orphan.write_bytes(b"unlisted shard")
  assert read_metadata(path, allow_incomplete=True)["num_episodes"] == 4
  with pytest.raises(DatasetError, match="incomplete: its writer has not finished it"):
    load_dataset(path)  # a reader never takes the prefix of an interrupted dataset

  with pytest.raises(DatasetError, match="already exists"):
    EpisodeWriter(path, observation_spec=SPEC, action_dim=ACTION_DIM, **PROVENANCE)
  with EpisodeWriter(path, observation_spec=SPEC, action_dim=ACTION_DIM, episodes_per_shard=2,
                     resume=True, **PROVENANCE) as writer:
    assert not stale.exists() and not orphan.exists()
    start = writer.num_committed_episodes
    assert start == 4
    for episode in all_episodes[start:]:
      writer.add_episode(episode)

  steps, metadata = load_dataset(path)
  assert metadata["num_episodes"] == 9
  np.testing.assert_array_equal(steps.observation["state"],
                                concat(all_episodes, "observation/state"))
  source = tfds.builder_from_directory(os.fspath(path)).as_data_source(split="train")
  assert [int(source[i]["episode_id"]) for i in range(len(source))] == list(range(9))


def test_resume_with_other_spec_fails(dataset):
  with pytest.raises(DatasetError, match=r"cannot resume.*task.*'walker_walk'"):
    EpisodeWriter(dataset, observation_spec=SPEC, action_dim=ACTION_DIM, resume=True,
                  **{**PROVENANCE, "task": "walker_walk"})
  with pytest.raises(DatasetError, match=r"cannot resume.*observation_spec"):
    EpisodeWriter(dataset, observation_spec={"state": ((4,), np.float32)},
                  action_dim=ACTION_DIM, resume=True, **PROVENANCE)


def test_refuses_to_overwrite(dataset, tmp_path, episodes):
  before = read_metadata(dataset)
  with pytest.raises(DatasetError, match=f"{dataset}: a dataset .* already exists"):
    write_episodes(dataset, episodes[:1])
  (tmp_path / "foreign").mkdir()
  (tmp_path / "foreign" / "notes.txt").write_text("mine")
  with pytest.raises(DatasetError, match="already exists"):
    write_episodes(tmp_path / "foreign", episodes[:1])
  assert read_metadata(dataset) == before
  assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("key, change, message", [
    ("action", lambda e: e["action"][:, :1], r"key 'action' has shape \(5, 1\), expected \(5, 2\)"),
    ("reward", lambda e: e["reward"].astype(np.float64), "key 'reward' has dtype float64"),
    ("observation", lambda e: {"state": e["observation"]["state"]},
     r"observation keys: missing \['pixels'\]"),
    ("is_first", lambda e: np.ones(5, bool), "'is_first' must be True at step 0 only"),
    ("is_terminal", lambda e: np.arange(5) == 2, "'is_terminal' may be True only"),
    ("discount", lambda e: np.where(np.arange(5) == 3, np.nan, 1).astype(np.float32),
     r"key 'discount' holds NaN or inf \(first at step 3\)"),
])
def test_writer_rejects_bad_episodes(tmp_path, key, change, message):
  episode = make_episode(np.random.default_rng(0), 4)
  episode[key] = change(episode)
  with EpisodeWriter(tmp_path / "data", observation_spec=SPEC, action_dim=ACTION_DIM,
                     **PROVENANCE) as writer:
    with pytest.raises(DatasetError, match="episode 0: " + message):
      writer.add_episode(episode)
    assert writer.num_episodes == 0


def test_missing_path_and_not_a_dataset(tmp_path):
  with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: no such dataset"):
    load_dataset(tmp_path / "nope")
  (tmp_path / "file").write_text("x")
  with pytest.raises(DatasetError, match="not a dataset: a dataset is a directory"):
    load_dataset(tmp_path / "file")
  with pytest.raises(DatasetError, match=f"{tmp_path}: not a worldmodels dataset: .* no "
                                         "metadata.json"):
    load_dataset(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"format": "d4rl", "version": 3}), "'format' is 'd4rl'"),
    (json.dumps([1, 2]), "'format' is 'list'"),
])
def test_foreign_metadata(tmp_path, content, message):
  (tmp_path / "metadata.json").write_text(content)
  with pytest.raises(DatasetError, match=f"metadata.json: not a worldmodels dataset metadata "
                                         f"file: .*{message}"):
    read_metadata(tmp_path)


def tamper_metadata(path, **changes) -> None:
  metadata = json.loads((path / "metadata.json").read_text())
  metadata.update(changes)
  (path / "metadata.json").write_text(json.dumps(metadata))


def test_newer_format_version(dataset):
  tamper_metadata(dataset, format_version=2)
  with pytest.raises(DatasetError, match="format_version 2 is newer than this code supports"):
    load_dataset(dataset)


def test_inconsistent_metadata(dataset):
  tamper_metadata(dataset, num_episodes=6)
  with pytest.raises(DatasetError, match="metadata.json: inconsistent: num_episodes is 6"):
    read_metadata(dataset)


def test_truncated_shard(dataset):
  shard = dataset / fmt.shard_filename(1)
  size = shard.stat().st_size
  with open(shard, "r+b") as file:
    file.truncate(size // 2)
  with pytest.raises(DatasetError, match=f"{shard}: shard is truncated or corrupt"):
    load_dataset(dataset)


def test_missing_shard(dataset):
  shard = dataset / fmt.shard_filename(2)
  shard.unlink()
  with pytest.raises(DatasetError, match=f"{shard}: shard file listed in metadata.json is "
                                         "missing"):
    load_dataset(dataset)


def test_missing_observation_key(dataset):
  with pytest.raises(DatasetError, match=r"no observation 'depth'.*available: \['pixels', "
                                         r"'state'\]"):
    load_dataset(dataset, observation_keys=["depth"])


def test_features_disagree_with_metadata(dataset):
  spec = read_metadata(dataset)["observation_spec"]
  tamper_metadata(dataset, observation_spec={**spec, "depth": {"shape": [4], "dtype": "float32"}})
  with pytest.raises(DatasetError, match=r"features.json: feature keys disagree with "
                                         r"metadata.json.*only in metadata.json "
                                         r"\['steps/observation/depth'\]"):
    load_dataset(dataset)


@pytest.mark.parametrize("entry, message", [
    ({"shape": [4], "dtype": "float32"},
     r"'observation/state' has shape \(5, 3\), expected \(5, 4\)"),
    ({"shape": [3], "dtype": "uint8"}, "'observation/state' has dtype float32, expected uint8"),
])
def test_decoded_arrays_checked_against_metadata(dataset, entry, message):
  spec = read_metadata(dataset)["observation_spec"]
  tamper_metadata(dataset, observation_spec={**spec, "state": entry})
  shard = dataset / fmt.shard_filename(0)
  with pytest.raises(DatasetError, match=f"{shard}: episode 0: key {message}"):
    load_dataset(dataset)


def test_nan_rejected_at_read(dataset, episodes):
  # Write a NaN past the writer's check by serialising the record directly.
  features = fmt.episode_features(read_metadata(dataset)["observation_spec"], ACTION_DIM)
  episode = {**episodes[0], "reward": episodes[0]["reward"].copy()}
  episode["reward"][2] = np.inf
  shard = dataset / fmt.shard_filename(2)
  writer = array_record_module.ArrayRecordWriter(os.fspath(shard), "group_size:1")
  writer.write(features.serialize_example({"steps": episode, "episode_id": 4}))
  writer.close()
  tamper_metadata(dataset, episode_lengths=[4, 7, 1, 5, 4], num_steps=26, num_transitions=21)
  with pytest.raises(DatasetError, match=f"{shard}: episode 4: key 'reward' holds NaN or inf "
                                         r"\(first at step 2\)"):
    load_dataset(dataset)


def test_loading_writes_nothing(dataset):
  before = {name: (dataset / name).stat().st_mtime_ns for name in os.listdir(dataset)}
  load_dataset(dataset)
  read_metadata(dataset)
  assert {name: (dataset / name).stat().st_mtime_ns for name in os.listdir(dataset)} == before


def test_statistics():
  returns = [10.0, 250.5, 33.0, 1.5, 870.0, 42.0]
  stats = dataset_statistics(returns, 6000)
  assert stats["timesteps"] == 6000 and stats["episodes"] == 6
  expected = {"mean": np.mean(returns), "std": np.std(returns), "min": np.min(returns),
              "p25": np.percentile(returns, 25), "median": np.median(returns),
              "p75": np.percentile(returns, 75), "max": np.max(returns)}
  for name, value in expected.items():
    assert stats[f"return_{name}"] == pytest.approx(value), name
  table = format_statistics_table(stats, "cheetah_run/random").splitlines()
  assert len(table) == 3 and table[0].startswith("| Dataset | Timesteps | Episodes |")
  assert table[2] == ("| cheetah_run/random | 6,000 | 6 | 201.2 | 310.9 | 1.5 | 15.8 | 37.5 "
                      "| 198.4 | 870.0 |")
  empty = dataset_statistics([], 0)
  assert empty["episodes"] == 0 and empty["return_mean"] is None
  assert "| - |" in format_statistics_table(empty, "empty")


def run_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "benchmarks.datasets", *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=120, check=False)


def test_cli_stats(dataset, tmp_path):
  result = run_cli("stats", os.fspath(dataset))
  assert result.returncode == 0, result.stderr
  assert "| data | 20 | 5 |" in result.stdout

  result = run_cli("stats", os.fspath(tmp_path / "nope"))
  assert result.returncode == 1
  assert f"{tmp_path / 'nope'}: no such dataset" in result.stderr
  assert "Traceback" not in result.stderr

  result = run_cli("stats")
  assert result.returncode == 2 and "Traceback" not in result.stderr
