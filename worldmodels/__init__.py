"""worldmodels: JAX/Flax offline model-based reinforcement learning.

Layers (see WORKSPACE.md): ``worldmodels.data`` (episodic datasets and samplers),
``worldmodels.training`` (the common training loop), ``worldmodels.rl`` (shared RL parts),
``worldmodels.agents`` (one package per agent). The library never imports ``benchmarks`` or
``experiments``.
"""

__version__ = "0.1.0"
