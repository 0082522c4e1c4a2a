"""Streaming, resumable writer of episodic datasets (format: ``worldmodels.data.format``).

Episodes are checked and serialised as they are added, buffered, and written a shard at a
time. Committing a shard: write it under a temporary name, fsync, ``os.replace`` it to its final
name, rewrite the TFDS ``dataset_info.json``/``features.json`` (each replaced atomically), then
replace ``metadata.json`` atomically, which is the commit point. A killed process therefore
loses at most the buffered episodes, and readers never see a partial shard. ``resume=True``
cleans up what an interrupted commit left behind and appends new shards.

While a writer is open its dataset is marked ``"complete": false`` (readers refuse it) and
locked (``worldmodels.io.Lock``): a second writer on the same path fails fast instead of
cleaning up the first one's files. :func:`write_dataset` builds a whole dataset under
``<path>.partial`` and renames it when it is complete.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from typing import Any, Mapping

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import dataset_info as dataset_info_lib
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import naming
from tensorflow_datasets.core import splits as splits_lib
from tensorflow_datasets.core.utils.lazy_imports_utils import array_record_module

from worldmodels.data import format as fmt
from worldmodels.data.errors import DatasetError
from worldmodels.io import Lock, atomic_directory, fault_point
from worldmodels.data.reader import read_metadata
from worldmodels.data.stats import dataset_statistics
from worldmodels.data.types import Steps

TFDS_INFO_TEMP_DIR = ".tfds_info" + fmt.TEMP_SUFFIX

RESUME_FIELDS = ("dataset_version", "task", "behaviour_policy", "action_repeat", "seed",
                 "perturbation", "observation_spec", "action_dim")
"""Metadata fields that must match the existing dataset when resuming."""


class EpisodeWriter:
  """Writes episodes to a dataset directory, a shard at a time.

  Usage::

    with EpisodeWriter(path, observation_spec={"state": ((5,), np.float32)}, action_dim=1,
                       task="cartpole_swingup", behaviour_policy="random", action_repeat=8,
                       seed=0) as writer:
      writer.add_episode(steps)  # RLDS dict of T+1 steps (see worldmodels.data.types).

  Attributes:
    path: the dataset directory.
  """

  def __init__(self, path: str | os.PathLike, *, observation_spec: Mapping[str, Any],
               action_dim: int, task: str, behaviour_policy: str | Mapping[str, Any],
               action_repeat: int, seed: int, perturbation: Mapping[str, Any] | None = None,
               dataset_version: str = "1.0.0", extra: Mapping[str, Any] | None = None,
               episodes_per_shard: int = 16, resume: bool = False):
    """Creates a dataset, or reopens one to append to it.

    Args:
      path: dataset directory; created if missing. An existing non-empty directory is an
        error unless ``resume`` is set.
      observation_spec: name -> ``(shape, dtype)`` of one step's observation entry, e.g.
        ``{"state": ((D,), np.float32), "pixels": ((H, W, 3), np.uint8)}``.
      action_dim: A.
      task: task name (e.g. ``"cheetah_run"``).
      behaviour_policy: what collected the data (free-form JSON str or dict).
      action_repeat: environment steps per dataset step.
      seed: seed of the collection.
      perturbation: environment perturbation (JSON dict), None if none.
      dataset_version: ``x.y.z`` version of this dataset (also the TFDS version).
      extra: free JSON dict stored in the metadata; on resume, merged into the stored one.
      episodes_per_shard: episodes per shard (the most a kill can lose).
      resume: append to the dataset at ``path`` if there is one (its provenance must match the
        arguments); the caller continues from ``num_committed_episodes``.

    Raises:
      DatasetError: ``path`` holds data and ``resume`` is not set, ``path`` is a file, or the
        existing dataset is unreadable or does not match the arguments.
      ValueError: a bad argument.
    """
    self.path = os.fspath(path)
    spec = fmt.normalize_observation_spec(observation_spec)
    if not isinstance(action_dim, int) or action_dim < 1:
      raise ValueError(f"action_dim must be a positive int, got {action_dim!r}.")
    if not isinstance(episodes_per_shard, int) or episodes_per_shard < 1:
      raise ValueError(f"episodes_per_shard must be a positive int, got {episodes_per_shard!r}.")
    version = tfds.core.Version(dataset_version)  # Raises ValueError unless x.y.z.
    given = _json_value({
        "observation_spec": spec, "action_dim": action_dim, "task": task,
        "behaviour_policy": behaviour_policy, "action_repeat": action_repeat, "seed": seed,
        "perturbation": perturbation, "dataset_version": dataset_version,
        "extra": dict(extra or {}),
    })
    self._observation_spec = spec
    self._action_dim = action_dim
    self._episodes_per_shard = episodes_per_shard
    self._features = fmt.episode_features(spec, action_dim)
    self._buffer: list[tuple[bytes, float, int]] = []  # (record, return, transitions)
    self._closed = False

    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise DatasetError(self.path, "exists and is not a directory; a dataset is a directory.")
    self._lock = Lock(self.path, "writing a dataset")
    self._lock.acquire()
    try:
      self._open(given, version, resume, task)
    except BaseException:
      self._lock.release()
      raise

  def _open(self, given: dict, version, resume: bool, task: str) -> None:
    existing = os.path.isdir(self.path) and bool(os.listdir(self.path))
    if existing and not resume:
      raise DatasetError(self.path, "a dataset (or other files) already exists here; pass "
                         "resume=True to append to it or choose a new path (existing data is "
                         "never overwritten).")
    if existing:
      metadata = read_metadata(self.path, allow_incomplete=True)
      mismatches = [f"{key}: existing {metadata.get(key)!r}, given {given[key]!r}"
                    for key in RESUME_FIELDS if metadata.get(key) != given[key]]
      recorded = metadata["extra"].get("fingerprint")
      if "fingerprint" in given["extra"] and recorded != given["extra"]["fingerprint"]:
        mismatches.append("extra.fingerprint (the settings that made it) differs")
      if mismatches:
        raise DatasetError(os.path.join(self.path, fmt.METADATA_FILE), "cannot resume: the "
                           "arguments differ from the existing dataset in "
                           + "; ".join(mismatches) + ".")
      metadata["extra"].update(given["extra"])
      self._remove_uncommitted_files(metadata)
    else:
      os.makedirs(self.path, exist_ok=True)
      metadata = {
          "format": fmt.FORMAT_NAME,
          "format_version": fmt.FORMAT_VERSION,
          **{key: given[key] for key in RESUME_FIELDS},
          "num_episodes": 0,
          "num_steps": 0,
          "num_transitions": 0,
          "episode_returns": [],
          "episode_lengths": [],
          "shards": [],
          "extra": given["extra"],
          "statistics": dataset_statistics([], 0),
          "created": _now(),
      }
    metadata["complete"] = False
    self._tfds_info = dataset_info_lib.DatasetInfo(
        builder=dataset_info_lib.DatasetIdentity(
            name=fmt.TFDS_NAME, version=version, data_dir=self.path, module_name=__name__),
        description=f"worldmodels episodic dataset ({fmt.FORMAT_NAME}) of task {task}; see "
                    f"{fmt.METADATA_FILE}.",
        features=self._features)
    self._tfds_info.set_file_format(file_adapters.FileFormat.ARRAY_RECORD)
    self._commit(metadata)

  @property
  def num_committed_episodes(self) -> int:
    """Episodes safely on disk (where a resumed collection continues)."""
    return self._metadata["num_episodes"]

  @property
  def num_episodes(self) -> int:
    """Committed plus buffered episodes (the id the next episode gets)."""
    return self.num_committed_episodes + len(self._buffer)

  @property
  def metadata(self) -> dict:
    """A copy of the committed ``metadata.json`` content."""
    return json.loads(json.dumps(self._metadata))

  def add_episode(self, steps: Mapping[str, Any]) -> int:
    """Checks and buffers one episode; commits a shard when the buffer is full.

    Args:
      steps: RLDS dict of ``T + 1`` steps: ``observation`` (dict name -> ``[T+1, *shape]`` of
        the spec's dtype), ``action`` ``[T+1, A]`` float32, ``reward``/``discount`` ``[T+1]``
        float32, ``is_first``/``is_last``/``is_terminal`` ``[T+1]`` bool.

    Returns:
      The episode id (its index in the dataset).

    Raises:
      DatasetError: the episode does not fit the spec or the step convention (the message
        names the key).
    """
    if self._closed:
      raise DatasetError(self.path, "add_episode on a closed EpisodeWriter.")
    episode_id = self.num_episodes
    episode = fmt.validate_episode(steps, self._observation_spec, self._action_dim,
                                   path=self.path, episode=episode_id)
    record = self._features.serialize_example({"steps": episode, "episode_id": episode_id})
    episode_return = float(episode["reward"].sum(dtype=np.float64))
    self._buffer.append((record, episode_return, episode["reward"].shape[0] - 1))
    if len(self._buffer) >= self._episodes_per_shard:
      self.flush()
    return episode_id

  def flush(self) -> None:
    """Commits the buffered episodes as one shard (nothing to do if none)."""
    if not self._buffer:
      return
    metadata = self.metadata
    filename = fmt.shard_filename(len(metadata["shards"]))
    shard_path = os.path.join(self.path, filename)
    temp_path = shard_path + fmt.TEMP_SUFFIX
    writer = array_record_module.ArrayRecordWriter(temp_path, "group_size:1")
    for record, _, _ in self._buffer:
      writer.write(record)
    writer.close()
    _fsync(temp_path)
    os.replace(temp_path, shard_path)
    fault_point("dataset.shard")  # shard on disk, not yet in the metadata

    returns = [episode_return for _, episode_return, _ in self._buffer]
    lengths = [transitions for _, _, transitions in self._buffer]
    metadata["shards"].append({"file": filename, "num_episodes": len(self._buffer)})
    metadata["episode_returns"] += returns
    metadata["episode_lengths"] += lengths
    metadata["num_episodes"] += len(self._buffer)
    metadata["num_transitions"] += sum(lengths)
    metadata["num_steps"] += sum(lengths) + len(self._buffer)
    metadata["statistics"] = dataset_statistics(metadata["episode_returns"],
                                                metadata["num_transitions"])
    self._commit(metadata)
    self._buffer.clear()

  def close(self) -> None:
    """Commits the buffered episodes and writes the final metadata. Idempotent."""
    if self._closed:
      return
    self.flush()
    self._commit(dict(self.metadata, complete=True))
    self._closed = True
    self._lock.release()

  def abandon(self) -> None:
    """Stops writing without committing the buffered episodes (their data is dropped) and
    releases the lock; the dataset stays incomplete. Idempotent."""
    if self._closed:
      return
    self._buffer.clear()
    self._closed = True
    self._lock.release()

  def __enter__(self) -> "EpisodeWriter":
    return self

  def __exit__(self, exc_type, exc_value, traceback) -> None:
    if exc_type is None:
      self.close()
    else:  # an error while writing: what was committed stays, incomplete, for a resume
      self.abandon()

  def _commit(self, metadata: dict) -> None:
    """Writes the TFDS info files, then ``metadata.json`` (the commit point)."""
    metadata["updated"] = _now()
    shard_lengths = [shard["num_episodes"] for shard in metadata["shards"]]
    num_bytes = sum(os.path.getsize(os.path.join(self.path, shard["file"]))
                    for shard in metadata["shards"])
    template = naming.ShardedFileTemplate(
        dataset_name=fmt.TFDS_NAME, data_dir=self.path, split=fmt.TFDS_SPLIT,
        filetype_suffix=file_adapters.FileFormat.ARRAY_RECORD.file_suffix,
        template=fmt.TFDS_FILE_TEMPLATE)
    self._tfds_info.set_splits(splits_lib.SplitDict([splits_lib.SplitInfo(
        name=fmt.TFDS_SPLIT, shard_lengths=shard_lengths, num_bytes=num_bytes,
        filename_template=template)]))
    temp_dir = os.path.join(self.path, TFDS_INFO_TEMP_DIR)
    shutil.rmtree(temp_dir, ignore_errors=True)
    os.makedirs(temp_dir)
    self._tfds_info.write_to_directory(temp_dir)
    for name in os.listdir(temp_dir):
      _fsync(os.path.join(temp_dir, name))
      os.replace(os.path.join(temp_dir, name), os.path.join(self.path, name))
    os.rmdir(temp_dir)

    metadata_path = os.path.join(self.path, fmt.METADATA_FILE)
    with open(metadata_path + fmt.TEMP_SUFFIX, "w", encoding="utf-8") as file:
      json.dump(metadata, file, indent=2, allow_nan=False)
      file.write("\n")
      file.flush()
      os.fsync(file.fileno())
    os.replace(metadata_path + fmt.TEMP_SUFFIX, metadata_path)
    self._metadata = metadata

  def _remove_uncommitted_files(self, metadata: dict) -> None:
    """Deletes what an interrupted commit left: temp files and shards not in the metadata."""
    committed = {shard["file"] for shard in metadata["shards"]}
    for name in os.listdir(self.path):
      file_path = os.path.join(self.path, name)
      if name == TFDS_INFO_TEMP_DIR:
        shutil.rmtree(file_path)
      elif os.path.isfile(file_path) and (name.endswith(fmt.TEMP_SUFFIX) or (
          name.startswith(fmt.SHARD_PREFIX) and name not in committed)):
        os.remove(file_path)


def write_dataset(path: str | os.PathLike, steps: Steps, *, episodes_per_shard: int = 16,
                  **metadata: Any) -> dict:
  """Writes flat steps (all episodes back to back) as a new dataset.

  Every episode is checked before anything is written, so a bad ``steps`` leaves no dataset.

  Args:
    path: new dataset directory (must not exist); built under ``<path>.partial`` and renamed
      when complete, so a killed write leaves no dataset at ``path``.
    steps: N steps; episodes start at ``is_first`` steps. The observation spec and A are
      taken from its arrays.
    episodes_per_shard: episodes per shard.
    **metadata: the other ``EpisodeWriter`` keyword arguments (``task``,
      ``behaviour_policy``, ``action_repeat``, ``seed``, ...).

  Returns:
    The dataset's metadata.

  Raises:
    DatasetError: ``steps`` is not a sequence of valid episodes, or ``path`` exists.
    LockError: another process writes ``path``.
  """
  path = os.fspath(path)
  steps = steps.to_host()
  is_first = np.asarray(steps.is_first, dtype=bool)
  if steps.num_steps == 0 or not is_first[0]:
    raise DatasetError(path, "steps must be non-empty and start with an is_first step.")
  if steps.action.ndim != 2:
    raise DatasetError(path, f"'action' must be [N, A], got shape {steps.action.shape}.")
  observation_spec = {name: (array.shape[1:], array.dtype)
                      for name, array in steps.observation.items()}
  spec = fmt.normalize_observation_spec(observation_spec)
  starts = np.flatnonzero(is_first)
  ends = np.append(starts[1:], steps.num_steps)
  episodes = []
  for index, (start, end) in enumerate(zip(starts, ends)):
    episode = {
        "observation": {name: array[start:end] for name, array in steps.observation.items()},
        **{key: getattr(steps, key)[start:end] for key in fmt.STEP_FIELDS
           if key != "observation"},
    }
    episodes.append(fmt.validate_episode(episode, spec, steps.action.shape[1], path=path,
                                         episode=index))
  if os.path.exists(path):
    raise DatasetError(path, "already exists; datasets are never overwritten (choose another "
                       "path, or delete it yourself).")
  with Lock(path, "writing a dataset"), atomic_directory(path) as partial:
    with EpisodeWriter(partial, observation_spec=observation_spec,
                       action_dim=steps.action.shape[1], episodes_per_shard=episodes_per_shard,
                       **metadata) as writer:
      for episode in episodes:
        writer.add_episode(episode)
  return writer.metadata


def _json_value(value: Any) -> Any:
  """``value`` as JSON gives it back (tuples become lists), checking it is JSON-serialisable."""
  try:
    return json.loads(json.dumps(value, allow_nan=False))
  except (TypeError, ValueError) as error:
    raise ValueError(f"metadata must be JSON-serialisable: {error}") from None


def _fsync(path: str) -> None:
  """Flushes a written file to disk (so an atomic rename never exposes a partial file)."""
  with open(path, "rb") as file:
    os.fsync(file.fileno())


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
