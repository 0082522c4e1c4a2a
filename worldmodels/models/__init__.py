"""Shared world-model modules (pure functional): probabilistic ensembles; RSSM and the transformer context encoder come next."""
