"""A deliberately minimal probabilistic-ensemble training step in plain JAX, the reference the
ensemble benchmark times ours against.

Stacked member weights ``[E, in, out]`` applied with one ``einsum`` per layer, swish, a Gaussian
NLL on soft-bounded log-variances, per-layer weight decay, optax Adam: the smallest faithful MBPO/MOPO model step, with
no library abstractions, so ``ours / reference`` in one process measures what our structure costs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


WEIGHT_DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)  # MBPO's, growing with depth


def init(key, members: int, in_dim: int, out_dim: int, hidden=(200, 200, 200, 200)):
  sizes = (in_dim,) + tuple(hidden) + (2 * out_dim,)
  layers = []
  for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    layers.append((jax.random.normal(sub, (members, fan_in, fan_out)) / jnp.sqrt(fan_in),
                   jnp.zeros((members, 1, fan_out))))
  return {"layers": layers, "max_logvar": jnp.full((out_dim,), 0.5),
          "min_logvar": jnp.full((out_dim,), -10.0)}


def loss(params, x, y):
  """x ``[E, B, in]``, y ``[E, B, out]``."""
  h = x
  for w, b in params["layers"][:-1]:
    h = jax.nn.swish(jnp.einsum("ebi,eio->ebo", h, w) + b)
  w, b = params["layers"][-1]
  mean, raw = jnp.split(jnp.einsum("ebi,eio->ebo", h, w) + b, 2, axis=-1)
  logvar = params["max_logvar"] - jax.nn.softplus(params["max_logvar"] - raw)
  logvar = params["min_logvar"] + jax.nn.softplus(logvar - params["min_logvar"])
  nll = ((mean - y) ** 2 * jnp.exp(-logvar) + logvar).mean(axis=(1, 2)).sum()
  decay = sum(wd * 0.5 * jnp.sum(w ** 2) for wd, (w, _) in zip(WEIGHT_DECAYS, params["layers"]))
  return nll + 0.01 * (params["max_logvar"].sum() - params["min_logvar"].sum()) + decay


OPTIMIZER = optax.adam(1e-3)
