"""worldmodels: JAX/Flax offline model-based reinforcement learning.

Layers (see WORKSPACE.md), bottom up: ``worldmodels.io`` and ``errors`` (trusted files, locks,
input errors), ``worldmodels.data`` (episodic datasets, specs, data sources, samplers),
``worldmodels.provenance`` (fingerprints), ``worldmodels.training`` (the common loop, acting),
``worldmodels.rl`` (shared RL parts), ``worldmodels.models`` (world models and their training
phases), ``worldmodels.agents`` (one package per agent), ``worldmodels.cli`` (how programs
report bad input). The library never imports ``benchmarks`` or ``experiments``.
"""

__version__ = "0.1.0"
