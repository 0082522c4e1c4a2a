"""Generation presets for the V-D4RL datasets (paper section 4.1, appendix A), and for
D4RL-style datasets of the gymnasium MuJoCo tasks.

``get_config("<task>[/<scale>]")``: ``task`` one of ``TASK_PRESETS`` (walker-walk, cheetah-run,
humanoid-walk, hopper-hop) or of ``D4RL_TASKS`` (halfcheetah, walker2d, hopper, ant; see
"D4RL-style presets" below); ``scale`` one of

* ``full`` (default): the paper's procedure. SAC on proprioceptive states until convergence
  (the step budgets below), a snapshot every 10,000 frames, 100,000 transitions per dataset
  (cheetah mixed 200,000, humanoid mixed 600,000). Humanoid needs an accelerator or days.
* ``cpu``: what a 2-core CPU runs in about 15 minutes per task: 100,000 SAC steps (200,000
  frames) and the same dataset sizes. The "expert" is then the policy at the end of that
  budget, not a converged one. Hopper-hop gets 400,000 steps (about 30 minutes): at 100,000
  its SAC had only begun to hop (a return of 24).
* ``tiny``: seconds; a few hundred SAC steps, 20-step episodes, tiny networks (tests).

D4RL-style presets (``halfcheetah``, ``walker2d``, ``hopper``, ``ant``; the gymnasium v5 tasks
of ``benchmarks.envs.gym_mujoco``, which ``config.task`` names) run the same generator with
D4RL's conventions: action repeat 1 (the task's own frame skip), 1000-step episodes that end
early on unhealthy states (Hopper, Walker2d, Ant), and D4RL's medium: the first snapshot whose
evaluated return reaches a third of the expert's (``behaviour.medium_fraction_of_expert``)
instead of V-D4RL's fixed threshold. ``mixed`` is the whole replay up to that snapshot (D4RL's
medium-replay), ``medexp`` the medium then the expert episodes. Scales: ``full`` (1,000,000 SAC
steps, 1,000,000 transitions per dataset, as D4RL's), ``cpu`` (300,000 SAC steps, 200,000
transitions, 5 evaluation episodes per snapshot), ``tiny`` (tests).

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

D4RL_TASKS = {"halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5", "hopper": "Hopper-v5",
              "ant": "Ant-v5"}
"""D4RL's environment names -> the gymnasium v5 task each preset runs (``config.task``)."""
D4RL_SUITE_NAMES = {task: name for name, task in D4RL_TASKS.items()}
"""The gymnasium task -> its D4RL name (the catalog's ``d4rl/<name>/<kind>``)."""

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
  if scale not in SCALES:
    raise ValueError(f"unknown scale {scale!r} in preset {preset!r}; choose one of {SCALES}.")
  if task in D4RL_TASKS or task in D4RL_SUITE_NAMES:
    return _d4rl_config(D4RL_TASKS.get(task, task), scale)
  if task not in TASK_PRESETS:
    raise ValueError(f"unknown dataset task preset {task!r}; choose one of "
                     f"{TASK_PRESETS + tuple(D4RL_TASKS)} (optionally '/full', '/cpu' or "
                     "'/tiny').")

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
    _shrink_to_tiny(c, medium_threshold=-1.0)  # any snapshot (returns are >= 0)
  c.sac.num_steps = c.behaviour.get_ref("num_steps")
  return c


def _shrink_to_tiny(c: ml_collections.ConfigDict, medium_threshold: float) -> None:
  """The ``tiny`` scale of either family: a 200-step SAC of tiny networks, 20-step episodes, a
  snapshot every 40 agent steps, 60-transition datasets."""
  c.sac = sac_config.tiny_config()
  c.sac.random_steps = 40
  c.sac.learning_starts = 40
  c.episode_length = 20
  c.behaviour.num_steps = 200
  c.behaviour.snapshot_every_frames = 40 * c.action_repeat
  c.behaviour.selection_episodes = 2
  c.behaviour.medium_threshold = medium_threshold
  c.behaviour.steps_per_chunk = 20
  c.episodes_per_shard = 2
  for kind in ("random", "mixed", "medium", "expert"):
    c.sizes[kind] = 60


def is_d4rl_task(task: str) -> bool:
  """Whether ``task`` (a config's ``task``) is one of the gymnasium tasks of ``D4RL_TASKS``."""
  return task in D4RL_SUITE_NAMES


def preset_name(task: str) -> str:
  """The preset name of a config's ``task``: ``walker-walk``, or ``halfcheetah`` for
  ``HalfCheetah-v5``."""
  return D4RL_SUITE_NAMES.get(task, task)


def _d4rl_config(task: str, scale: str) -> ml_collections.ConfigDict:
  """The D4RL-style generation config of gymnasium task ``task`` (module docstring).

  Fields are those of the V-D4RL presets, and ``behaviour.medium_fraction_of_expert`` (1/3):
  while ``behaviour.medium_threshold`` is None (``full``, ``cpu``), medium is the first snapshot
  whose evaluated return reaches that fraction of the expert's (the last snapshot's).
  """
  c = ml_collections.ConfigDict()
  c.task = task
  c.seed = 0
  c.action_repeat = 1
  c.episode_length = 1000
  c.stochastic_actions = True
  c.episodes_per_shard = 16

  c.sac = sac_config.default_config()
  c.behaviour = ml_collections.ConfigDict()
  c.behaviour.num_steps = 1_000_000
  c.behaviour.snapshot_every_frames = 10_000
  c.behaviour.selection_episodes = 10
  c.behaviour.medium_threshold = config_dict.placeholder(float)
  c.behaviour.medium_fraction_of_expert = 1.0 / 3.0
  c.behaviour.steps_per_chunk = 1000

  c.sizes = ml_collections.ConfigDict()
  for kind in ("random", "medium", "expert"):
    c.sizes[kind] = 1_000_000
  if scale == "cpu":
    c.behaviour.num_steps = 300_000
    c.behaviour.selection_episodes = 5
    for kind in ("random", "medium", "expert"):
      c.sizes[kind] = 200_000
  elif scale == "tiny":
    # Any snapshot: a 200-step SAC's returns may be negative, where a fraction of the expert's
    # means nothing (the fraction rule is tested on planted evaluations).
    _shrink_to_tiny(c, medium_threshold=-1e9)
  # medium-replay: every episode of the replay up to the medium snapshot (the replay holds
  # at most num_steps transitions).
  c.sizes.mixed = c.behaviour.get_ref("num_steps")
  c.sac.num_steps = c.behaviour.get_ref("num_steps")
  return c
