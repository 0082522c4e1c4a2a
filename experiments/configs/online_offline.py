"""Sizes of ``experiments.online_offline`` (online SAC -> replay dataset -> TD3+BC and BC):
``cpu`` (the committed run) and ``tiny`` (seconds, for tests: the ``tiny`` stage presets).
Each field is also a flag of the program, which overrides the preset's value; ``--tiny``
picks the ``tiny`` preset."""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

PRESETS = ("cpu", "tiny")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.stage_preset = "demo"  # launcher preset of every stage
  c.sac_steps = 40_000  # online SAC environment steps
  c.sac_eval_every = 5_000
  c.td3bc_steps = 20_000
  c.bc_steps = 10_000
  c.eval_episodes = 10
  c.episode_length = config_dict.FieldReference(None, field_type=int)  # None: the suite's 500
  if preset == "cpu":
    return c
  if preset == "tiny":
    c.stage_preset = "tiny"
    c.sac_steps, c.sac_eval_every, c.td3bc_steps, c.bc_steps = 200, 100, 100, 100
    c.eval_episodes = 1
    c.episode_length = 50
    return c
  raise ValueError(f"unknown online_offline preset {preset!r}; choose one of {PRESETS}")
