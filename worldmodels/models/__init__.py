"""Shared world-model modules (pure functional): the world-model protocol (``base``), the
probabilistic ensemble and its training phase, artifacts, rollouts, the RSSM and its training
phase, and the context encoders over past transitions (``context``: MrCoM's transformer, CaDM's
MLP)."""
