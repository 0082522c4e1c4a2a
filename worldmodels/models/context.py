"""Context encoders over past transitions ``(o, a, r)``: MrCoM's transformer and CaDM's MLP.

A *context* is the last ``L`` transitions of the current scenario, kept first in, first out
(:class:`ContextBuffer`): slot ``L - 1`` holds the newest transition and ``mask [B, L]`` marks
the filled slots, so a context shorter than ``L`` is padded on the left and masked. Pushing a
transition is a roll and a write, so the update runs inside a jitted rollout, and a buffer built
by pushes equals the one :meth:`ContextBuffer.from_sequence` builds from the same transitions.

* :class:`TransitionTokenizer`: per-embodiment 3-layer ReLU MLPs (MrCoM's "unified mapping")
  from ``concat(o, a, r)`` to a shared token width ``W``; embodiments differ in observation and
  action sizes, and a batch is tokenised per embodiment (a group of rows of one embodiment), so
  no padding of feature widths is needed and everything after the tokenizer is shared.
* :class:`ContextTransformer`: learned slot embeddings, pre-LayerNorm blocks of multi-head
  self-attention and an MLP, causal or bidirectional, with the padding mask on the keys; the
  context vector is the masked mean over the filled slots (``pooling="mean"``) or the newest
  slot's output (``"last"``). Heads need not divide the width (MrCoM: 3 heads, width 128): each
  head has ``ceil(W / heads)`` features and the output projection maps back to ``W``.
* :class:`MLPContextEncoder`: CaDM's encoder, an MLP over the flattened past ``K`` transitions
  (masked slots zeroed), to a context vector ``[B, C]``.

Shapes: ``B`` batch, ``L`` context length, ``O`` / ``A`` observation / action sizes of one
embodiment, ``W`` token width, ``C`` context size.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from worldmodels.rl.networks import MLP


@flax.struct.dataclass
class ContextBuffer:
  """The last ``L`` transitions, newest in slot ``L - 1``.

  Attributes:
    observation: ``[B, L, O]``.
    action: ``[B, L, A]``.
    reward: ``[B, L]``.
    mask: ``[B, L]`` bool, True where a slot holds a transition.
  """

  observation: jax.Array
  action: jax.Array
  reward: jax.Array
  mask: jax.Array

  @classmethod
  def empty(cls, batch: int, length: int, observation_dim: int,
            action_dim: int) -> "ContextBuffer":
    """A buffer with no transitions (every slot masked)."""
    return cls(jnp.zeros((batch, length, observation_dim)), jnp.zeros((batch, length, action_dim)),
               jnp.zeros((batch, length)), jnp.zeros((batch, length), bool))

  @property
  def length(self) -> int:
    return self.mask.shape[1]

  def push(self, observation: jax.Array, action: jax.Array, reward: jax.Array,
           valid: Optional[jax.Array] = None) -> "ContextBuffer":
    """The buffer with one transition per row appended (the oldest dropped when full).

    Args:
      observation: ``[B, O]``; action: ``[B, A]``; reward: ``[B]``.
      valid: ``[B]`` bool; rows where it is False are left unchanged (default: all True).
    """
    chex.assert_shape(observation, (self.mask.shape[0], self.observation.shape[2]))
    chex.assert_shape(action, (self.mask.shape[0], self.action.shape[2]))
    chex.assert_shape(reward, (self.mask.shape[0],))
    push = lambda old, new: jnp.concatenate([old[:, 1:], new[:, None].astype(old.dtype)], axis=1)
    pushed = ContextBuffer(push(self.observation, observation), push(self.action, action),
                           push(self.reward, reward),
                           push(self.mask, jnp.ones(reward.shape, bool)))
    if valid is None:
      return pushed
    keep = lambda new, old: jnp.where(valid.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return jax.tree_util.tree_map(keep, pushed, self)

  @classmethod
  def from_sequence(cls, observation: jax.Array, action: jax.Array, reward: jax.Array,
                    length: int) -> "ContextBuffer":
    """The buffer after pushing a sequence's ``T`` transitions in order: its last ``length``,
    right-aligned, the slots before them masked when ``T < length``.

    Args:
      observation: ``[B, T, O]``; action: ``[B, T, A]``; reward: ``[B, T]``.
      length: ``L``.
    """
    chex.assert_rank([observation, action, reward], [3, 3, 2])
    steps = reward.shape[1]
    take = min(steps, length)
    pad = length - take

    def fit(x):
      x = x[:, steps - take:]
      widths = [(0, 0), (pad, 0)] + [(0, 0)] * (x.ndim - 2)
      return jnp.pad(x, widths)

    mask = jnp.concatenate([jnp.zeros((reward.shape[0], pad), bool),
                            jnp.ones((reward.shape[0], take), bool)], axis=1)
    return cls(fit(observation), fit(action), fit(reward), mask)


class TransitionTokenizer(nn.Module):
  """Per-embodiment MLPs from transitions to tokens of a shared width.

  Attributes:
    embodiments: name -> ``(observation_dim, action_dim)``.
    width: token width ``W`` (MrCoM: 128).
    hidden_layers: hidden layers of each MLP (MrCoM: 3-layer MLPs, i.e. 2 hidden + output).
  """

  embodiments: Dict[str, Tuple[int, int]]
  width: int = 128
  hidden_layers: int = 2

  def setup(self):
    self.mlps = {name: MLP((self.width,) * self.hidden_layers, self.width, name=f"tokenizer_{name}")
                 for name in sorted(self.embodiments)}

  def __call__(self, embodiment: str, observation: jax.Array, action: jax.Array,
               reward: jax.Array) -> jax.Array:
    """Tokens ``[B, L, W]`` of transitions of one embodiment.

    Args:
      embodiment: a key of ``embodiments`` (static).
      observation: ``[B, L, O]``; action: ``[B, L, A]``; reward: ``[B, L]``.

    Raises:
      KeyError: an unknown embodiment (the message lists the known ones).
    """
    if embodiment not in self.embodiments:
      raise KeyError(f"unknown embodiment {embodiment!r}; the tokenizer knows "
                     f"{sorted(self.embodiments)}.")
    obs_dim, action_dim = self.embodiments[embodiment]
    chex.assert_shape(observation, (None, None, obs_dim))
    chex.assert_shape(action, observation.shape[:2] + (action_dim,))
    chex.assert_shape(reward, observation.shape[:2])
    inputs = jnp.concatenate([observation, action, reward[..., None]], axis=-1)
    return self.mlps[embodiment](inputs)

  def tokenize_buffer(self, embodiment: str, buffer: ContextBuffer) -> jax.Array:
    """:meth:`__call__` on a buffer's transitions: ``[B, L, W]``."""
    return self(embodiment, buffer.observation, buffer.action, buffer.reward)

  def init_all(self, batch: int = 1, length: int = 1) -> Dict[str, jax.Array]:
    """Calls every embodiment's MLP once (``init`` with ``method=init_all`` creates them all)."""
    return {name: self(name, jnp.zeros((batch, length, o)), jnp.zeros((batch, length, a)),
                       jnp.zeros((batch, length)))
            for name, (o, a) in sorted(self.embodiments.items())}


