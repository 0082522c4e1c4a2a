"""The ``d4rl-hdf5`` importer: one D4RL-style HDF5 file of transitions.

Layout (as published in github.com/Farama-Foundation/D4RL): ``observations`` ``[N, D]``,
``actions`` ``[N, A]``, ``rewards``, ``terminals``, ``timeouts`` ``[N]`` (``[N, 1]``
accepted), optional ``next_observations`` ``[N, D]``; other keys (``infos/...``,
``metadata/...``) are ignored. Row ``i`` is a whole transition (s_i, a_i, r_i, s'_i): no
offset. Episodes end at rows with ``terminals | timeouts`` (so, as in d4rl's
``sequence_dataset``, a terminal always ends an episode). The observation is written as
``state`` float32.

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
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import numpy as np

from worldmodels.data.errors import DatasetError

from benchmarks.datasets.importers.common import (Episode, _check_lengths, _check_shape,
                                                  _flags, _float32, _h5_dataset, _import_h5py,
                                                  _open_h5, _rlds_episode, _write_import)

D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
D4RL_BLOCK_ROWS = 1 << 16
"""Rows of a D4RL file read at once (episodes are cut from blocks, not read row by row)."""


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
