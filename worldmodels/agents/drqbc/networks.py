"""DrQ+BC networks: DrQ-v2's encoder, actor and twin critics (``worldmodels.rl.pixels``)."""

from worldmodels.rl.pixels import PixelNetworks, make_pixel_networks

make_networks = make_pixel_networks

__all__ = ["PixelNetworks", "make_networks"]