class ContextTransformer(nn.Module):
  """A transformer over ``L`` context tokens with a padding mask.

  Attributes:
    max_length: ``L`` (the slot embeddings).
    width: ``W``.
    layers: transformer blocks (MrCoM: 1).
    heads: attention heads (MrCoM: 3).
    causal: each slot attends only to itself and older slots.
    pooling: "mean" (masked mean over filled slots) or "last" (the newest slot).
    mlp_ratio: the blocks' MLP width / ``W``.
  """

  max_length: int
  width: int = 128
  layers: int = 1
  heads: int = 3
  causal: bool = False
  pooling: str = "mean"
  mlp_ratio: int = 2

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Encodes a context.

    Args:
      tokens: ``[B, L, W]`` (``L <= max_length``).
      mask: ``[B, L]`` bool, True on filled slots.

    Returns:
      ``(outputs [B, L, W], context [B, W])``; outputs on masked slots are zero, and a row with
      no filled slot has a zero context.
    """
    batch, length, width = tokens.shape
    if length > self.max_length or width != self.width:
      raise ValueError(f"tokens {tokens.shape}: expected [B, L <= {self.max_length}, "
                       f"{self.width}].")
    chex.assert_shape(mask, (batch, length))
    if self.pooling not in ("mean", "last"):
      raise ValueError(f"pooling {self.pooling!r}: choose 'mean' or 'last'.")
    slots = self.param("slot_embedding", nn.initializers.normal(0.02),
                       (self.max_length, self.width))
    x = tokens + slots[self.max_length - length:]  # right-aligned: the newest is the last slot
    attend = mask[:, None, :, None] & mask[:, None, None, :]  # [B, 1, query, key]
    if self.causal:
      attend = attend & jnp.tril(jnp.ones((length, length), bool))[None, None]
    head_dim = math.ceil(self.width / self.heads)
    for _ in range(self.layers):
      y = nn.LayerNorm()(x)
      y = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=head_dim * self.heads,
                                          out_features=self.width)(y, y, mask=attend)
      x = x + y
      y = nn.LayerNorm()(x)
      y = nn.Dense(self.width)(nn.relu(nn.Dense(self.width * self.mlp_ratio)(y)))
      x = x + y
    x = nn.LayerNorm()(x)
    weights = mask.astype(x.dtype)
    outputs = x * weights[..., None]
    if self.pooling == "mean":
      context = outputs.sum(axis=1) / jnp.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    else:
      context = outputs[:, -1]
    return outputs, context


class MLPContextEncoder(nn.Module):
  """CaDM's context encoder: an MLP over the flattened past ``K`` transitions.

  Attributes:
    hidden_sizes: hidden layers (CaDM: 200, 200).
    context_size: ``C`` (CaDM: 10).
  """

  hidden_sizes: Sequence[int] = (200, 200)
  context_size: int = 10

  @nn.compact
  def __call__(self, transitions: jax.Array, mask: jax.Array) -> jax.Array:
    """Context vectors ``[B, C]``.

    Args:
      transitions: ``[B, K, D]`` features of the past ``K`` transitions (CaDM: ``s, a, s' - s``).
      mask: ``[B, K]`` bool, True on filled slots (empty slots are zeroed before the MLP).
    """
    chex.assert_rank(transitions, 3)
    chex.assert_shape(mask, transitions.shape[:2])
    x = transitions * mask[..., None].astype(transitions.dtype)
    return MLP(tuple(self.hidden_sizes), self.context_size)(x.reshape(x.shape[0], -1))
