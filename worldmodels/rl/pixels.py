"""DrQ-v2's pixel parts, shared by the pixel agents (DrQ+BC, CQL, pixel BC).

Yarats et al. 2021 (DrQ-v2), as V-D4RL uses it (appendices B.2 to C.4): a convolutional encoder
on stacked 84 x 84 frames (``pixels / 255 - 0.5``), a trunk (linear, LayerNorm, tanh) in front of
the actor and of the twin critics, random-shift augmentation with 4 pixels of padding, and the
linear exploration-noise schedule of the DDPG actor.

Shapes: frames ``uint8 [B, S, S, k * 3]`` (k stacked frames on the channel axis, oldest first),
encoder features ``[B, E]``, actions ``[B, A]``; critics return ``[2, B]``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.models.conv import Conv
from worldmodels.rl.networks import MLP, Critics

SHIFT_METHODS = ("integer", "bilinear")


def preprocess(frames: jax.Array) -> jax.Array:
  """``uint8 [..., S, S, C] -> float32 pixels / 255 - 0.5``."""
  return frames.astype(jnp.float32) / 255.0 - 0.5


def random_shift(key: jax.Array, images: jax.Array, pad: int = 4,
                 method: str = "integer") -> jax.Array:
  """DrQ's random-shift augmentation: each image is padded by ``pad`` pixels (edge replicated)
  and cropped back to its size at an offset drawn uniformly from ``{0, ..., 2 * pad}`` per axis.

  Args:
    key: PRNG key (one offset pair per image).
    images: ``[B, H, W, C]`` (any dtype; ``integer`` keeps it, ``bilinear`` returns float32).
    pad: padding per side.
    method: ``integer``: a crop (a dynamic slice per image); ``bilinear``: DrQ-v2's published
      form, bilinear sampling of the padded image on a grid shifted by the offset. The offsets
      are whole pixels in both, so the two give the same images (a test checks); ``integer``
      does no arithmetic on the pixels.

  Returns:
    ``[B, H, W, C]``.
  """
  if method not in SHIFT_METHODS:
    raise ValueError(f"unknown shift method {method!r}; choose one of {SHIFT_METHODS}")
  chex.assert_rank(images, 4)
  batch, height, width, _ = images.shape
  offsets = jax.random.randint(key, (batch, 2), 0, 2 * pad + 1)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  if method == "integer":
    def crop(image, offset):
      return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0),
                                   (height, width, image.shape[-1]))
    return jax.vmap(crop)(padded, offsets)
  return jax.vmap(_bilinear_crop, in_axes=(0, 0, None, None))(
      padded.astype(jnp.float32), offsets.astype(jnp.float32), height, width)


def _bilinear_crop(image: jax.Array, offset: jax.Array, height: int, width: int) -> jax.Array:
  """Bilinear samples of ``image [H', W', C]`` at rows ``offset[0] + i`` and columns
  ``offset[1] + j`` (``i < height``, ``j < width``), coordinates in pixels (the form of
  ``grid_sample`` with ``align_corners=False``)."""
  rows = offset[0] + jnp.arange(height, dtype=jnp.float32)
  cols = offset[1] + jnp.arange(width, dtype=jnp.float32)

  def axis_weights(coords, size):
    low = jnp.clip(jnp.floor(coords), 0, size - 1)
    high = jnp.clip(low + 1, 0, size - 1)
    frac = coords - low
    return low.astype(jnp.int32), high.astype(jnp.int32), frac

  r0, r1, fr = axis_weights(rows, image.shape[0])
  c0, c1, fc = axis_weights(cols, image.shape[1])
  top = image[r0][:, c0] * (1 - fc)[None, :, None] + image[r0][:, c1] * fc[None, :, None]
  bottom = image[r1][:, c0] * (1 - fc)[None, :, None] + image[r1][:, c1] * fc[None, :, None]
  return top * (1 - fr)[:, None, None] + bottom * fr[:, None, None]


def parse_schedule(schedule: str) -> Tuple[float, float, int]:
  """``"linear(initial, final, duration)"`` -> its three numbers (DrQ-v2's notation)."""
  match = re.fullmatch(r"\s*linear\(\s*([^,]+),\s*([^,]+),\s*([^,)]+)\)\s*", schedule)
  if not match:
    raise ValueError(f"stddev schedule {schedule!r}: expected 'linear(initial, final, "
                     "duration)', e.g. 'linear(1.0, 0.1, 500000)'")
  return float(match.group(1)), float(match.group(2)), int(float(match.group(3)))


def scheduled_stddev(schedule: str, step: jax.Array) -> jax.Array:
  """The exploration stddev at update ``step``: linear from ``initial`` to ``final`` over
  ``duration`` updates, then ``final``."""
  initial, final, duration = parse_schedule(schedule)
  mix = jnp.clip(jnp.asarray(step, jnp.float32) / duration, 0.0, 1.0)
  return (1.0 - mix) * initial + mix * final


def clipped_noise(key: jax.Array, shape, stddev: jax.Array, clip: float) -> jax.Array:
  """``clip(stddev * N(0, 1), -clip, clip)``: DrQ-v2's (and TD3's) smoothing noise."""
  return jnp.clip(stddev * jax.random.normal(key, shape), -clip, clip)


def noisy_action(key: jax.Array, mean: jax.Array, stddev: jax.Array, clip: float) -> jax.Array:
  """DrQ-v2's action ``clip(mean + clipped_noise, -1, 1)`` for actor means ``[B, A]``."""
  return jnp.clip(mean + clipped_noise(key, mean.shape, stddev, clip), -1.0, 1.0)


class PixelEncoder(nn.Module):
  """DrQ-v2's encoder: ``num_layers`` 3 x 3 convolutions of ``depth`` channels (the first of
  stride 2, no padding), ReLU after each. ``uint8 [B, S, S, C] -> [B, E]`` (84 px, 4 layers,
  depth 32: E = 35 * 35 * 32 = 39,200)."""

  depth: int = 32
  num_layers: int = 4
  impl: str = "im2col"

  @nn.compact
  def __call__(self, frames: jax.Array) -> jax.Array:
    chex.assert_rank(frames, 4)
    x = preprocess(frames)
    for layer in range(self.num_layers):
      x = nn.relu(Conv(self.depth, 3, 2 if layer == 0 else 1, 0, self.impl)(x))
    return x.reshape(x.shape[0], -1)


class Trunk(nn.Module):
  """Linear to ``feature_dim``, LayerNorm, tanh: ``[B, E] -> [B, feature_dim]``."""

  feature_dim: int

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    return jnp.tanh(nn.LayerNorm()(nn.Dense(self.feature_dim)(features)))


class PixelActor(nn.Module):
  """Trunk then an MLP to ``tanh`` actions: ``[B, E] -> [B, A]`` (the deterministic part of
  DrQ-v2's actor; exploration noise is added by the losses)."""

  feature_dim: int
  hidden_sizes: Sequence[int]
  action_dim: int

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    h = Trunk(self.feature_dim)(features)
    return jnp.tanh(MLP(self.hidden_sizes, self.action_dim)(h))


class PixelCritics(nn.Module):
  """Trunk then twin Q-networks on ``(trunk(features), action)``: ``[2, B]``."""

  feature_dim: int
  hidden_sizes: Sequence[int]
  num_critics: int = 2

  @nn.compact
  def __call__(self, features: jax.Array, action: jax.Array) -> jax.Array:
    h = Trunk(self.feature_dim)(features)
    return Critics(self.hidden_sizes, self.num_critics)(h, action)


@dataclasses.dataclass(frozen=True)
class PixelNetworks:
  """The encoder, the actor and the critics; ``actor.apply(params, features)`` and
  ``critic.apply(params, features, action)`` have the signatures of the state agents' networks,
  so their losses apply to encoder features unchanged."""

  encoder: PixelEncoder
  actor: PixelActor
  critic: PixelCritics

  def act(self, encoder_params, actor_params, frames: jax.Array) -> jax.Array:
    """The actor's mean actions ``[B, A]`` on frames ``uint8 [B, S, S, k * 3]``."""
    return self.actor.apply(actor_params, self.encoder.apply(encoder_params, frames))


def make_pixel_networks(config: ml_collections.ConfigDict, action_dim: int) -> PixelNetworks:
  """From a pixel agent config (``encoder_depth``, ``encoder_layers``, ``conv_impl``,
  ``feature_dim``, ``hidden_sizes``)."""
  return PixelNetworks(
      encoder=PixelEncoder(config.encoder_depth, config.encoder_layers, config.conv_impl),
      actor=PixelActor(config.feature_dim, tuple(config.hidden_sizes), action_dim),
      critic=PixelCritics(config.feature_dim, tuple(config.hidden_sizes)))


def pixel_config() -> ml_collections.ConfigDict:
  """The settings every pixel agent shares (V-D4RL table 9, DrQ-v2's defaults)."""
  c = ml_collections.ConfigDict()
  c.observation_key = "pixels"
  c.encoder_depth = 32
  c.encoder_layers = 4
  c.conv_impl = "im2col"  # `python -m benchmarks.perf drqbc` measures both
  c.feature_dim = 50
  c.hidden_sizes = (1024, 1024)
  c.shift_pad = 4
  c.shift_method = "integer"
  c.lr = 1e-4
  c.discount = 0.99
  c.n_step = 3
  c.tau = 0.01
  c.stddev_schedule = "linear(1.0, 0.1, 500000)"
  c.stddev_clip = 0.3
  c.batch_size = 256
  # 256 offline epochs (V-D4RL table 9) of a 100k-step dataset, an epoch being one pass over
  # its steps at batch 256 (390.6 updates).
  c.num_steps = 100_000
  return c


def tiny_pixel_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks every size of a pixel config (tests: 16 px frames, seconds to compile)."""
  c.encoder_depth, c.encoder_layers = 4, 2
  c.feature_dim = 8
  c.hidden_sizes = (16, 16)
  c.shift_pad = 2
  c.batch_size = 8
  c.num_steps = 20
  return c
