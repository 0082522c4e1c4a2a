"""The world-model protocol every shared model module implements.

A world model is a static definition (sizes and config, hashable, no arrays) with pure
functions over a parameter pytree::

  params = model.init(key)
  loss, metrics = model.loss(params, batch, key)         # what its training phase minimises
  out = model.step(params, state, action, key)           # one sampled step: next_state, reward,
                                                         # terminal, and what penalties need
  trajectory = model.imagine(params, policy, start, horizon, key, ...)

``kind``, ``metadata()`` and ``from_metadata(meta)`` let artifacts
(:mod:`worldmodels.models.artifacts`) store the definition beside the parameters and load any
kind back. Models are trained by a loop phase (e.g.
:class:`worldmodels.models.ensemble_learner.EnsembleLearner`), saved once, and passed read-only
to the agents that use them, as the ``frozen`` argument of their updates.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Protocol, Tuple

import jax
import ml_collections

Params = Any


class WorldModel(Protocol):
  """Structural type of the world models in ``worldmodels.models``."""

  kind: str

  def init(self, key: jax.Array) -> Params:
    ...

  def loss(self, params: Params, batch: Any,
           key: jax.Array | None = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    ...

  def step(self, params: Params, state: jax.Array, action: jax.Array,
           key: jax.Array) -> Dict[str, jax.Array]:
    ...

  def imagine(self, params: Params, policy: Callable[[jax.Array, jax.Array], jax.Array],
              start: jax.Array, horizon: int, key: jax.Array, **options: Any) -> Any:
    ...

  def metadata(self) -> Dict[str, Any]:
    ...

  @classmethod
  def from_metadata(cls, meta: Dict[str, Any]) -> "WorldModel":
    ...


def config_from_metadata(config: Dict[str, Any]) -> ml_collections.ConfigDict:
  """A model config read back from an artifact's ``model.json``: JSON turned the config's
  tuples (sizes) into lists, so lists become tuples again, at every depth."""

  def tuples(value):
    if isinstance(value, dict):
      return {k: tuples(v) for k, v in value.items()}
    return tuple(value) if isinstance(value, list) else value

  return ml_collections.ConfigDict(tuples(config))
