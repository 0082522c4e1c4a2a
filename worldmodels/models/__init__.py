"""Shared world-model modules (pure functional): the world-model protocol (``base``), the
probabilistic ensemble and its training phase, artifacts, rollouts; the RSSM and the transformer
context encoder come next."""
