"""The ``vd4rl-npz`` importer: V-D4RL Offline DreamerV2 data (``<task>/<quality>/64px/*.npz``).

Layout (as published in github.com/conglu1997/v-d4rl): one episode per file, every key holding
one entry per step: ``image`` ``[T+1, H, W, C]`` uint8, ``action`` ``[T+1, A]``, ``reward``,
``discount`` ``[T+1]``, ``is_first``, ``is_last``, ``is_terminal`` ``[T+1]`` bool
(``discount`` or ``is_terminal`` may be missing, the other is then derived as DreamerV2 does:
``is_terminal = discount == 0``). Files are read in sorted name order.

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
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from worldmodels.data.errors import DatasetError

from benchmarks.datasets.importers.common import (Episode, _check_lengths, _check_shape,
                                                  _flags, _float32, _rlds_episode,
                                                  _source_files, _state, _write_import)

NPZ_REQUIRED_KEYS = ("image", "action", "reward", "is_first", "is_last")


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
