"""Sizes of the MrCoM-suite experiments (``experiments.mrcom``): one preset per scale.

Presets:

* ``cpu``: what this project's 2-core CPU runs in under an hour: CaDM (``cadm.py:cpu``) on
  ``random`` and ``mixed`` datasets of 3 in-distribution scenarios (``benchmarks.scenarios``
  at its ``cpu`` scale: 30,000-step behaviour SACs, 30,000 transitions per dataset), then 30,000
  environment steps of adaptation per target scenario and seed (MrCoM: 100,000), rollouts of
  2,000 starts every 250 steps (MrCoM's table 6: 10,000 of horizon 5), 3 seeds.
* ``paper``: MrCoM's appendix C.2 / table 6 sizes (100,000 adaptation steps, 10,000 rollouts of
  horizon 5, CaDM's 20,000 updates), on the V-D4RL generator's full-scale behaviour runs.
* ``tiny``: seconds, for tests.
"""

from __future__ import annotations

import ml_collections

from worldmodels.agents.adaptation import config as adaptation_config

PRESETS = ("cpu", "paper", "tiny")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  """The experiment sizes of ``preset`` (one of ``PRESETS``)."""
  if preset not in PRESETS:
    raise ValueError(f"unknown mrcom preset {preset!r}; choose one of {PRESETS}.")
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.data_scale = {"cpu": "cpu", "paper": "full", "tiny": "tiny"}[preset]
  c.model_preset = {"cpu": "cpu", "paper": "default", "tiny": "tiny"}[preset]
  c.train_split = "id-dynamics"
  c.train_scenarios = 3
  c.kinds = ("random", "mixed")
  c.seeds = 3
  c.eval_episodes = 10
  c.episode_length = ml_collections.config_dict.placeholder(int)  # None: the suite's 500
  c.adaptation = (adaptation_config.tiny_config() if preset == "tiny"
                  else adaptation_config.default_config())
  if preset == "cpu":
    a = c.adaptation
    a.num_steps, a.random_steps, a.learning_starts = 30_000, 1_000, 1_000
    a.rollout_batch_size = 2_000
  elif preset == "tiny":
    c.train_scenarios, c.seeds, c.eval_episodes, c.episode_length = 2, 2, 1, 20
    c.kinds = ("random",)
  return c
