"""Pixel BC networks: DrQ-v2's encoder and actor (``worldmodels.rl.pixels``; the critics are
built but never used)."""

from worldmodels.rl.pixels import PixelNetworks, make_pixel_networks

make_networks = make_pixel_networks

__all__ = ["PixelNetworks", "make_networks"]
