"""CaDM settings (Lee et al. 2020, "Context-aware Dynamics Model for Generalization in
Model-Based RL"): a context of the past K = 10 transitions encoded by an MLP to a 10-d vector,
which conditions a probabilistic forward ensemble (``(s, a, c) -> (s' - s, r)``) and a backward
ensemble (``(s', a, c) -> s - s'``); the context encoder is trained through both prediction
losses."""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.context_length = 10  # K past transitions (s, a, s' - s)
  c.context_size = 10
  c.context_hidden = (200, 200)
  c.num_members = 5
  c.hidden_sizes = (200, 200, 200, 200)
  c.activation = "swish"
  c.init_max_logvar = 0.5
  c.init_min_logvar = -10.0
  c.logvar_bound_coef = 0.01
  c.backward_weight = 1.0  # (ours) the backward loss's weight against the forward one
  c.learning_rate = 1e-3
  c.batch_size = 128
  c.num_steps = 20_000
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  c.context_length = 3
  c.context_size = 4
  c.context_hidden = (16,)
  c.num_members = 2
  c.hidden_sizes = (16, 16)
  c.batch_size = 8
  c.num_steps = 20
  return c
