"""Importers of published offline-RL dataset layouts into our episodic format.

Each importer reads one published layout and writes a new dataset (``worldmodels.data.format``)
with ``EpisodeWriter``, converting to our RLDS step convention (``worldmodels.data.types``): an
episode of ``T`` transitions has ``T + 1`` steps, step ``t`` holds o_t, the action a_t taken at
o_t, the reward r_t received for it and the discount of o_t -> o_{t+1}; the last step holds o_T
only (zero action, reward and discount; ``is_terminal`` when the episode ended in a terminal
state).

Formats (``IMPORTERS``; layouts as published in github.com/conglu1997/v-d4rl and
github.com/Farama-Foundation/D4RL):

``vd4rl-npz``: V-D4RL Offline DreamerV2 data (``<task>/<quality>/64px/*.npz``). One episode per
  file, every key holding one entry per step: ``image`` ``[T+1, H, W, C]`` uint8, ``action``
  ``[T+1, A]``, ``reward``, ``discount`` ``[T+1]``, ``is_first``, ``is_last``, ``is_terminal``
  ``[T+1]`` bool (``discount`` or ``is_terminal`` may be missing, the other is then derived as
  DreamerV2 does: ``is_terminal = discount == 0``). Files are read in sorted name order.

  **The known first-step offset.** DreamerV2 stores each entry as the environment returned it:
  entry ``t`` holds o_t together with the action that LED TO o_t and the reward (and discount)
  received on arriving at o_t. Entry 0 (the reset) therefore holds a dummy zero action and
  reward 0, and the action taken at o_t is in entry ``t + 1``. The importer shifts by one::

    ours.action[t]   = npz.action[t + 1]      for t < T   (ours.action[T] = 0)
    ours.reward[t]   = npz.reward[t + 1]      for t < T   (ours.reward[T] = 0)
    ours.discount[t] = npz.discount[t + 1]    for t < T   (ours.discount[T] = 0)
    ours.pixels[t]   = npz.image[t]           for t <= T

  so the dummy entry-0 action/reward is dropped (and not checked) and episode returns equal
  ``npz.reward.sum()``. The V-D4RL npz files hold no proprioceptive state (the DreamerV2 DMC
  wrapper keeps only the non-ignored ``dm_control`` observation keys, and V-D4RL's converter
  writes pixels only); a ``state`` observation is written when the files have a ``state`` key
  or when ``state_keys`` names keys to concatenate (flattened, float32).

``vd4rl-hdf5``: V-D4RL DrQ+BC data (``<task>/<quality>/84px/*.hdf5`` shards). Each shard holds
  episodes back to back, one row per dm_env time step: ``observation`` ``[N, C, H, W]`` uint8
  (channels first, a single frame, not stacked), ``action`` ``[N, A]``, ``reward``,
  ``discount`` ``[N]`` and ``step_type`` ``[N]`` (dm_env ``StepType``: 0 FIRST, 1 MID, 2 LAST;
  may be stored as floats). Episodes are FIRST, MID..., LAST runs; each shard must hold whole
  episodes (as DrQ+BC's loader, which restarts its frame stack per shard, requires). Rows
  follow the dm_env convention (drqv2's ``ExtendedTimeStep``): the action, reward and discount
  of a row belong to the transition that led INTO it and the FIRST row holds a zero action,
  reward 0 and discount 1, so the importer applies the same one-step shift as for ``vd4rl-npz``
  and transposes frames to channels-last ``pixels`` ``[H, W, C]``. An episode is terminal when
  its LAST row has discount 0. Shards are read in sorted file-name order, episode by episode.

``d4rl-hdf5``: one D4RL-style HDF5 file: ``observations`` ``[N, D]``, ``actions`` ``[N, A]``,
  ``rewards``, ``terminals``, ``timeouts`` ``[N]`` (``[N, 1]`` accepted), optional
  ``next_observations`` ``[N, D]``; other keys (``infos/...``, ``metadata/...``) are ignored.
  Row ``i`` is a whole transition (s_i, a_i, r_i, s'_i): no offset. Episodes end at rows with
  ``terminals | timeouts`` (so, as in d4rl's ``sequence_dataset``, a terminal always ends an
  episode). The observation is written as ``state`` float32.

  * With ``next_observations``: every row is kept; the final observation of an episode is
    ``next_observations`` of its last row; ``is_terminal`` is ``terminals`` of that row and the
    discount is 0 on a terminal transition, else 1. Rows after the last terminal/timeout (a
    trailing partial episode) form a last, non-terminal episode ending at the end of the file.
  * Without ``next_observations``: the next state of an episode's last row is unknown
    (``observations[i + 1]`` already belongs to the next episode), so that row is dropped, as
    ``d4rl.qlearning_dataset`` drops timeout rows and the file's last row. The episode then ends
    at the observation of the dropped row and is never terminal: the terminal transition of a
    terminal episode is dropped too (counted in ``extra["dropped_terminal_transitions"]``), so
    prefer files with ``next_observations`` when terminations matter. A trailing partial
    episode is handled the same way; episodes left with no transition (a single row) are
    skipped and counted in ``extra["skipped_episodes"]``.
  * Without ``timeouts`` (old v0 files) pass ``max_episode_steps``: like d4rl's fallback
    (``env._max_episode_steps``), a row is a timeout when it is the ``max_episode_steps``-th
    row since the last episode end (d4rl's counter restarts at 1 instead of 0 after an
    episode end, so its later episodes are one row shorter; here every time-limited episode
    has exactly ``max_episode_steps`` rows).

Safety: the source is checked as it is read (missing keys, shapes, lengths, NaN/inf, episode
flags) and any problem raises ``DatasetError`` naming the offending file and key. The dataset is
written into a hidden temporary directory beside ``destination`` and renamed to
``destination`` only once complete, so a failed import leaves no destination (and no temporary
directory) behind; an existing non-empty ``destination`` is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from worldmodels.data.errors import DatasetError
from worldmodels.data.reader import read_metadata
from worldmodels.data.writer import EpisodeWriter

NPZ_REQUIRED_KEYS = ("image", "action", "reward", "is_first", "is_last")
VD4RL_HDF5_KEYS = ("observation", "action", "reward", "discount", "step_type")
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
STEP_TYPE_NAMES = {0: "FIRST", 1: "MID", 2: "LAST"}
D4RL_BLOCK_ROWS = 1 << 16
"""Rows of a D4RL file read at once (episodes are cut from blocks, not read row by row)."""

Episode = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Public API.


def import_vd4rl_npz(source: str | os.PathLike, destination: str | os.PathLike, *, task: str,
                     action_repeat: int = 2, seed: int = 0,
                     state_keys: Sequence[str] | None = None, episodes_per_shard: int = 16,
                     dataset_version: str = "1.0.0",
                     extra: Mapping[str, Any] | None = None) -> dict:
  """Imports V-D4RL DreamerV2 ``*.npz`` episodes (one episode per file, see module docstring).

  Args:
    source: directory of ``*.npz`` episode files (read in sorted name order), or one file.
    destination: new dataset directory (must not exist or be empty).
    task: task name stored in the metadata (e.g. ``"walker_walk"``).
    action_repeat: environment steps per dataset step (V-D4RL: 2).
    seed: seed stored in the metadata (V-D4RL data were collected with seed 0).
    state_keys: npz keys concatenated (each flattened per step, float32) into a ``state``
      observation; default: ``["state"]`` if the files have that key, else no ``state``.
    episodes_per_shard: episodes per written shard.
    dataset_version: ``x.y.z`` version of the new dataset.
    extra: more JSON entries for the metadata's ``extra``.

  Returns:
    The metadata of the written dataset.

  Raises:
    DatasetError: naming the file and key, on a missing or empty source, an unreadable file, a
      missing key, a wrong ndim/dtype, keys of different lengths, NaN/inf, ``is_first``/
      ``is_last``/``is_terminal`` flags that do not form one episode of >= 1 transition, shapes
      differing between files, or a destination that holds data.
    ValueError: a bad argument (``task``, ``action_repeat``, ``seed``, ``extra``, ...).
  """
  files = _source_files(source, ".npz", "V-D4RL DreamerV2 episode files (*.npz)")
  details: dict[str, Any] = {"state_keys": [], "ignored_keys": set()}
  episodes = (_npz_episode(path, state_keys, details) for path in files)
  return _write_import("vd4rl-npz", source, files, episodes, destination, details,
                       task=task, action_repeat=action_repeat, seed=seed,
                       episodes_per_shard=episodes_per_shard, dataset_version=dataset_version,
                       extra=extra)


def import_vd4rl_hdf5(source: str | os.PathLike, destination: str | os.PathLike, *, task: str,
                      action_repeat: int = 2, seed: int = 0,
                      state_keys: Sequence[str] | None = None, episodes_per_shard: int = 16,
                      dataset_version: str = "1.0.0",
                      extra: Mapping[str, Any] | None = None) -> dict:
  """Imports V-D4RL DrQ+BC ``*.hdf5`` shards (dm_env rows, see module docstring).

  Args:
    source: directory of ``*.hdf5`` shards (read in sorted name order), or one shard.
    destination: new dataset directory (must not exist or be empty).
    task: task name stored in the metadata.
    action_repeat: environment steps per dataset step (V-D4RL: 2).
    seed: seed stored in the metadata.
    state_keys: shard datasets (``[N, ...]``) concatenated into a float32 ``state``
      observation; default: ``["state"]`` if the shards have that key, else no ``state``.
    episodes_per_shard: episodes per written shard.
    dataset_version: ``x.y.z`` version of the new dataset.
    extra: more JSON entries for the metadata's ``extra``.

  Returns:
    The metadata of the written dataset.

  Raises:
    DatasetError: naming the shard and key (see ``import_vd4rl_npz``); also a ``step_type``
      that is not 0/1/2 or whose FIRST/MID/LAST sequence does not form whole episodes.
    ValueError: a bad argument.
    ImportError: h5py is not installed.
  """
  files = _source_files(source, ".hdf5", "V-D4RL DrQ+BC shards (*.hdf5)")
  h5py = _import_h5py()
  details: dict[str, Any] = {"state_keys": []}
  episodes = _vd4rl_hdf5_episodes(h5py, files, state_keys, details)
  return _write_import("vd4rl-hdf5", source, files, episodes, destination, details,
                       task=task, action_repeat=action_repeat, seed=seed,
                       episodes_per_shard=episodes_per_shard, dataset_version=dataset_version,
                       extra=extra)


def import_d4rl_hdf5(source: str | os.PathLike, destination: str | os.PathLike, *, task: str,
                     action_repeat: int = 1, seed: int = 0,
                     max_episode_steps: int | None = None, episodes_per_shard: int = 16,
                     dataset_version: str = "1.0.0",
                     extra: Mapping[str, Any] | None = None) -> dict:
  """Imports one D4RL-style HDF5 file of transitions (see module docstring).

  Args:
    source: the ``.hdf5`` file.
    destination: new dataset directory (must not exist or be empty).
    task: task name stored in the metadata (e.g. ``"hopper-medium-v2"``).
    action_repeat: environment steps per dataset step (D4RL: 1).
    seed: seed stored in the metadata.
    max_episode_steps: only for files without ``timeouts``: the time limit that ends episodes
      (d4rl's fallback for old datasets).
    episodes_per_shard: episodes per written shard.
    dataset_version: ``x.y.z`` version of the new dataset.
    extra: more JSON entries for the metadata's ``extra``.

  Returns:
    The metadata of the written dataset; its ``extra`` counts ``dropped_final_transitions``,
    ``dropped_terminal_transitions`` and ``skipped_episodes`` (all 0 with
    ``next_observations``).

  Raises:
    DatasetError: naming the file and key, on a missing source, a missing key, a wrong ndim,
      keys of different lengths, NaN/inf, non-boolean flags, no episode with a transition, or
      a destination that holds data.
    ValueError: a bad argument.
    ImportError: h5py is not installed.
  """
  source_path = os.fspath(source)
  if not os.path.exists(source_path):
    raise DatasetError(source_path, "no such file: the import source does not exist.")
  if os.path.isdir(source_path):
    raise DatasetError(source_path, "is a directory; the d4rl-hdf5 importer reads one D4RL "
                       "HDF5 file (observations, actions, rewards, terminals, timeouts).")
  if max_episode_steps is not None and (not isinstance(max_episode_steps, int)
                                        or max_episode_steps < 1):
    raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}.")
  h5py = _import_h5py()
  details: dict[str, Any] = {}
  episodes = _d4rl_episodes(h5py, source_path, max_episode_steps, details)
  return _write_import("d4rl-hdf5", source, [source_path], episodes, destination, details,
                       task=task, action_repeat=action_repeat, seed=seed,
                       episodes_per_shard=episodes_per_shard, dataset_version=dataset_version,
                       extra=extra)


IMPORTERS: dict[str, Callable[..., dict]] = {
    "vd4rl-npz": import_vd4rl_npz,
    "vd4rl-hdf5": import_vd4rl_hdf5,
    "d4rl-hdf5": import_d4rl_hdf5,
}
"""Format name -> importer ``(source, destination, *, task, ...) -> metadata``."""


def import_dataset(format_name: str, source: str | os.PathLike,
                   destination: str | os.PathLike, **kwargs: Any) -> dict:
  """Imports ``source`` in the published layout ``format_name`` (a key of ``IMPORTERS``).

  Args:
    format_name: ``"vd4rl-npz"``, ``"vd4rl-hdf5"`` or ``"d4rl-hdf5"``.
    source: the source file or directory.
    destination: new dataset directory.
    **kwargs: the importer's keyword arguments (``task`` is required).

  Returns:
    The metadata of the written dataset.

  Raises:
    ValueError: an unknown format (the message lists the known ones).
    DatasetError: see the importers.
  """
  if format_name not in IMPORTERS:
    raise ValueError(f"unknown dataset format {format_name!r}; known formats: "
                     f"{', '.join(IMPORTERS)}.")
  return IMPORTERS[format_name](source, destination, **kwargs)


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


def _import_h5py():
  try:
    import h5py  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError("importing HDF5 datasets needs the h5py package: pip install h5py") from None
  return h5py


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
# V-D4RL DreamerV2 npz.


def _npz_episode(path: str, state_keys: Sequence[str] | None,
                 details: dict[str, Any]) -> tuple[str, Episode]:
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {key: data[key] for key in data.files}
  except Exception as error:  # Not a zip, a corrupt member, a pickled object array, ...
    raise DatasetError(path, f"cannot read as a .npz episode file ({type(error).__name__}: "
                       f"{error}).") from None
  expected = ("a DreamerV2 episode file holds 'image', 'action', 'reward', 'is_first', "
              "'is_last' and 'is_terminal' and/or 'discount'")
  missing = [key for key in NPZ_REQUIRED_KEYS if key not in arrays]
  if "discount" not in arrays and "is_terminal" not in arrays:
    missing.append("discount' or 'is_terminal")
  if state_keys is None:
    state_keys = ["state"] if "state" in arrays else []
  missing += [key for key in state_keys if key not in arrays]
  if state_keys:
    expected += f" (and the requested state keys {list(state_keys)})"
  if missing:
    raise DatasetError(path, f"missing key '{missing[0]}' (missing: {missing}); {expected}; "
                       f"found keys {sorted(arrays)}.")
  used = [*NPZ_REQUIRED_KEYS, "discount", "is_terminal", *state_keys]
  details["ignored_keys"].update(key for key in arrays if key not in used)
  details["state_keys"] = list(state_keys)

  image = arrays["image"]
  _check_shape(path, "image", image.shape, 4, "[T+1, H, W, C] (channels-last frames)")
  if image.dtype != np.uint8 or image.shape[-1] not in (1, 3):
    raise DatasetError(path, f"key 'image' has dtype {image.dtype} and shape {image.shape}, "
                       "expected uint8 frames [T+1, H, W, C] with C 1 or 3.")
  present = [key for key in used if key in arrays]
  num = _check_lengths(path, {key: len(np.atleast_1d(arrays[key])) for key in present},
                       "entry")
  if num < 2:
    raise DatasetError(path, f"key 'image' has {num} entr{'y' if num == 1 else 'ies'}; an "
                       "episode needs at least 2 (one transition).")
  _check_shape(path, "action", arrays["action"].shape, 2, "[T+1, A]")
  for key in ("reward", "discount", "is_first", "is_last", "is_terminal"):
    if key in arrays:
      _check_shape(path, key, arrays[key].shape, 1, "[T+1] (one value per entry)")

  is_first = _flags(path, "is_first", arrays["is_first"])
  is_last = _flags(path, "is_last", arrays["is_last"])
  if not is_first[0] or is_first[1:].any():
    raise DatasetError(path, "key 'is_first' must be True at entry 0 only (one episode per "
                       f"file), got True at entries {np.flatnonzero(is_first).tolist()}.")
  if not is_last[-1] or is_last[:-1].any():
    raise DatasetError(path, f"key 'is_last' must be True at the last entry ({num - 1}) only "
                       f"(one episode per file), got True at entries "
                       f"{np.flatnonzero(is_last).tolist()}.")
  # Entry 0 holds DreamerV2's dummy action/reward/discount: only entries 1.. are used and checked.
  action = _float32(path, "action", arrays["action"], check_from=1, unit="entry")
  reward = _float32(path, "reward", arrays["reward"], check_from=1, unit="entry")
  is_terminal = None
  if "is_terminal" in arrays:
    is_terminal = _flags(path, "is_terminal", arrays["is_terminal"])
    if is_terminal[:-1].any():
      raise DatasetError(path, "key 'is_terminal' may be True only at the last entry (an "
                         "episode ends at a terminal state), got True at entries "
                         f"{np.flatnonzero(is_terminal).tolist()}.")
  if "discount" in arrays:
    discount = _float32(path, "discount", arrays["discount"], check_from=1, unit="entry")
    if is_terminal is not None and bool(is_terminal[-1]) != bool(discount[-1] == 0):
      raise DatasetError(path, f"keys 'is_terminal' and 'discount' disagree at the last entry: "
                         f"is_terminal is {bool(is_terminal[-1])} but discount is "
                         f"{float(discount[-1])} (expected discount 0 exactly when terminal).")
  else:
    discount = 1.0 - is_terminal.astype(np.float32)
  terminal = bool(is_terminal[-1]) if is_terminal is not None else bool(discount[-1] == 0)

  observation = {"pixels": image}
  if state_keys:
    observation["state"] = _state(path, arrays, state_keys, num, unit="entry")
  return path, _rlds_episode(observation, action[1:], reward[1:], discount[1:], terminal)


# ---------------------------------------------------------------------------------------------
# V-D4RL DrQ+BC hdf5 shards.


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


def _vd4rl_hdf5_episodes(h5py, files: Sequence[str], state_keys: Sequence[str] | None,
                         details: dict[str, Any]) -> Iterator[tuple[str, Episode]]:
  expected = ("a V-D4RL DrQ+BC shard holds 'observation' [N, C, H, W] uint8, 'action' [N, A], "
              "'reward' [N], 'discount' [N] and 'step_type' [N]")
  for path in files:
    with _open_h5(h5py, path) as handle:
      keys = list(VD4RL_HDF5_KEYS)
      if state_keys is None:
        shard_state_keys = ["state"] if "state" in handle else []
      else:
        shard_state_keys = list(state_keys)
      details["state_keys"] = shard_state_keys
      data = {key: _h5_dataset(h5py, handle, path, key, expected)
              for key in keys + shard_state_keys}
      observation = data["observation"]
      _check_shape(path, "observation", observation.shape, 4,
                   "[N, C, H, W] (channels-first frames)")
      if observation.dtype != np.uint8 or observation.shape[1] not in (1, 3):
        raise DatasetError(path, f"key 'observation' has dtype {observation.dtype} and shape "
                           f"{observation.shape}, expected uint8 channels-first frames "
                           "[N, C, H, W] with C 1 or 3.")
      _check_shape(path, "action", data["action"].shape, 2, "[N, A]")
      for key in ("reward", "discount", "step_type"):
        _check_shape(path, key, data[key].shape, 1, "[N] (one value per row)")
      num = _check_lengths(path, {key: data[key].shape[0] if data[key].shape else 0
                                  for key in data}, "row")
      step_type = _step_types(path, data["step_type"][()])
      starts, ends = _episode_rows(path, step_type, num)
      for index, (start, end) in enumerate(zip(starts, ends)):
        rows = slice(start, end + 1)
        where = f"episode {index} (rows {start}..{end}): "
        frames = np.ascontiguousarray(observation[rows].transpose(0, 2, 3, 1))
        action = _float32(path, "action", data["action"][rows], 1, start, where)
        reward = _float32(path, "reward", data["reward"][rows], 1, start, where)
        discount = _float32(path, "discount", data["discount"][rows], 1, start, where)
        obs = {"pixels": frames}
        if shard_state_keys:
          obs["state"] = _state(path, {key: data[key][rows] for key in shard_state_keys},
                                shard_state_keys, end + 1 - start, start, where)
        yield path, _rlds_episode(obs, action[1:], reward[1:], discount[1:],
                                  terminal=bool(discount[-1] == 0))


def _step_types(path: str, values: np.ndarray) -> np.ndarray:
  """``step_type`` as int (V-D4RL's converter stores floats), checking it is 0, 1 or 2."""
  values = np.asarray(values)
  bad = values
  if np.issubdtype(values.dtype, np.number):
    valid = np.isin(values, (0, 1, 2))  # 1.0 == 1; NaN is invalid.
    if valid.all():
      return values.astype(np.int64)
    bad = values[~valid]
  raise DatasetError(path, "key 'step_type' must hold dm_env step types 0 (FIRST), 1 (MID) or "
                     f"2 (LAST), got dtype {values.dtype} with values "
                     f"{np.unique(bad)[:5].tolist()}.")


def _episode_rows(path: str, step_type: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
  """First and last rows of the episodes of a shard, checking FIRST MID... LAST runs."""
  if num == 0:
    raise DatasetError(path, "key 'step_type' is empty: the shard holds no rows.")
  previous = np.concatenate([[2], step_type[:-1]])  # A virtual LAST before row 0.
  wrong = np.flatnonzero((step_type == 0) != (previous == 2))
  if wrong.size:
    row = int(wrong[0])
    if step_type[row] == 0:
      start = int(np.flatnonzero(step_type[:row] == 0)[-1])
      raise DatasetError(path, f"key 'step_type': row {row} is FIRST (0) but the episode "
                         f"started at row {start} has not ended with a LAST (2) step "
                         f"(an episode needs FIRST, MID..., LAST and at least one transition).")
    raise DatasetError(path, f"key 'step_type': row {row} is "
                       f"{STEP_TYPE_NAMES[int(step_type[row])]} ({int(step_type[row])}) but "
                       f"{'the shard starts' if row == 0 else 'the previous episode ended'} "
                       "there; expected FIRST (0): each episode starts with a FIRST step.")
  if step_type[-1] != 2:
    raise DatasetError(path, f"key 'step_type': the shard ends inside an episode (last row "
                       f"{num - 1} is {STEP_TYPE_NAMES[int(step_type[-1])]}, expected LAST (2)); "
                       "each shard must hold whole episodes.")
  return np.flatnonzero(step_type == 0), np.flatnonzero(step_type == 2)


# ---------------------------------------------------------------------------------------------
# D4RL hdf5.


def _d4rl_episodes(h5py, path: str, max_episode_steps: int | None,
                   details: dict[str, Any]) -> Iterator[tuple[str, Episode]]:
  expected = ("a D4RL file holds 'observations' [N, D], 'actions' [N, A], 'rewards' [N], "
              "'terminals' [N], 'timeouts' [N] and optionally 'next_observations' [N, D]")
  with _open_h5(h5py, path) as handle:
    keys = list(D4RL_KEYS)
    if "timeouts" not in handle and max_episode_steps is not None:
      keys.remove("timeouts")
    elif "timeouts" not in handle:
      expected += " (pass max_episode_steps for old files without 'timeouts')"
    data = {key: _h5_dataset(h5py, handle, path, key, expected) for key in keys}
    has_next = "next_observations" in handle
    if has_next:
      data["next_observations"] = _h5_dataset(h5py, handle, path, "next_observations", expected)
    _check_shape(path, "observations", data["observations"].shape, 2, "[N, D]")
    _check_shape(path, "actions", data["actions"].shape, 2, "[N, A]")
    for key in ("rewards", "terminals", "timeouts"):
      if key in data:
        _check_shape(path, key, data[key].shape, 1, "[N] (or [N, 1])", allow_trailing_one=True)
    if has_next and data["next_observations"].shape != data["observations"].shape:
      raise DatasetError(path, f"key 'next_observations' has shape "
                         f"{data['next_observations'].shape}, expected the shape of "
                         f"'observations' {data['observations'].shape}.")
    num = _check_lengths(path, {key: data[key].shape[0] for key in data}, "row")
    if num == 0:
      raise DatasetError(path, "key 'observations' is empty: the file holds no transitions.")

    terminals = _flags(path, "terminals", data["terminals"][()].reshape(num))
    if "timeouts" in data:
      timeouts = _flags(path, "timeouts", data["timeouts"][()].reshape(num))
    else:
      timeouts = _time_limit_timeouts(terminals, max_episode_steps)
    ends = np.flatnonzero(terminals | timeouts)
    if not ends.size or ends[-1] != num - 1:
      ends = np.append(ends, num - 1)  # The trailing partial episode.
    starts = np.concatenate([[0], ends[:-1] + 1])

    details.update(has_next_observations=has_next, dropped_final_transitions=0,
                   dropped_terminal_transitions=0, skipped_episodes=0)
    for block_start, block_end, episodes in _blocks(starts, ends):
      rows = slice(block_start, block_end + 1)
      where = f"rows {block_start}..{block_end}: "
      block = {key: _float32(path, key, data[key][rows], row_offset=block_start, where=where)
               for key in data if key not in ("terminals", "timeouts")}
      for start, end in episodes:
        first, last = start - block_start, end - block_start
        terminal = bool(terminals[end])
        if has_next:
          state = np.concatenate([block["observations"][first:last + 1],
                                  block["next_observations"][last:last + 1]])
          transitions = slice(first, last + 1)
        else:  # The last row's next state is unknown: drop it, end at its observation.
          details["dropped_final_transitions"] += 1
          details["dropped_terminal_transitions"] += int(terminal)
          if end == start:
            details["skipped_episodes"] += 1
            continue
          state = block["observations"][first:last + 1]
          transitions = slice(first, last)
          terminal = False
        reward = block["rewards"].reshape(-1)[transitions]
        discount = np.ones(len(reward), np.float32)
        discount[-1] = 0.0 if terminal else 1.0
        yield path, _rlds_episode({"state": state}, block["actions"][transitions], reward,
                                  discount, terminal)


def _time_limit_timeouts(terminals: np.ndarray, max_episode_steps: int) -> np.ndarray:
  """Timeouts of a file without them: each ``max_episode_steps``-th row since an episode end."""
  timeouts = np.zeros_like(terminals)
  episode_step = 0
  for row, terminal in enumerate(terminals):
    if episode_step == max_episode_steps - 1:
      timeouts[row] = True
    if terminal or timeouts[row]:
      episode_step = 0
    else:
      episode_step += 1
  return timeouts


def _blocks(starts: np.ndarray, ends: np.ndarray) -> Iterator[tuple[int, int, list]]:
  """Groups consecutive episodes into row blocks of about ``D4RL_BLOCK_ROWS`` rows."""
  episodes: list[tuple[int, int]] = []
  for start, end in zip(starts.tolist(), ends.tolist()):
    episodes.append((start, end))
    if end + 1 - episodes[0][0] >= D4RL_BLOCK_ROWS:
      yield episodes[0][0], end, episodes
      episodes = []
  if episodes:
    yield episodes[0][0], episodes[-1][1], episodes
