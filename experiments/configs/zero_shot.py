"""Sizes of the zero-shot experiments (``experiments.demo``, ``experiments.mopo.run`` and the
``experiments.augwm`` programs): one preset per scale, in one place.

Presets:

* ``cpu``: the CPU-sized runs whose results are committed (3 seeds, MOPO 30k and AugWM 67.5k
  updates: the paper's 2.25 ratio, a 3 x 3 grid);
* ``demo``: the README's main job (1 seed, 20k updates for both agents, 5 evaluation episodes);
* ``paper``: the AugWM paper's sizes, for accelerators (table 4: 5 seeds, MOPO 400k / AugWM 900k
  updates; 50k rollout starts; the 7 x 7 HalfCheetah or 5 x 5 Walker2d grid with 5 episodes per
  cell; the ensemble trained until early stopping);
* ``tiny``: seconds, for tests: every size shrunk, the ``tiny`` presets of every stage.

Each field is also a flag of the experiment programs (``--seeds``, ``--steps`` for the MOPO
updates, ``--augwm_steps``, ...), which overrides the preset's value; ``--tiny`` and ``--paper_scale`` pick
those presets.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

PRESETS = ("cpu", "demo", "paper", "tiny")


def _optional(value, field_type) -> config_dict.FieldReference:
  """A field that may also be set to None."""
  return config_dict.FieldReference(value, field_type=field_type)


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  """The experiment sizes of ``preset`` (one of ``PRESETS``)."""
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.stage_preset = "demo"  # launcher preset of every agent stage (experiments/configs/<agent>.py)
  c.model_preset = "default"  # experiments/configs/ensemble.py preset
  c.seeds = 3
  c.seeds_per_run = _optional(None, int)  # seeds vmapped in one run; None: all of them
  c.sac_steps = 40_000  # env steps of the behaviour SAC whose replay is the default dataset
  c.model_max_epochs = _optional(100, int)  # None: until early stopping
  c.mopo_steps = 30_000  # MOPO updates per seed (the --steps flag)
  # AugWM updates per seed: augwm_steps when set, else augwm_budget_ratio x MOPO's (the paper's
  # 900k against 400k, table 4: training with context takes longer to converge).
  c.augwm_steps = _optional(None, int)
  c.augwm_budget_ratio = 2.25
  c.td3bc_steps = 20_000
  c.bc_steps = 10_000
  c.rollout_batch = _optional(10_000, int)  # None: the agent preset's (50,000)
  c.factors = _optional((0.5, 1.0, 1.5), tuple)  # mass = damping factors; None: the paper's
  c.grid_episodes = 2  # per grid cell and seed
  c.eval_episodes = 10  # unshifted, per seed
  c.episode_length = config_dict.placeholder(int)  # agent steps; None: the suite's 500
  c.table3 = True  # (h, lambda) from AugWM table 3 (--preset); False: the stage preset's
  # MOPO's penalty lambda for every model-based agent (e.g. the lambda sweep's choice); None:
  # table 3's (or the stage preset's)
  c.penalty_coef = _optional(None, float)
  if preset == "cpu":
    return c
  if preset == "demo":
    c.seeds = 1
    c.mopo_steps = 20_000
    c.augwm_budget_ratio = 1.0  # the same budget for both, to stay within about 15 minutes
    c.eval_episodes = 5
    # The lambda sweep's choice on the demo's cheetah-run SAC replay (accepted: 157 against
    # the data's 70; experiments/mopo/lambda_sweep/cheetah_run_sac_replay/RESULTS.md).
    c.penalty_coef = 0.1
    return c
  if preset == "paper":
    c.stage_preset = "default"
    c.seeds = 5
    c.model_max_epochs = None
    c.mopo_steps = 400_000  # AugWM table 4 (AugWM: 2.25 x, 900k)
    c.td3bc_steps, c.bc_steps = 1_000_000, 100_000  # the agents' defaults
    c.rollout_batch = None
    c.factors = None
    c.grid_episodes = 5
    return c
  if preset == "tiny":
    c.stage_preset = c.model_preset = "tiny"
    c.seeds = 2
    c.sac_steps = 200
    c.model_max_epochs = None  # the tiny preset's 3
    c.mopo_steps = c.td3bc_steps = c.bc_steps = 40
    c.augwm_budget_ratio = 1.0
    c.rollout_batch = None  # the tiny preset's 64
    c.grid_episodes = c.eval_episodes = 1
    c.episode_length = 50
    c.table3 = False
    return c
  raise ValueError(f"unknown zero-shot experiment preset {preset!r}; choose one of {PRESETS}")


def augwm_updates(c: ml_collections.ConfigDict) -> int:
  """AugWM's updates per seed: ``augwm_steps`` when set, else ``augwm_budget_ratio`` x
  ``mopo_steps`` (rounded)."""
  if c.augwm_steps is not None:
    return int(c.augwm_steps)
  return int(round(c.augwm_budget_ratio * c.mopo_steps))
