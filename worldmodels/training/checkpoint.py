"""Orbax checkpoints of the loop's whole state (agent state, loop key, counters, replay).

Layout: ``<workdir>/<subdirectory>/<step>/default`` (an orbax ``StandardCheckpointer`` tree).
A save writes ``<step>.partial/`` and renames it to ``<step>/`` when complete, so a listed step
is always a whole checkpoint, and a kill during a save leaves only a partial directory that the
next save of that step replaces. The newest ``max_to_keep`` are kept (None: all of them).
:meth:`Checkpointer.restore_latest` falls back to the previous kept checkpoint, and says so, when
the newest one cannot be read (a truncated or corrupted file).

Device arrays are saved as they are, so a sharded state (``worldmodels.parallel``) is written
shard by shard and restored onto the shardings of the ``like`` tree it is restored into. With
several processes (``jax.distributed``) every process calls ``save`` and ``restore``; process 0
alone creates, renames and prunes directories, between barriers.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from worldmodels.parallel import barrier, is_primary
from worldmodels.io import PARTIAL_SUFFIX, deferred_interrupts, fault_point

_ITEM = "default"


def _savable(leaf: Any) -> Any:
  return leaf if isinstance(leaf, jax.Array) else np.asarray(leaf)


def _target(leaf: Any) -> Any:
  """What orbax restores a leaf into: device arrays onto their sharding, others as numpy."""
  if isinstance(leaf, jax.Array):
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  return np.asarray(leaf)


class CheckpointError(RuntimeError):
  """No checkpoint of a workdir can be read; the message names the directory and why."""


class Checkpointer:
  """Saves and restores one pytree per step under ``<workdir>/<subdirectory>``."""

  def __init__(self, workdir: str, max_to_keep: int | None = 2,
               subdirectory: str = "checkpoints"):
    self.directory = os.path.join(os.path.abspath(workdir), subdirectory)
    self.max_to_keep = max_to_keep
    self._orbax = ocp.StandardCheckpointer()

  def all_steps(self) -> list[int]:
    """Steps of every complete checkpoint on disk, ascending."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(int(name) for name in os.listdir(self.directory) if name.isdigit())

  def latest_step(self) -> Optional[int]:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def _path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(self, step: int, tree: Any) -> None:
    """Saves ``tree`` as checkpoint ``step`` (replacing one of that step), then prunes."""
    final, partial = self._path(step), self._path(step) + PARTIAL_SUFFIX
    with deferred_interrupts():  # Ctrl-C lands after the save, not inside orbax's threads
      if is_primary():
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
      barrier(f"checkpoint {step}: directory made")
      self._orbax.save(os.path.join(partial, _ITEM), jax.tree_util.tree_map(_savable, tree))
      self._orbax.wait_until_finished()
      barrier(f"checkpoint {step}: written")
      fault_point("checkpoint.written")  # data on disk, not yet committed
      if is_primary():
        if os.path.exists(final):
          shutil.rmtree(final)
        os.replace(partial, final)
        if self.max_to_keep is not None:
          for old in self.all_steps()[:-self.max_to_keep]:
            shutil.rmtree(self._path(old), ignore_errors=True)
      barrier(f"checkpoint {step}: committed")

  def restore(self, step: int, like: Any) -> Any:
    """Restores ``step`` into the structure, dtypes and shardings of ``like`` (its device
    arrays come back as device arrays on their shardings, other leaves as numpy)."""
    like = jax.tree_util.tree_map(_target, like)
    return self._orbax.restore(os.path.join(self._path(step), _ITEM), like)

  def restore_latest(self, like: Any) -> Tuple[Optional[int], Any]:
    """``(step, tree)`` of the newest readable checkpoint, or ``(None, like)`` without any.

    An unreadable newest checkpoint is reported and the previous kept one is used.

    Raises:
      CheckpointError: checkpoints exist but none can be read.
    """
    steps = self.all_steps()
    problems = []
    for step in reversed(steps):
      try:
        tree = self.restore(step, like)
      except Exception as error:  # orbax / tensorstore raise many types for damaged files
        problems.append(f"step {step}: {type(error).__name__}: {str(error)[:200]}")
        print(f"warning: checkpoint {self._path(step)} cannot be read ({problems[-1]}); "
              "falling back to the previous one.", flush=True)
        continue
      return step, tree
    if steps:
      raise CheckpointError(f"{self.directory}: no checkpoint can be read ({'; '.join(problems)}"
                            "); move the directory away to start the run afresh.")
    return None, like

  def close(self) -> None:
    self._orbax.close()
