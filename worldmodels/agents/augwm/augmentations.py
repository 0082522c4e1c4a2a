"""Dynamics augmentations ``T_z`` of the AugWM paper (eqs. 2-4), applied per transition.

With ``z in R^|S|`` and ``delta = s' - s``:

* RAD:  ``(s, a, r, s') -> (z * s, a, r, z * s')``
* RANS: ``(s, a, r, s') -> (s, a, r, z * s')``
* DAS:  ``(s, a, r, s') -> (s, a, r, s + z * delta)``
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp

Augmentation = Callable[[jax.Array, jax.Array, jax.Array], Tuple[jax.Array, jax.Array]]


def no_augmentation(s, s2, z):
  del z
  return s, s2


def rad(s, s2, z):
  return z * s, z * s2


def rans(s, s2, z):
  return s, z * s2


def das(s, s2, z):
  return s, s + z * (s2 - s)


AUGMENTATIONS: Dict[str, Augmentation] = {"none": no_augmentation, "rad": rad, "rans": rans,
                                          "das": das}


def get_augmentation(name: str) -> Augmentation:
  if name not in AUGMENTATIONS:
    raise ValueError(f"unknown augmentation {name!r}; choose one of {sorted(AUGMENTATIONS)}")
  return AUGMENTATIONS[name]


def sample_z(key: jax.Array, shape, low: float, high: float) -> jax.Array:
  """``z ~ U[low, high]`` of ``shape`` (``[B, S]``: one fresh ``z`` per transition)."""
  return jax.random.uniform(key, shape, minval=low, maxval=high)


def with_context(state: jax.Array, z: jax.Array) -> jax.Array:
  """The policy input ``[s, z]``: ``[..., 2S]``."""
  return jnp.concatenate([state, z], axis=-1)
