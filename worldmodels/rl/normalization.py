"""Input standardisation with statistics fixed from the offline data (TD3+BC, BC, models)."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.data.spec import DataSpec


@flax.struct.dataclass
class Normalizer:
  """``(x - mean) / std`` over the last axis; ``mean`` and ``std`` are ``[D]``."""

  mean: jax.Array
  std: jax.Array

  def __call__(self, x: jax.Array) -> jax.Array:
    return (x - self.mean) / self.std

  @classmethod
  def identity(cls, dim: int) -> "Normalizer":
    return cls(jnp.zeros((dim,), jnp.float32), jnp.ones((dim,), jnp.float32))

  @classmethod
  def from_spec(cls, spec: DataSpec, key: str, enabled: bool = True,
                eps: float = 1e-3) -> "Normalizer":
    """The data statistics of ``spec`` for observation ``key``, or identity when disabled or
    absent (an online agent has no dataset statistics)."""
    dim = int(np.prod(spec.observation_shapes[key]))
    if not enabled or spec.observation_mean is None:
      return cls.identity(dim)
    mean = np.asarray(spec.observation_mean[key], np.float32)
    std = np.asarray(spec.observation_std[key], np.float32) + eps
    return cls(jnp.asarray(mean), jnp.asarray(std))
