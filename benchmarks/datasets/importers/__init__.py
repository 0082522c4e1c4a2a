"""Importers of published offline-RL dataset layouts into our episodic format.

Each importer reads one published layout and writes a new dataset (``worldmodels.data.format``)
with ``EpisodeWriter``, converting to our RLDS step convention (``worldmodels.data.types``): an
episode of ``T`` transitions has ``T + 1`` steps, step ``t`` holds o_t, the action a_t taken at
o_t, the reward r_t received for it and the discount of o_t -> o_{t+1}; the last step holds o_T
only (zero action, reward and discount; ``is_terminal`` when the episode ended in a terminal
state).

Formats (``IMPORTERS``; layouts as published in github.com/conglu1997/v-d4rl and
github.com/Farama-Foundation/D4RL), one module each, whose docstring details the layout:

``vd4rl-npz`` (``vd4rl_npz.py``): V-D4RL Offline DreamerV2 episodes, one per ``*.npz`` file.
  Each entry stores the action and reward that led INTO it, so they are shifted by one step
  on import (the known first-step offset).
``vd4rl-hdf5`` (``vd4rl_hdf5.py``): V-D4RL DrQ+BC ``*.hdf5`` shards of dm_env rows (the same
  one-step shift; frames transposed to channels-last).
``d4rl-hdf5`` (``d4rl_hdf5.py``): one D4RL-style HDF5 file of whole transitions (no offset),
  written as a float32 ``state``.

``common.py`` holds what they share: the source checks and conversions, the RLDS episode
builder and the write below.

Safety: the source is checked as it is read (missing keys, shapes, lengths, NaN/inf, episode
flags) and any problem raises ``DatasetError`` naming the offending file and key. The dataset is
written into a hidden temporary directory beside ``destination`` and renamed to
``destination`` only once complete, so a failed import leaves no destination (and no temporary
directory) behind; an existing non-empty ``destination`` is never touched.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from benchmarks.datasets.importers.d4rl_hdf5 import import_d4rl_hdf5
from benchmarks.datasets.importers.vd4rl_hdf5 import import_vd4rl_hdf5
from benchmarks.datasets.importers.vd4rl_npz import import_vd4rl_npz

__all__ = [
    "IMPORTERS",
    "import_d4rl_hdf5",
    "import_dataset",
    "import_vd4rl_hdf5",
    "import_vd4rl_npz",
]

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
