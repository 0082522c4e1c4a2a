"""A data source: named episodic datasets loaded once, on the device, with their tables.

Each dataset of a source has its steps, its episode index, its static metadata and spec, and
whatever host-computed tables its samplers need (e.g. the valid starts of length-50 sequences).
Everything is computed and uploaded once, so one process reuses a loaded source across seeds and
agents::

  source = DataSource.load({"replay": "/data/replay"})
  for seed in range(3):
    train(make_agent("td3bc", config, source.spec()), data=source, ...)

Samplers (:mod:`worldmodels.data.samplers`) are bound to their frame stack, sequence length
and n-step when they are made; ``sampler.prepare(source)`` registers their tables, and inside
``jit`` they read ``source.arrays`` (name -> :class:`DatasetArrays`, a pytree of device arrays).
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Mapping, Optional, Sequence

import flax.struct
import jax
import numpy as np

from worldmodels.data.reader import load_dataset, release_freed_memory
from worldmodels.data.samplers import EpisodeIndex, build_index
from worldmodels.data.spec import DataSpec
from worldmodels.data.types import Steps

TableFn = Callable[[Steps, EpisodeIndex], np.ndarray]


@flax.struct.dataclass
class DatasetArrays:
  """One dataset on the device.

  Attributes:
    steps: :class:`Steps` ``[N, ...]``.
    index: its :class:`EpisodeIndex`.
    tables: name -> host-computed table (e.g. ``"sequence_starts/50"``).
  """

  steps: Steps
  index: EpisodeIndex
  tables: Dict[str, jax.Array]


class DataSource:
  """Named datasets, each with its spec, metadata, device arrays and tables.

  Attributes:
    names: the datasets' names, in order.
  """

  def __init__(self, datasets: Mapping[str, Steps], *,
               metadata: Optional[Mapping[str, dict]] = None,
               frame_stack: int | Mapping[str, int] = 1,
               device: Optional[jax.Device] = None):
    """Args:
      datasets: name -> episodic steps (host or device arrays).
      metadata: name -> the dataset's ``metadata.json`` (task, behaviour policy, ...).
      frame_stack: frames per stack of image entries, for every dataset's spec.
      device: where the arrays go (default: the first local device).

    Raises:
      ValueError: no datasets, or a dataset whose flags do not delimit episodes.
    """
    if not datasets:
      raise ValueError("DataSource needs at least one dataset.")
    self.names = tuple(datasets)
    self._metadata = {name: dict((metadata or {}).get(name, {})) for name in self.names}
    self._host: Dict[str, Steps] = {}
    self._specs: Dict[str, DataSpec] = {}
    self._arrays: Dict[str, DatasetArrays] = {}
    for name, steps in datasets.items():
      try:
        index = build_index(steps)
      except ValueError as error:
        raise ValueError(f"dataset {name!r}: {error}") from None
      self._specs[name] = DataSpec.from_steps(steps, frame_stack=frame_stack, name=name,
                                              task=self._metadata[name].get("task"))
      placed = jax.device_put(steps, device)
      self._arrays[name] = DatasetArrays(placed, index, {})
      # On a CPU device the placed arrays are host memory already: keep read-only views of
      # them rather than a second copy (100k steps of 84 px frames are 2.1 GB).
      self._host[name] = _host_views(placed) if _on_cpu(placed) else steps
    self._device = device
    self._placed: Dict[object, tuple] = {}  # sharding -> (tables, arrays placed with it)

  @classmethod
  def load(cls, paths: str | Mapping[str, str], *,
           observation_keys: Optional[Sequence[str]] = None,
           frame_stack: int | Mapping[str, int] = 1) -> "DataSource":
    """Loads datasets from disk (:func:`~worldmodels.data.load_dataset`).

    Args:
      paths: one dataset directory (named by that path), or name -> directory.
      observation_keys: entries to load (default: all).
      frame_stack: as in the constructor.

    Raises:
      DatasetError: a path is not a readable dataset (the message names it).
    """
    if isinstance(paths, (str, os.PathLike)):
      paths = {os.fspath(paths): os.fspath(paths)}
    datasets, metadata = {}, {}
    for name, path in paths.items():
      datasets[name], metadata[name] = load_dataset(path, observation_keys=observation_keys)
      metadata[name] = dict(metadata[name], path=os.path.abspath(path))
    source = cls(datasets, metadata=metadata, frame_stack=frame_stack)
    # The decoded host arrays are copies of what the device now holds: free them, and give
    # their memory back (with glibc's defaults big buffers are mmapped and go at once; with
    # the project's tunables, mmap off, they stay in the heap until trimmed).
    del datasets
    release_freed_memory()
    return source

  # -- what is in it ------------------------------------------------------------------------

  def resolve(self, name: Optional[str]) -> str:
    """``name``, or the only dataset's name when None.

    Raises:
      KeyError: an unknown name, or None with several datasets.
    """
    if name is None:
      if len(self.names) != 1:
        raise KeyError(f"this data source holds {len(self.names)} datasets {list(self.names)}; "
                       "name one.")
      return self.names[0]
    if name not in self._specs:
      raise KeyError(f"no dataset {name!r} in this data source; it holds {list(self.names)}.")
    return name

  def spec(self, name: Optional[str] = None) -> DataSpec:
    """The spec of dataset ``name`` (None: the only one)."""
    return self._specs[self.resolve(name)]

  @property
  def specs(self) -> Dict[str, DataSpec]:
    return dict(self._specs)

  def metadata(self, name: Optional[str] = None) -> dict:
    """The dataset's ``metadata.json`` content (plus ``path`` when loaded from disk)."""
    return self._metadata[self.resolve(name)]

  def steps(self, name: Optional[str] = None) -> Steps:
    """The dataset's steps on the host (numpy; read-only views of the device arrays when the
    device is a CPU)."""
    return self._host[self.resolve(name)]

  @property
  def arrays(self) -> Dict[str, DatasetArrays]:
    """Name -> device arrays and tables: the pytree samplers read inside ``jit``."""
    return dict(self._arrays)

  def placed_arrays(self, sharding, put: Callable) -> Dict[str, DatasetArrays]:
    """:attr:`arrays` with ``sharding`` (e.g. replicated over a mesh), placed with
    ``put(value, sharding)`` once per sharding and set of tables, then reused (runs over
    seeds and agents on one mesh upload the data once)."""
    tables = tuple((name, tuple(sorted(a.tables))) for name, a in self._arrays.items())
    cached = self._placed.get(sharding)
    if cached is None or cached[0] != tables:
      placed = jax.tree_util.tree_map(lambda x: put(x, sharding), self.arrays)
      cached = self._placed[sharding] = (tables, placed)
    return dict(cached[1])

  def nbytes(self) -> int:
    """Bytes of every device array (steps, index and tables)."""
    return sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(self._arrays))

  # -- tables -------------------------------------------------------------------------------

  def table(self, name: Optional[str], key: str, compute: TableFn) -> jax.Array:
    """Table ``key`` of dataset ``name``, computing it on the host (``compute(host steps,
    index)``) and uploading it the first time it is asked for."""
    name = self.resolve(name)
    arrays = self._arrays[name]
    if key not in arrays.tables:
      value = np.asarray(compute(self._host[name], arrays.index))
      tables = dict(arrays.tables, **{key: jax.device_put(value, self._device)})
      self._arrays[name] = arrays.replace(tables=tables)
    return self._arrays[name].tables[key]


def _on_cpu(tree) -> bool:
  return all(device.platform == "cpu" for leaf in jax.tree_util.tree_leaves(tree)
             for device in leaf.devices())


def _host_views(tree):
  """``np.asarray`` of each CPU array: a read-only view of its buffer, no copy."""
  return jax.tree_util.tree_map(np.asarray, tree)

