"""A leading seed axis on states: several seeds trained as one vmapped state.

``LoopConfig.seeds`` makes the loop's state ``[S, ...]`` in every leaf; these helpers build and
take apart such states.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp


def stack_seeds(trees: Sequence[Any]) -> Any:
  """Per-seed pytrees of one structure -> one pytree with a leading seed axis ``[S, ...]``."""
  return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def select_seed(tree: Any, index: int) -> Any:
  """The ``index``-th seed's pytree (the leading axis removed)."""
  return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def unstack_seeds(tree: Any) -> list:
  """A pytree with a leading seed axis -> one pytree per seed."""
  count = jax.tree_util.tree_leaves(tree)[0].shape[0]
  return [select_seed(tree, i) for i in range(count)]
