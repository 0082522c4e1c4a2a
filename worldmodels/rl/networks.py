"""Shared RL networks: MLPs, tanh-squashed Gaussian and deterministic actors, twin critics.

Every agent builds its networks from these; agents add nothing but their own wiring.
Shapes: observations ``[B, D]``, actions ``[B, A]``; critics return ``[C, B]`` (C critics).
"""

from __future__ import annotations

from typing import Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS = {"relu": nn.relu, "swish": nn.swish, "elu": nn.elu, "tanh": jnp.tanh,
               "gelu": nn.gelu}


def get_activation(name: str) -> Activation:
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
  return ACTIVATIONS[name]


class MLP(nn.Module):
  """Plain MLP: ``hidden_sizes`` layers with ``activation``, then a linear output layer.

  ``layer_norm`` adds LayerNorm after each hidden layer's dense (before the activation).
  """

  hidden_sizes: Sequence[int]
  output_size: int
  activation: str = "relu"
  layer_norm: bool = False
  output_kernel_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = get_activation(self.activation)
    for width in self.hidden_sizes:
      x = nn.Dense(width)(x)
      if self.layer_norm:
        x = nn.LayerNorm()(x)
      x = act(x)
    init = nn.initializers.variance_scaling(self.output_kernel_scale, "fan_avg", "uniform")
    return nn.Dense(self.output_size, kernel_init=init)(x)


class TanhGaussianActor(nn.Module):
  """SAC actor: a Gaussian in pre-tanh space, squashed by tanh into ``[-1, 1]^A``.

  Returns a distrax distribution over ``[B, A]`` actions; log-std is clipped to
  ``[log_std_min, log_std_max]``.
  """

  hidden_sizes: Sequence[int]
  action_dim: int
  activation: str = "relu"
  log_std_min: float = -5.0
  log_std_max: float = 2.0

  @nn.compact
  def __call__(self, obs: jax.Array) -> distrax.Distribution:
    out = MLP(self.hidden_sizes, 2 * self.action_dim, self.activation)(obs)
    mean, log_std = jnp.split(out, 2, axis=-1)
    log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
    base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
    return distrax.Transformed(base, distrax.Block(distrax.Tanh(), ndims=1))


def squashed_mode(dist: distrax.Distribution) -> jax.Array:
  """The deterministic action of a tanh-Gaussian actor: ``tanh(mean)``."""
  return jnp.tanh(dist.distribution.mean())


class DeterministicActor(nn.Module):
  """TD3 / BC actor: ``tanh(MLP(obs))`` in ``[-1, 1]^A``."""

  hidden_sizes: Sequence[int]
  action_dim: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    return jnp.tanh(MLP(self.hidden_sizes, self.action_dim, self.activation)(obs))


class Critics(nn.Module):
  """``num_critics`` independent Q-networks ``Q(s, a)``, vmapped over a leading axis.

  Returns ``[num_critics, B]``.
  """

  hidden_sizes: Sequence[int]
  num_critics: int = 2
  activation: str = "relu"
  layer_norm: bool = False

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
    ensemble = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                       in_axes=None, out_axes=0, axis_size=self.num_critics)
    q = ensemble(self.hidden_sizes, 1, self.activation, self.layer_norm)(
        jnp.concatenate([obs, action], axis=-1))
    return q[..., 0]
