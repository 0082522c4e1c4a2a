"""The on-device ring of model transitions that MOPO-style and MBPO-style learners share.

Branched rollouts (:func:`worldmodels.models.rollouts.rollout`) are flattened into the ring,
their valid rows (before any termination) in consecutive slots; each policy batch then takes
real rows from the data and the rest uniformly from the ring (:func:`mix_with_model_rows`).

Shapes: ``C`` the ring's capacity, ``S`` / ``A`` state / action sizes, ``H x N`` a rollout.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import flax.struct
import jax
import jax.numpy as jnp

from worldmodels.data.samplers import Transition
from worldmodels.models.rollouts import Rollout


@flax.struct.dataclass
class ModelBuffer:
  """Ring of C model transitions: ``state``/``next_state`` ``[C, S]``, ``action`` ``[C, A]``,
  ``reward``/``discount`` ``[C]``; ``insert_pos`` and ``size`` are scalars."""

  state: jax.Array
  action: jax.Array
  reward: jax.Array
  discount: jax.Array
  next_state: jax.Array
  insert_pos: jax.Array
  size: jax.Array

  @property
  def capacity(self) -> int:
    return int(self.reward.shape[0])


@dataclasses.dataclass(frozen=True)
class MixSizes:
  """Rows per policy batch from the data (``num_real``) and from the ring (``num_model``), and
  the ring's ``capacity``."""

  num_real: int
  num_model: int
  capacity: int


def mix_sizes(config) -> MixSizes:
  """The sizes of a config with ``real_ratio``, ``batch_size``, ``model_retain_epochs``,
  ``rollout_batch_size`` and ``horizon`` (the ring keeps ``model_retain_epochs`` rollout
  batches).

  Raises:
    ValueError: ``real_ratio`` outside (0, 1).
  """
  if not 0.0 < config.real_ratio < 1.0:
    raise ValueError(f"real_ratio must be in (0, 1), got {config.real_ratio}")
  num_real = max(1, int(round(config.real_ratio * config.batch_size)))
  return MixSizes(num_real, config.batch_size - num_real,
                  config.model_retain_epochs * config.rollout_batch_size * config.horizon)


def empty_model_buffer(capacity: int, state_dim: int, action_dim: int) -> ModelBuffer:
  """An empty ring of ``capacity`` transitions."""
  c = capacity
  return ModelBuffer(jnp.zeros((c, state_dim)), jnp.zeros((c, action_dim)), jnp.zeros((c,)),
                     jnp.zeros((c,)), jnp.zeros((c, state_dim)), jnp.zeros((), jnp.int32),
                     jnp.zeros((), jnp.int32))


def add_rollout(buffer: ModelBuffer, rollout: Rollout) -> Tuple[ModelBuffer, Dict[str, jax.Array]]:
  """Writes the valid rows of ``rollout`` (``[H, N, ...]``) to consecutive ring slots, oldest
  overwritten first; the rows after a termination are dropped.

  Returns:
    The buffer and the rollout's means: ``model_reward`` (unpenalised), ``model_penalty`` and
    ``rollout_valid_fraction``.
  """
  capacity = buffer.capacity
  flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), rollout)
  valid = flat.valid
  offset = jnp.cumsum(valid) - 1
  slots = jnp.where(valid, (buffer.insert_pos + offset) % capacity, capacity)

  def put(dst, src):
    return dst.at[slots].set(src, mode="drop")

  count = valid.sum().astype(jnp.int32)
  new = ModelBuffer(put(buffer.state, flat.state), put(buffer.action, flat.action),
                    put(buffer.reward, flat.reward), put(buffer.discount, flat.discount),
                    put(buffer.next_state, flat.next_state),
                    (buffer.insert_pos + count) % capacity,
                    jnp.minimum(buffer.size + count, capacity))
  metrics = {"model_reward": flat.raw_reward.mean(), "model_penalty": flat.penalty.mean(),
             "rollout_valid_fraction": valid.mean()}
  return new, metrics


def mix_with_model_rows(real: Transition, buffer: ModelBuffer, num_model: int, key: jax.Array,
                        observation_key: str) -> Transition:
  """``real`` (``[R, ...]``, observations under ``observation_key``) followed by ``num_model``
  rows drawn uniformly from the ring's written slots: a ``[R + num_model, ...]`` batch."""
  ids = jax.random.randint(key, (num_model,), 0, jnp.maximum(buffer.size, 1))
  return Transition(
      observation={observation_key: jnp.concatenate([real.observation[observation_key],
                                                     buffer.state[ids]])},
      action=jnp.concatenate([real.action, buffer.action[ids]]),
      reward=jnp.concatenate([real.reward, buffer.reward[ids]]),
      discount=jnp.concatenate([real.discount, buffer.discount[ids]]),
      next_observation={observation_key: jnp.concatenate([real.next_observation[observation_key],
                                                          buffer.next_state[ids]])})
