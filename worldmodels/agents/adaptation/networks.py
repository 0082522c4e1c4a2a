"""Scenario adaptation's networks are SAC's (the policy learner) plus the frozen model artifact."""

from worldmodels.agents.sac.networks import SACNetworks, make_networks

__all__ = ["SACNetworks", "make_networks"]
