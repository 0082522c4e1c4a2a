"""DrQ+BC hyperparameters (V-D4RL appendix C.2, table 9): DrQ-v2's pixel settings and the
TD3+BC weight alpha 2.5."""

import ml_collections

from worldmodels.rl import pixels


def default_config() -> ml_collections.ConfigDict:
  c = pixels.pixel_config()
  c.alpha = 2.5
  return c


def tiny_config() -> ml_collections.ConfigDict:
  return pixels.tiny_pixel_config(default_config())
