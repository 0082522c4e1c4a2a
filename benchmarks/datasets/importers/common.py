"""What the importers share: writing an import, source checks and conversions, HDF5 access.

``_write_import`` writes the episodes an importer yields (built by ``_rlds_episode`` in our
RLDS step convention) with ``EpisodeWriter`` into a temporary directory renamed into place
once complete; the checks raise ``DatasetError`` naming the offending file and key.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from worldmodels.data.errors import DatasetError
from worldmodels.data.reader import read_metadata
from worldmodels.data.writer import EpisodeWriter

Episode = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Writing.


def _write_import(format_name: str, source: str | os.PathLike, files: Sequence[str],
                  episodes: Iterable[tuple[str, Episode]], destination: str | os.PathLike,
                  details: dict[str, Any], *, task: str, action_repeat: int, seed: int,
                  episodes_per_shard: int, dataset_version: str,
                  extra: Mapping[str, Any] | None) -> dict:
  """Writes the episodes into a temporary directory, then renames it to ``destination``.

  ``details`` (importer facts such as skipped rows) is read after the last episode, so the
  episode iterator may fill it in.
  """
  if not isinstance(task, str) or not task:
    raise ValueError(f"task must be a non-empty string, got {task!r}.")
  for name, value, least in (("action_repeat", action_repeat, 1), ("seed", seed, 0),
                             ("episodes_per_shard", episodes_per_shard, 1)):
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
      raise ValueError(f"{name} must be an int >= {least}, got {value!r}.")
  source_path = os.path.abspath(os.fspath(source))
  destination = os.path.abspath(os.fspath(destination))
  _check_destination(destination)
  parent = os.path.dirname(destination)
  created = _missing_directories(parent)
  os.makedirs(parent, exist_ok=True)
  temp = os.path.join(parent, f".{os.path.basename(destination)}.importing-"
                      f"{uuid.uuid4().hex[:12]}")
  os.mkdir(temp)
  writer = None
  try:
    for file, episode in episodes:
      if writer is None:
        spec = {name: (array.shape[1:], array.dtype)
                for name, array in episode["observation"].items()}
        writer = EpisodeWriter(
            temp, observation_spec=spec, action_dim=int(episode["action"].shape[1]),
            task=task, action_repeat=action_repeat, seed=seed,
            behaviour_policy={"kind": "imported", "format": format_name,
                              "source": source_path},
            dataset_version=dataset_version, episodes_per_shard=episodes_per_shard,
            extra={"source_format": format_name, "source": source_path, **dict(extra or {})})
      try:
        writer.add_episode(episode)
      except DatasetError as error:  # Named the temporary directory: name the source file.
        raise DatasetError(file, f"{error.problem.rstrip('.')}; every imported episode must "
                           "match the observation and action shapes of the first one.") from None
    if writer is None:
      raise DatasetError(source_path, "holds no episode with at least one transition; "
                         "nothing to import.")
    # The full extra (with the counts the episode iterator filled in) goes in at the end.
    writer.close()
    root = os.path.dirname(source_path) if not os.path.isdir(source_path) else source_path
    full_extra = {
        "source_format": format_name,
        "source": source_path,
        "source_files": [os.path.relpath(file, root) for file in files],
        **{key: sorted(value) if isinstance(value, set) else value
           for key, value in details.items()},
        **dict(extra or {}),
    }
    _rewrite_extra(temp, full_extra)
    try:
      os.rename(temp, destination)
    except OSError as error:
      raise DatasetError(destination, f"cannot move the imported dataset into place "
                         f"({error.strerror}); did something write there meanwhile?") from None
  except BaseException:
    if writer is not None:
      writer.abandon()
    shutil.rmtree(temp, ignore_errors=True)
    for directory in reversed(created):
      try:
        os.rmdir(directory)
      except OSError:
        break
    raise
  return read_metadata(destination)


def _rewrite_extra(path: str, extra: dict[str, Any]) -> None:
  """Sets the ``extra`` of the (closed) dataset at ``path`` through a resuming writer."""
  metadata = read_metadata(path)
  writer = EpisodeWriter(
      path, observation_spec=metadata["observation_spec"], action_dim=metadata["action_dim"],
      task=metadata["task"], behaviour_policy=metadata["behaviour_policy"],
      action_repeat=metadata["action_repeat"], seed=metadata["seed"],
      perturbation=metadata["perturbation"], dataset_version=metadata["dataset_version"],
      extra=extra, resume=True)
  writer.close()


def _check_destination(destination: str) -> None:
  if os.path.exists(destination):
    if not os.path.isdir(destination):
      raise DatasetError(destination, "exists and is not a directory; the import destination "
                         "must be a new (or empty) directory.")
    if os.listdir(destination):
      raise DatasetError(destination, "already exists and holds data; an import never "
                         "overwrites: choose a new destination or remove this one.")


def _missing_directories(path: str) -> list[str]:
  """The ancestors of ``path`` (itself included) that do not exist, outermost first."""
  missing = []
  while path and not os.path.exists(path):
    missing.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return missing[::-1]


# ---------------------------------------------------------------------------------------------
# Checks and conversions.


def _source_files(source: str | os.PathLike, suffix: str, what: str) -> list[str]:
  """The files to import: ``source`` itself, or its ``*suffix`` files in sorted name order."""
  path = os.fspath(source)
  if not os.path.exists(path):
    raise DatasetError(path, "no such file or directory: the import source does not exist.")
  if not os.path.isdir(path):
    return [path]
  files = sorted(file for file in glob.glob(os.path.join(glob.escape(path), "*" + suffix))
                 if os.path.isfile(file))
  if not files:
    raise DatasetError(path, f"no *{suffix} files in this directory; expected {what}.")
  return files


def _check_shape(path: str, key: str, shape: tuple, ndim: int, layout: str,
                 allow_trailing_one: bool = False) -> None:
  if len(shape) == ndim or (allow_trailing_one and len(shape) == ndim + 1 and shape[-1] == 1):
    return
  raise DatasetError(path, f"key '{key}' has shape {tuple(shape)} ({len(shape)} dims), "
                     f"expected {layout}.")


def _check_lengths(path: str, lengths: Mapping[str, int], unit: str) -> int:
  """Returns the common length of the keys; raises naming the first key that differs.

  ``unit`` is ``"entry"`` (npz, one per step) or ``"row"`` (hdf5).
  """
  plural = "entries" if unit == "entry" else unit + "s"
  (first_key, n), *others = lengths.items()
  for key, length in others:
    if length != n:
      raise DatasetError(path, f"key '{key}' has {length} {plural} but '{first_key}' has {n}; "
                         f"all keys must have one value per {unit}.")
  return n


def _float32(path: str, key: str, values: np.ndarray, check_from: int = 0,
             row_offset: int = 0, where: str = "", unit: str = "row") -> np.ndarray:
  """``values`` as float32, checking ``values[check_from:]`` are finite numbers.

  Errors name the first bad ``unit`` (``"entry"``/``"row"``) as ``row_offset`` + its index.
  """
  values = np.asarray(values)
  if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
    raise DatasetError(path, f"{where}key '{key}' has dtype {values.dtype}, expected numbers.")
  converted = values.astype(np.float32)
  checked = converted[check_from:].reshape(len(converted) - check_from, -1)
  bad = ~np.isfinite(checked).all(axis=1)
  if bad.any():
    index = int(np.flatnonzero(bad)[0]) + check_from + row_offset
    raise DatasetError(path, f"{where}key '{key}' holds NaN or inf (first at {unit} {index}; "
                       "expected finite values).")
  return converted


def _flags(path: str, key: str, values: np.ndarray, where: str = "") -> np.ndarray:
  """``values`` as bool, accepting 0/1 numbers."""
  values = np.asarray(values)
  if values.dtype == np.bool_:
    return values
  if np.issubdtype(values.dtype, np.number):
    finite = np.isfinite(values) if np.issubdtype(values.dtype, np.floating) else True
    if np.all(finite & ((values == 0) | (values == 1))):
      return values != 0
  raise DatasetError(path, f"{where}key '{key}' must hold booleans (or 0/1), got dtype "
                     f"{values.dtype} with values {np.unique(values)[:5].tolist()}.")


def _state(path: str, arrays: Mapping[str, np.ndarray], keys: Sequence[str], num: int,
           row_offset: int = 0, where: str = "", unit: str = "row") -> np.ndarray:
  """The ``state`` observation: ``keys`` flattened per step and concatenated, float32."""
  parts = [_float32(path, key, np.asarray(arrays[key]).reshape(num, -1), row_offset=row_offset,
                    where=where, unit=unit) for key in keys]
  return np.concatenate(parts, axis=1)


def _rlds_episode(observation: dict[str, np.ndarray], action: np.ndarray, reward: np.ndarray,
                  discount: np.ndarray, terminal: bool) -> Episode:
  """Our episode from ``T + 1`` observations and ``T`` (action, reward, discount)."""
  num = len(reward) + 1
  pad = lambda x: np.concatenate([x, np.zeros((1, *x.shape[1:]), np.float32)])  # noqa: E731
  steps = np.arange(num)
  return {
      "observation": observation,
      "action": pad(action.astype(np.float32)),
      "reward": pad(reward.astype(np.float32)),
      "discount": pad(discount.astype(np.float32)),
      "is_first": steps == 0,
      "is_last": steps == num - 1,
      "is_terminal": (steps == num - 1) & bool(terminal),
  }


# ---------------------------------------------------------------------------------------------
# HDF5.


def _import_h5py():
  try:
    import h5py  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError("importing HDF5 datasets needs the h5py package: pip install h5py") from None
  return h5py


def _h5_dataset(h5py, handle, path: str, key: str, expected: str):
  if key not in handle or not isinstance(handle[key], h5py.Dataset):
    found = sorted(name for name in handle if isinstance(handle[name], h5py.Dataset))
    raise DatasetError(path, f"missing key '{key}'; {expected}; found datasets {found}.")
  return handle[key]


def _open_h5(h5py, path: str):
  try:
    return h5py.File(path, "r")
  except OSError as error:
    raise DatasetError(path, f"cannot open as an HDF5 file ({error}).") from None
