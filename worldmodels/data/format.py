"""On-disk episodic dataset format: constants, TFDS features, episode and metadata checks.

A dataset is a directory holding

* a TFDS dataset written as ``array_record`` shards (``dataset_info.json``, ``features.json``,
  ``episodes-train.array_record-00000``, ...), readable by ``tfds.builder_from_directory(path)``
  without TensorFlow. One example is one episode of ``T + 1`` steps (RLDS layout, see
  ``worldmodels.data.types``)::

    steps/observation/<name>  [T+1, *shape] (uint8 entries, i.e. pixels, are zlib-compressed)
    steps/action              [T+1, A] float32
    steps/reward              [T+1] float32
    steps/discount            [T+1] float32
    steps/is_first            [T+1] bool
    steps/is_last             [T+1] bool
    steps/is_terminal         [T+1] bool
    episode_id                int64 (0, 1, 2, ... in write order)

* ``metadata.json``: our human-readable metadata (provenance, specs, shard list, per-episode
  returns and lengths, statistics). It is the commit record: a shard exists for readers only
  once ``metadata.json`` lists it.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np
import tensorflow_datasets as tfds

from worldmodels.data.errors import DatasetError

FORMAT_NAME = "worldmodels.episodic"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
TFDS_NAME = "episodes"
TFDS_SPLIT = "train"
TFDS_FILE_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}"
SHARD_PREFIX = f"{TFDS_NAME}-{TFDS_SPLIT}.array_record-"
TEMP_SUFFIX = ".tmp"

FLAG_KEYS = ("is_first", "is_last", "is_terminal")
SCALAR_KEYS = ("reward", "discount")
STEP_FIELDS = ("observation", "action") + SCALAR_KEYS + FLAG_KEYS
OBSERVATION_DTYPES = ("float32", "uint8", "int32", "int64", "bool")

REQUIRED_METADATA = {
    "format": str,
    "format_version": int,
    "dataset_version": str,
    "task": str,
    "action_repeat": int,
    "seed": int,
    "observation_spec": dict,
    "action_dim": int,
    "num_episodes": int,
    "num_steps": int,
    "num_transitions": int,
    "episode_returns": list,
    "episode_lengths": list,
    "shards": list,
    "extra": dict,
    "statistics": dict,
}
"""Keys every ``metadata.json`` holds, with their JSON types (``behaviour_policy``,
``perturbation``, ``created`` and ``updated`` are also present but free-form)."""


def normalize_observation_spec(observation_spec: Mapping[str, Any]) -> dict[str, dict]:
  """Returns the JSON form ``{name: {"shape": [...], "dtype": "float32"}}`` of a spec.

  Args:
    observation_spec: name -> ``(shape, dtype)`` (per-step shape, e.g. ``((3,), np.float32)``
      or ``((64, 64, 3), np.uint8)``), or the JSON form itself (as stored in the metadata).

  Raises:
    ValueError: on an empty spec, a bad name, shape or unsupported dtype.
  """
  if not observation_spec:
    raise ValueError("observation_spec is empty: give at least one observation entry.")
  normalized = {}
  for name, entry in observation_spec.items():
    if not isinstance(name, str) or not name or "/" in name:
      raise ValueError(f"observation_spec: bad observation name {name!r} (non-empty, no '/').")
    try:
      shape, dtype = (entry["shape"], entry["dtype"]) if isinstance(entry, Mapping) else entry
      shape, dtype_name = tuple(shape), np.dtype(dtype).name
    except (KeyError, TypeError, ValueError) as error:
      raise ValueError(f"observation_spec[{name!r}]: expected (shape, dtype) or "
                       f"{{'shape': ..., 'dtype': ...}}, got {entry!r} ({error}).") from None
    if not all(isinstance(dim, (int, np.integer)) and dim > 0 for dim in shape):
      raise ValueError(f"observation_spec[{name!r}]: shape {shape} must be positive integers.")
    if dtype_name not in OBSERVATION_DTYPES:
      raise ValueError(f"observation_spec[{name!r}]: dtype {dtype_name} is not one of "
                       f"{', '.join(OBSERVATION_DTYPES)}.")
    normalized[name] = {"shape": [int(dim) for dim in shape], "dtype": dtype_name}
  return normalized


def episode_features(observation_spec: Mapping[str, dict],
                     action_dim: int) -> tfds.features.FeaturesDict:
  """The TFDS features of one episode (see the module docstring).

  Args:
    observation_spec: normalized spec (``normalize_observation_spec``).
    action_dim: A.
  """
  observation = {
      name: tfds.features.Tensor(
          shape=(None, *entry["shape"]),
          dtype=np.dtype(entry["dtype"]),
          encoding="zlib" if entry["dtype"] == "uint8" else "none")
      for name, entry in observation_spec.items()
  }
  steps = {
      "observation": tfds.features.FeaturesDict(observation),
      "action": tfds.features.Tensor(shape=(None, action_dim), dtype=np.float32),
      **{key: tfds.features.Tensor(shape=(None,), dtype=np.float32) for key in SCALAR_KEYS},
      **{key: tfds.features.Tensor(shape=(None,), dtype=np.bool_) for key in FLAG_KEYS},
  }
  return tfds.features.FeaturesDict({
      "steps": tfds.features.FeaturesDict(steps),
      "episode_id": tfds.features.Scalar(dtype=np.int64),
  })


def feature_keys(observation_spec: Mapping[str, dict]) -> set[str]:
  """Flat feature keys (``steps/observation/state``, ..., ``episode_id``) of a dataset."""
  keys = {f"steps/observation/{name}" for name in observation_spec}
  keys.update(f"steps/{key}" for key in STEP_FIELDS if key != "observation")
  keys.add("episode_id")
  return keys


def shard_filename(index: int) -> str:
  """File name of shard ``index`` (TFDS template ``TFDS_FILE_TEMPLATE``)."""
  return f"{SHARD_PREFIX}{index:05d}"


def validate_episode(steps: Mapping[str, Any], observation_spec: Mapping[str, dict],
                     action_dim: int, *, path: str | os.PathLike,
                     episode: int) -> dict[str, Any]:
  """Checks one episode against the spec and the RLDS step convention.

  Args:
    steps: RLDS keys (``STEP_FIELDS``) -> arrays of ``T + 1`` steps; ``observation`` is a dict
      name -> ``[T+1, *shape]``.
    observation_spec: normalized spec; ``steps["observation"]`` must hold exactly its names.
    action_dim: A.
    path: dataset directory or file, named in errors.
    episode: episode index, named in errors.

  Returns:
    The episode with numpy arrays (same structure).

  Raises:
    DatasetError: naming the episode and key, on a missing/unknown key, a wrong shape or dtype,
      a non-finite float, or inconsistent ``is_first``/``is_last``/``is_terminal`` flags.
  """
  def fail(problem: str):
    raise DatasetError(path, f"episode {episode}: {problem}")

  if not isinstance(steps, Mapping):
    fail(f"steps must be a dict of arrays, got {type(steps).__name__}.")
  missing = [key for key in STEP_FIELDS if key not in steps]
  unknown = sorted(set(steps) - set(STEP_FIELDS))
  if missing or unknown:
    fail(f"missing keys {missing}, unknown keys {unknown}; expected exactly {list(STEP_FIELDS)}.")
  observation = steps["observation"]
  if not isinstance(observation, Mapping):
    fail(f"'observation' must be a dict of arrays, got {type(observation).__name__}.")
  missing = sorted(set(observation_spec) - set(observation))
  unknown = sorted(set(observation) - set(observation_spec))
  if missing or unknown:
    fail(f"observation keys: missing {missing}, unknown {unknown}; "
         f"the spec has {sorted(observation_spec)}.")

  expected = {f"observation/{name}": (tuple(entry["shape"]), entry["dtype"])
              for name, entry in observation_spec.items()}
  expected["action"] = ((action_dim,), "float32")
  expected.update({key: ((), "float32") for key in SCALAR_KEYS})
  expected.update({key: ((), "bool") for key in FLAG_KEYS})
  arrays = {key: np.asarray(observation[key.split("/", 1)[1]] if key.startswith("observation/")
                            else steps[key]) for key in expected}
  num_steps = arrays["is_first"].shape[0] if arrays["is_first"].ndim else 0
  if num_steps < 2:
    fail(f"'is_first' has {num_steps} steps; an episode needs at least 2 steps (1 transition).")
  for key, (shape, dtype) in expected.items():
    array = arrays[key]
    if array.shape != (num_steps, *shape):
      fail(f"key '{key}' has shape {array.shape}, expected {(num_steps, *shape)} "
           f"(T+1={num_steps} steps).")
    if array.dtype.name != dtype:
      fail(f"key '{key}' has dtype {array.dtype.name}, expected {dtype}.")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
      bad_step = int(np.flatnonzero(~np.isfinite(array.reshape(num_steps, -1)).any(axis=1))[0])
      fail(f"key '{key}' holds NaN or inf (first at step {bad_step}).")

  is_first, is_last, is_terminal = arrays["is_first"], arrays["is_last"], arrays["is_terminal"]
  if not is_first[0] or is_first[1:].any():
    fail("'is_first' must be True at step 0 only, got True at steps "
         f"{np.flatnonzero(is_first).tolist()}.")
  if not is_last[-1] or is_last[:-1].any():
    fail(f"'is_last' must be True at the last step ({num_steps - 1}) only, got True at steps "
         f"{np.flatnonzero(is_last).tolist()}.")
  if is_terminal[:-1].any():
    fail("'is_terminal' may be True only at the last step, got True at steps "
         f"{np.flatnonzero(is_terminal).tolist()}.")
  return {
      "observation": {name: arrays[f"observation/{name}"] for name in observation_spec},
      **{key: arrays[key] for key in STEP_FIELDS if key != "observation"},
  }


def validate_metadata(metadata: Any, path: str | os.PathLike) -> dict:
  """Checks a parsed ``metadata.json``: format, version, types and internal consistency.

  Args:
    metadata: the parsed JSON.
    path: the ``metadata.json`` file, named in errors.

  Returns:
    ``metadata``, unchanged.

  Raises:
    DatasetError: on a foreign file, a newer format version, or inconsistent fields.
  """
  def fail(problem: str):
    raise DatasetError(path, problem)

  if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
    found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
    fail(f"not a worldmodels dataset metadata file: 'format' is {found!r}, "
         f"expected {FORMAT_NAME!r}.")
  version = metadata.get("format_version")
  if not isinstance(version, int) or version < 1:
    fail(f"bad 'format_version' {version!r}.")
  if version > FORMAT_VERSION:
    fail(f"format_version {version} is newer than this code supports ({FORMAT_VERSION}); "
         "update worldmodels to read it.")
  for key, kind in REQUIRED_METADATA.items():
    value = metadata.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
      fail(f"field '{key}' is missing or not a {kind.__name__} (got {value!r}).")
  try:
    normalize_observation_spec(metadata["observation_spec"])
  except ValueError as error:
    fail(f"bad 'observation_spec': {error}")
  shards = metadata["shards"]
  if not all(isinstance(shard, dict) and isinstance(shard.get("file"), str)
             and isinstance(shard.get("num_episodes"), int) for shard in shards):
    fail("each entry of 'shards' must be {'file': str, 'num_episodes': int}.")
  for index, shard in enumerate(shards):
    if shard["file"] != shard_filename(index) or shard["num_episodes"] < 1:
      fail(f"shards[{index}] is {shard}, expected file {shard_filename(index)!r} holding at "
           "least one episode.")
  if metadata["action_dim"] < 1:
    fail(f"'action_dim' must be positive, got {metadata['action_dim']}.")
  num_episodes = metadata["num_episodes"]
  lengths = metadata["episode_lengths"]
  counts = {
      "sum of shards[].num_episodes": sum(shard["num_episodes"] for shard in shards),
      "len(episode_returns)": len(metadata["episode_returns"]),
      "len(episode_lengths)": len(lengths),
  }
  for what, count in counts.items():
    if count != num_episodes:
      fail(f"inconsistent: num_episodes is {num_episodes} but {what} is {count}.")
  if not all(isinstance(length, int) and length >= 1 for length in lengths):
    fail("'episode_lengths' must be positive integers (transitions per episode).")
  if not all(isinstance(ret, (int, float)) and math.isfinite(ret)
             for ret in metadata["episode_returns"]):
    fail("'episode_returns' must be finite numbers.")
  if (metadata["num_transitions"] != sum(lengths)
      or metadata["num_steps"] != sum(lengths) + num_episodes):
    fail(f"inconsistent: num_transitions {metadata['num_transitions']} and num_steps "
         f"{metadata['num_steps']} disagree with episode_lengths (sum {sum(lengths)}) over "
         f"{num_episodes} episodes.")
  return metadata
