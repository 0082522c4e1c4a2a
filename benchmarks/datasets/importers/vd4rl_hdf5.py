"""The ``vd4rl-hdf5`` importer: V-D4RL DrQ+BC data (``<task>/<quality>/84px/*.hdf5`` shards).

Layout (as published in github.com/conglu1997/v-d4rl): each shard holds episodes back to back,
one row per dm_env time step: ``observation`` ``[N, C, H, W]`` uint8 (channels first, a single
frame, not stacked), ``action`` ``[N, A]``, ``reward``, ``discount`` ``[N]`` and
``step_type`` ``[N]`` (dm_env ``StepType``: 0 FIRST, 1 MID, 2 LAST; may be stored as floats).
Episodes are FIRST, MID..., LAST runs; each shard must hold whole episodes (as DrQ+BC's loader,
which restarts its frame stack per shard, requires). Rows follow the dm_env convention (drqv2's
``ExtendedTimeStep``): the action, reward and discount of a row belong to the transition that
led INTO it and the FIRST row holds a zero action, reward 0 and discount 1, so the importer
applies the same one-step shift as for ``vd4rl-npz`` (see ``vd4rl_npz``) and transposes frames
to channels-last ``pixels`` ``[H, W, C]``. An episode is terminal when its LAST row has
discount 0. Shards are read in sorted file-name order, episode by episode.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from worldmodels.data.errors import DatasetError

from benchmarks.datasets.importers.common import (Episode, _check_lengths, _check_shape,
                                                  _float32, _h5_dataset, _import_h5py,
                                                  _open_h5, _rlds_episode, _source_files,
                                                  _state, _write_import)

VD4RL_HDF5_KEYS = ("observation", "action", "reward", "discount", "step_type")
STEP_TYPE_NAMES = {0: "FIRST", 1: "MID", 2: "LAST"}


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
