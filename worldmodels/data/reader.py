"""Reader of episodic datasets (format: ``worldmodels.data.format``). Reading never writes."""

from __future__ import annotations

import ctypes
import json
import os
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils.lazy_imports_utils import array_record_module

from worldmodels.data import format as fmt
from worldmodels.data.errors import DatasetError
from worldmodels.data.types import Steps

TFDS_INFO_FILES = ("dataset_info.json", "features.json")


def read_metadata(path: str | os.PathLike, *, allow_incomplete: bool = False) -> dict:
  """Reads and checks a dataset's ``metadata.json``.

  Args:
    path: the dataset directory.
    allow_incomplete: accept a dataset whose writer has not closed it (``complete`` false: it
      is being written, or its writer was killed); only a resuming writer does.

  Returns:
    The metadata dict (see ``worldmodels.data.format``).

  Raises:
    DatasetError: the path is missing or not a directory, holds no ``metadata.json`` (not a
      worldmodels dataset), the file is not JSON, foreign, of a newer format version or
      inconsistent, or the dataset is incomplete.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise DatasetError(path, "no such dataset: the path does not exist.")
  if not os.path.isdir(path):
    raise DatasetError(path, "not a dataset: a dataset is a directory, this is a file.")
  metadata_path = os.path.join(path, fmt.METADATA_FILE)
  if not os.path.isfile(metadata_path):
    raise DatasetError(path, f"not a worldmodels dataset: the directory holds no "
                       f"{fmt.METADATA_FILE}.")
  try:
    with open(metadata_path, encoding="utf-8") as file:
      metadata = json.load(file)
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise DatasetError(metadata_path, f"not a worldmodels dataset metadata file: not valid "
                       f"JSON ({error}).") from None
  except OSError as error:
    raise DatasetError(metadata_path, f"cannot read the file ({error.strerror}).") from None
  metadata = fmt.validate_metadata(metadata, metadata_path)
  if not allow_incomplete and metadata.get("complete") is False:
    raise DatasetError(path, "incomplete: its writer has not finished it (it is being written, "
                       f"or was interrupted after {metadata['num_episodes']} episodes); rerun "
                       "the command that builds it, which resumes it.")
  return metadata


def load_dataset(path: str | os.PathLike, *, observation_keys: Sequence[str] | None = None
                 ) -> tuple[Steps, dict]:
  """Loads a whole dataset into flat step arrays, checking it on the way.

  Args:
    path: the dataset directory.
    observation_keys: observation entries to load (default: all of them); the others are not
      decoded.

  Returns:
    ``(steps, metadata)``: ``steps`` holds the N = ``metadata["num_steps"]`` steps of all
    episodes, concatenated in episode order (``observation[name]`` ``[N, *shape]``, ``action``
    ``[N, A]``, ...); ``metadata`` is the ``metadata.json`` dict.

  Raises:
    DatasetError: on any problem, naming the file and the problem: the ``read_metadata``
      cases, an unknown observation key, TFDS files missing or disagreeing with the metadata, a
      shard missing, truncated or corrupt, or an episode with a wrong shape or dtype, a NaN/inf,
      inconsistent flags, an unexpected length or episode id.
  """
  path = os.fspath(path)
  metadata = read_metadata(path)
  spec = fmt.normalize_observation_spec(metadata["observation_spec"])
  keys = list(spec) if observation_keys is None else list(observation_keys)
  unknown = [key for key in keys if key not in spec]
  if unknown:
    raise DatasetError(path, f"no observation {unknown[0]!r} in this dataset; available: "
                       f"{sorted(spec)}.")
  spec = {key: spec[key] for key in keys}
  features = _episode_features(path, metadata, keys)
  action_dim = metadata["action_dim"]
  num_steps = metadata["num_steps"]
  observation = {key: np.empty((num_steps, *entry["shape"]), dtype=entry["dtype"])
                 for key, entry in spec.items()}
  arrays = {"action": np.empty((num_steps, action_dim), np.float32)}
  arrays.update({key: np.empty((num_steps,), np.float32) for key in fmt.SCALAR_KEYS})
  arrays.update({key: np.empty((num_steps,), np.bool_) for key in fmt.FLAG_KEYS})

  episode, offset = 0, 0
  for shard in metadata["shards"]:
    shard_path = os.path.join(path, shard["file"])
    for record in _read_shard(shard_path, shard["num_episodes"]):
      try:
        example = features.deserialize_example_np(record)
      except Exception as error:  # Any parse or decode failure means a corrupt record.
        raise DatasetError(shard_path, f"episode {episode}: corrupt record, cannot decode it "
                           f"({type(error).__name__}: {error}).") from None
      if int(example["episode_id"]) != episode:
        raise DatasetError(shard_path, f"episode {episode}: stored episode_id is "
                           f"{int(example['episode_id'])}, expected {episode} (ids follow the "
                           "order of metadata.json's shards).")
      steps = fmt.validate_episode(example["steps"], spec, action_dim, path=shard_path,
                                   episode=episode)
      length = steps["reward"].shape[0]
      if length != metadata["episode_lengths"][episode] + 1:
        raise DatasetError(shard_path, f"episode {episode}: has {length} steps but "
                           f"metadata.json lists {metadata['episode_lengths'][episode]} "
                           "transitions.")
      for key in observation:
        observation[key][offset:offset + length] = steps["observation"][key]
      for key in arrays:
        arrays[key][offset:offset + length] = steps[key]
      episode, offset = episode + 1, offset + length

  loaded = Steps(observation=observation, **arrays)
  release_freed_memory()  # the decoded episodes' buffers
  return loaded, metadata


def release_freed_memory() -> None:
  """Returns freed heap memory to the system (glibc's ``malloc_trim``; a no-op elsewhere).

  Decoding a dataset episode by episode frees as much memory as the dataset holds, and glibc
  keeps freed blocks below its (adaptive) mmap threshold in the heap: without this, loading a
  pixel dataset leaves about 1.5x its size resident, with it about 1.07x (``python -m
  benchmarks.perf drqbc`` measures it).
  """
  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:
    return
  trim = getattr(libc, "malloc_trim", None)
  if trim is not None:
    trim(0)


def _episode_features(path: str, metadata: dict,
                      observation_keys: Sequence[str]) -> tfds.features.FeaturesDict:
  """The TFDS features of the dataset (``features.json``) restricted to the loaded keys.

  Raises:
    DatasetError: the TFDS files are missing or unreadable, or their feature keys disagree with
      ``metadata.json``.
  """
  for name in TFDS_INFO_FILES:
    if not os.path.isfile(os.path.join(path, name)):
      raise DatasetError(os.path.join(path, name), "missing: the TFDS part of the dataset is "
                         "incomplete.")
  try:
    features = tfds.builder_from_directory(path).info.features
  except Exception as error:  # TFDS raises many kinds on garbled info files.
    raise DatasetError(path, f"cannot read the TFDS files {', '.join(TFDS_INFO_FILES)} "
                       f"({type(error).__name__}: {error}).") from None
  found = _flat_keys(features)
  expected = fmt.feature_keys(metadata["observation_spec"])
  if found != expected:
    raise DatasetError(os.path.join(path, "features.json"), "feature keys disagree with "
                       f"metadata.json: only in features.json {sorted(found - expected)}, only "
                       f"in metadata.json {sorted(expected - found)}.")
  steps = features["steps"]
  return tfds.features.FeaturesDict({
      "steps": tfds.features.FeaturesDict({
          "observation": tfds.features.FeaturesDict(
              {key: steps["observation"][key] for key in observation_keys}),
          **{key: steps[key] for key in fmt.STEP_FIELDS if key != "observation"},
      }),
      "episode_id": features["episode_id"],
  })


def _flat_keys(feature: tfds.features.FeatureConnector, prefix: str = "") -> set[str]:
  """Flat ``a/b/c`` keys of the leaves of nested FeaturesDicts."""
  if isinstance(feature, tfds.features.FeaturesDict):
    return set().union(*(_flat_keys(sub, f"{prefix}{key}/") for key, sub in feature.items()))
  return {prefix.rstrip("/")}


def _read_shard(shard_path: str, num_episodes: int) -> list[bytes]:
  """All records of a shard, which must hold exactly ``num_episodes``.

  Raises:
    DatasetError: the shard is missing, truncated or corrupt.
  """
  if not os.path.isfile(shard_path):
    raise DatasetError(shard_path, "shard file listed in metadata.json is missing.")
  try:
    reader = array_record_module.ArrayRecordReader(shard_path)
    try:
      num_records = reader.num_records()
      records = reader.read_all() if num_records == num_episodes else []
    finally:
      reader.close()
  except Exception as error:  # array_record raises RuntimeError/ValueError on bad files.
    raise DatasetError(shard_path, f"shard is truncated or corrupt ({type(error).__name__}: "
                       f"{error}).") from None
  if num_records != num_episodes:
    raise DatasetError(shard_path, f"shard is truncated or corrupt: it holds {num_records} "
                       f"records, metadata.json lists {num_episodes} episodes.")
  return records
