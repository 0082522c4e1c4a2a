"""Pixel BC hyperparameters (V-D4RL appendix C.3): DrQ+BC's encoder, actor and settings, an MSE
loss, and the encoder trained by it."""

import ml_collections

from worldmodels.rl import pixels


def default_config() -> ml_collections.ConfigDict:
  return pixels.pixel_config()


def tiny_config() -> ml_collections.ConfigDict:
  return pixels.tiny_pixel_config(default_config())
