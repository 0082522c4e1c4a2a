"""One device mesh for every run: ensemble members x seeds x data.

The library runs on one device by default. Given a :class:`jax.sharding.Mesh` from
:func:`make_mesh`, the training loop places

* a learner's state by its ``partition_specs(state)`` (e.g. the ensemble's member axis on
  ``"members"``), and a vmapped seed axis on ``"seeds"``;
* the data source's arrays replicated on every device (any device samples any row);
* each sampled batch split over ``"data"`` along its batch dimension (data parallelism: XLA
  all-reduces the gradients).

Several hosts are JAX's own multi-controller runtime: every process calls
``jax.distributed.initialize(...)`` first, then builds the same mesh over ``jax.devices()``
(all processes' devices); nothing else changes. Arrays are made with :func:`put`, which works
whether or not every device of the mesh belongs to this process.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from worldmodels.errors import ConfigError

AXES = ("members", "seeds", "data")
"""The mesh's axis names, outermost first."""


def make_mesh(members: int = 1, seeds: int = 1, data: Optional[int] = None,
              devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A ``members x seeds x data`` mesh over ``devices`` (default: every device of every
  process).

  Args:
    members: devices the ensemble members are split over.
    seeds: devices the vmapped seeds are split over.
    data: devices each batch is split over (None: the devices left over).
    devices: the devices, in order.

  Raises:
    ConfigError: the sizes do not multiply to the number of devices.
  """
  devices = list(jax.devices() if devices is None else devices)
  if data is None:
    data = len(devices) // max(members * seeds, 1)
  if min(members, seeds, data) < 1 or members * seeds * data != len(devices):
    raise ConfigError(f"a mesh of members={members} x seeds={seeds} x data={data} needs "
                      f"{members * seeds * data} devices; there are {len(devices)} "
                      f"({jax.process_count()} process(es)); choose sizes that multiply to "
                      f"{len(devices)}.")
  return Mesh(np.asarray(devices, dtype=object).reshape(members, seeds, data), AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, PartitionSpec())


def _fits(shape: Sequence[int], spec: PartitionSpec, mesh: Mesh) -> bool:
  """Every partitioned dimension divides by its mesh axes' size."""
  for size, axes in zip(shape, spec):
    if axes is None:
      continue
    axes = (axes,) if isinstance(axes, str) else axes
    if size % math.prod(mesh.shape[a] for a in axes):
      return False
  return len(spec) <= len(shape)


def sharding_of(mesh: Mesh, shape: Sequence[int], spec: PartitionSpec) -> NamedSharding:
  """``spec`` on ``mesh`` where it fits the shape, else replicated (a scalar, or a dimension
  that does not split evenly)."""
  return NamedSharding(mesh, spec if _fits(shape, spec, mesh) else PartitionSpec())


def put(value: Any, sharding: NamedSharding, may_alias: Optional[bool] = None) -> jax.Array:
  """``value`` (host or device) as one global array with ``sharding``, built from this
  process's copy of the value; works across processes (each fills its own devices).
  ``may_alias=False``: never the input's buffers (a host copy always makes new ones)."""
  if sharding.is_fully_addressable or (isinstance(value, jax.Array)
                                       and not value.is_fully_addressable):
    # A local value, or a global array moving between global shardings.
    return jax.device_put(value, sharding, may_alias=may_alias)
  host = np.asarray(value)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def put_tree(tree: Any, shardings: Any) -> Any:
  """:func:`put` over a pytree with a matching pytree of shardings; every leaf gets fresh
  buffers (the training loop donates its inputs)."""

  return jax.tree_util.tree_map(lambda x, s: put(x, s, may_alias=False), tree, shardings)


def tree_shardings(mesh: Mesh, tree: Any, specs: Optional[Any] = None,
                   seed_axis: bool = False) -> Any:
  """The shardings of ``tree``'s leaves on ``mesh``.

  Args:
    tree: arrays (or shape-dtype structs).
    specs: a matching pytree of :class:`PartitionSpec` for the leaves *without* the seed axis
      (None: all replicated).
    seed_axis: the leaves carry a leading seed axis, placed on ``"seeds"`` in front of their
      own spec.
  """
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  spec_leaves = (treedef.flatten_up_to(specs) if specs is not None
                 else [PartitionSpec()] * len(leaves))
  out = []
  for leaf, spec in zip(leaves, spec_leaves):
    if seed_axis:
      spec = PartitionSpec("seeds", *spec)
    out.append(sharding_of(mesh, np.shape(leaf), spec))
  return jax.tree_util.tree_unflatten(treedef, out)


def split_batch(mesh: Mesh) -> Callable[[Any], Any]:
  """``batch -> batch`` constraining every leaf's leading (batch) dimension to ``"data"``
  (leaves whose batch does not divide stay replicated); use inside ``jit``."""
  size = mesh.shape["data"]

  def constrain(x):
    if size == 1 or np.ndim(x) == 0 or x.shape[0] % size:
      return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec("data")))

  return lambda batch: jax.tree_util.tree_map(constrain, batch)


def is_primary() -> bool:
  """This is process 0 (always, without ``jax.distributed``): the one that writes logs and
  commits directories."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier ``name`` (a no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)


def to_host(tree: Any) -> Any:
  """``tree`` with every leaf whole on this process (numpy): arrays spanning other processes'
  devices are gathered (every process must call this); others are left as they are."""
  spans = [isinstance(x, jax.Array) and not x.is_fully_addressable
           for x in jax.tree_util.tree_leaves(tree)]
  if not any(spans):
    return tree
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  return jax.tree_util.tree_map(
      lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True))
      if isinstance(x, jax.Array) and not x.is_fully_addressable else x, tree)
