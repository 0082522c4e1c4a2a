"""Orbax checkpoints of the loop's whole state (agent state, loop key, counters, replay)."""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores one pytree per step under ``<workdir>/<subdirectory>``.

  Saves are synchronous, so a checkpoint on disk is always complete; the newest
  ``max_to_keep`` are kept (None: all of them).
  """

  def __init__(self, workdir: str, max_to_keep: int | None = 2,
               subdirectory: str = "checkpoints"):
    self.directory = os.path.join(os.path.abspath(workdir), subdirectory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """Steps of every checkpoint on disk, ascending."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, tree: Any) -> None:
    tree = jax.tree_util.tree_map(np.asarray, tree)
    self._manager.save(step, args=ocp.args.StandardSave(tree), force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, like: Any) -> Any:
    """Restores ``step`` into the structure (and dtypes) of ``like``."""
    like = jax.tree_util.tree_map(np.asarray, like)
    return self._manager.restore(step, args=ocp.args.StandardRestore(like))

  def close(self) -> None:
    self._manager.close()
