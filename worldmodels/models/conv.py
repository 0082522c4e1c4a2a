"""Convolutions for pixel models, with two interchangeable implementations.

``lax``: XLA's own convolution (``lax.conv_general_dilated``). ``im2col``: the ``k * k`` strided
slices of the input concatenated on the channel axis, then one matmul. Both read the same
``[k, k, C_in, C_out]`` (HWIO) kernel and give the same numbers (a test checks); which is faster
depends on the backend (``python -m benchmarks.perf rssm`` measures both): on XLA:CPU the
convolution's backward pass costs 20-30x its forward and a convolution inside ``lax.scan`` runs
much slower than outside, while slices and matmuls do not have these costs.

Shapes: images ``[N, H, W, C]`` (leading axes beyond ``N`` are flattened by the caller).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("im2col", "lax")


def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding: int, impl: str) -> jax.Array:
  """``x [N, H, W, C] * kernel [k, k, C, O]`` with ``stride`` and ``padding`` zeros per side.

  Returns:
    ``[N, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1, O]``.
  """
  k = kernel.shape[0]
  if impl == "lax":
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if impl != "im2col":
    raise ValueError(f"unknown convolution implementation {impl!r}; choose one of "
                     f"{IMPLEMENTATIONS}")
  if padding:
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  n, h, w, c = x.shape
  out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
  patches = [x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
             for i in range(k) for j in range(k)]
  columns = jnp.concatenate(patches, axis=-1)  # [N, Ho, Wo, k * k * C], (i, j, c) order
  return columns @ kernel.reshape(k * k * c, -1)


def depth_to_space(x: jax.Array, factor: int) -> jax.Array:
  """``[N, H, W, f * f * C] -> [N, f * H, f * W, C]`` (pixel shuffle)."""
  n, h, w, channels = x.shape
  c = channels // (factor * factor)
  x = x.reshape(n, h, w, factor, factor, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * factor, w * factor, c)


class Conv(nn.Module):
  """A convolution layer (kernel ``[k, k, C, features]`` + bias) of either implementation."""

  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  impl: str = "im2col"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv2d(x, kernel, self.stride, self.padding, self.impl) + bias


class ConvEncoder(nn.Module):
  """DreamerV2's image encoder: ``len(depths)`` convolutions of kernel 4, stride 2, no padding,
  ELU; ``[N, S, S, C] float -> [N, E]`` (64 px, depths 48 x (1, 2, 4, 8): E = 2 * 2 * 384)."""

  depths: Sequence[int]
  impl: str = "im2col"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for depth in self.depths:
      x = nn.elu(Conv(depth, 4, 2, 0, self.impl)(x))
    return x.reshape(x.shape[0], -1)


class ConvDecoder(nn.Module):
  """Image decoder: a dense layer to ``[S / 2^L, S / 2^L, depths[0]]``, then per depth a 2x
  upsampling (a 3 x 3 convolution to 4x the channels and a depth-to-space shuffle: a sub-pixel
  convolution, which contains the stride-2 transposed convolution of DreamerV2 as a special
  case), ELU between layers; the last layer outputs ``channels``. ``[N, F] -> [N, S, S, C]``."""

  image_size: int
  channels: int
  depths: Sequence[int]
  impl: str = "im2col"

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    layers = len(self.depths)
    start = self.image_size // 2 ** layers
    x = nn.Dense(start * start * self.depths[0])(features)
    x = x.reshape(features.shape[0], start, start, self.depths[0])
    outputs = tuple(self.depths[1:]) + (self.channels,)
    for i, width in enumerate(outputs):
      x = depth_to_space(Conv(4 * width, 3, 1, 1, self.impl)(x), 2)
      if i < layers - 1:
        x = nn.elu(x)
    return x
