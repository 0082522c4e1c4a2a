"""AugWM's networks are SAC's with inputs widened by the context ``z`` (``[s, z]``, 2|S|)."""

from worldmodels.agents.sac.networks import SACNetworks, make_networks

__all__ = ["SACNetworks", "make_networks"]
