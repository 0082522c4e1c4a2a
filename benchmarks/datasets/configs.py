"""Generation presets for the V-D4RL datasets (paper section 4.1, appendix A).

``get_config("<task>[/<scale>]")``: ``task`` one of ``TASK_PRESETS`` (walker-walk, cheetah-run,
humanoid-walk, hopper-hop); ``scale`` one of

* ``full`` (default): the paper's procedure. SAC on proprioceptive states until convergence
  (the step budgets below), a snapshot every 10,000 frames, 100,000 transitions per dataset
  (cheetah mixed 200,000, humanoid mixed 600,000). Humanoid needs an accelerator or days.
* ``cpu``: what a 2-core CPU runs in about 15 minutes per task: 100,000 SAC steps (200,000
  frames) and the same dataset sizes. The "expert" is then the policy at the end of that
  budget, not a converged one. Hopper-hop gets 400,000 steps (about 30 minutes): at 100,000
  its SAC had only begun to hop (a return of 24).
* ``tiny``: seconds; a few hundred SAC steps, 20-step episodes, tiny networks (tests).

Every field can be overridden with dotted flags (``--config.behaviour.num_steps=...``).
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from worldmodels.agents.sac import config as sac_config

DATASET_KINDS = ("random", "mixed", "medium", "expert", "medexp")
"""The five behaviour types of V-D4RL (medexp = medium + expert concatenated)."""

TASK_PRESETS = ("walker-walk", "cheetah-run", "humanoid-walk", "hopper-hop")
SCALES = ("full", "cpu", "tiny")

# SAC environment steps (action repeat 2) until the paper's "converged in the limit".
_FULL_BEHAVIOUR_STEPS = {
    "walker-walk": 500_000,    # 1M frames
    "cheetah-run": 1_000_000,  # 2M frames
    "humanoid-walk": 5_000_000,
    "hopper-hop": 1_000_000,
}
_CPU_BEHAVIOUR_STEPS = {"hopper-hop": 400_000}  # the rest: 100,000
_MIXED_SIZES = {"cheetah-run": 200_000, "humanoid-walk": 600_000}


def get_config(preset: str = "walker-walk") -> ml_collections.ConfigDict:
  """The generation config of ``preset`` (``"<task>"`` or ``"<task>/<scale>"``).

  Fields:
    task, seed, action_repeat, episode_length (agent steps; None: the suite's 500).
    sac: the SAC agent config of the behaviour policies (``worldmodels.agents.sac``).
    behaviour.num_steps: SAC environment steps; behaviour.snapshot_every_frames: a snapshot
      (and an evaluation) every this many frames (V-D4RL: 10,000; frames = steps x repeat);
      behaviour.selection_episodes: evaluation episodes per snapshot (deterministic actions);
      behaviour.medium_threshold: medium = the first snapshot whose mean return over
      ``selection_episodes`` episodes exceeds this ("consistently scores above 500");
      expert = the last snapshot (converged). behaviour.steps_per_chunk: loop chunk size.
    sizes.<kind>: transitions of each generated dataset (medexp: medium + expert).
    stochastic_actions: sample actions from the actor's Gaussian (D4RL); False: its mode.
    episodes_per_shard: episodes per array_record shard.
  """
  task, _, scale = preset.partition("/")
  scale = scale or "full"
  if task not in TASK_PRESETS:
    raise ValueError(f"unknown dataset task preset {task!r}; choose one of {TASK_PRESETS} "
                     "(optionally '/full', '/cpu' or '/tiny').")
  if scale not in SCALES:
    raise ValueError(f"unknown scale {scale!r} in preset {preset!r}; choose one of {SCALES}.")

  c = ml_collections.ConfigDict()
  c.task = task
  c.seed = 0
  c.action_repeat = 2
  c.episode_length = config_dict.placeholder(int)
  c.stochastic_actions = True
  c.episodes_per_shard = 16

  c.sac = sac_config.default_config()
  c.behaviour = ml_collections.ConfigDict()
  c.behaviour.num_steps = _FULL_BEHAVIOUR_STEPS[task]
  c.behaviour.snapshot_every_frames = 10_000
  c.behaviour.selection_episodes = 10
  c.behaviour.medium_threshold = 500.0
  c.behaviour.steps_per_chunk = 1000

  c.sizes = ml_collections.ConfigDict()
  for kind in ("random", "mixed", "medium", "expert"):
    c.sizes[kind] = 100_000
  c.sizes.mixed = _MIXED_SIZES.get(task, 100_000)

  if scale == "cpu":
    c.behaviour.num_steps = _CPU_BEHAVIOUR_STEPS.get(task, 100_000)
  elif scale == "tiny":
    c.sac = sac_config.tiny_config()
    c.sac.random_steps = 40
    c.sac.learning_starts = 40
    c.episode_length = 20
    c.behaviour.num_steps = 200
    c.behaviour.snapshot_every_frames = 80  # every 40 agent steps
    c.behaviour.selection_episodes = 2
    c.behaviour.medium_threshold = -1.0  # any snapshot (returns are >= 0)
    c.behaviour.steps_per_chunk = 20
    c.episodes_per_shard = 2
    for kind in ("random", "mixed", "medium", "expert"):
      c.sizes[kind] = 60
  c.sac.num_steps = c.behaviour.get_ref("num_steps")
  return c
