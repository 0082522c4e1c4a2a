"""Pieces shared by every launcher config: environment, dataset, loop, workdir."""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict


def base_config(agent_name: str, agent: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The launcher config around an agent config.

  Fields: ``agent_name`` (registry key), ``agent`` (the agent's hyperparameters), ``env``
  (evaluation / online environment, single frames), ``dataset`` (offline data),
  ``frame_stack`` (frames per stack of image observations: declared once, honoured by the
  samplers, the environment wrapper and evaluation), ``loop`` (LoopConfig fields), ``seed``,
  ``num_seeds`` (offline agents: that many seeds from ``seed`` on, vmapped in one run),
  ``mesh`` (devices per mesh axis), ``workdir``, ``save_replay`` (online agents: write the
  replay as a dataset there).
  """
  c = ml_collections.ConfigDict()
  c.agent_name = agent_name
  c.agent = agent
  c.seed = 0
  c.workdir = config_dict.placeholder(str)  # None -> runs/<agent>-<task>-seed<seed>
  c.save_replay = config_dict.placeholder(str)
  c.frame_stack = 1

  c.env = ml_collections.ConfigDict()
  # None: the dataset's task (offline agents); online agents name theirs (sac: walker-walk).
  c.env.task = config_dict.placeholder(str)
  c.env.obs_type = "state"
  c.env.action_repeat = config_dict.placeholder(int)  # None: the dataset's, else 2
  c.env.image_size = 64
  c.env.episode_length = config_dict.placeholder(int)  # agent steps; None: the suite's 500

  c.dataset = ml_collections.ConfigDict()
  c.dataset.path = config_dict.placeholder(str)  # a directory or a catalog name (vd4rl/...)
  c.dataset.root = config_dict.placeholder(str)  # catalog root (None: $WORLDMODELS_DATA)
  c.dataset.observation_keys = ("state",)

  c.num_seeds = 1  # > 1: seeds seed .. seed + num_seeds - 1 as one vmapped state (offline)
  c.mesh = mesh_config()

  c.loop = ml_collections.ConfigDict()
  c.loop.steps_per_chunk = 1000
  c.loop.eval_every = 10_000
  c.loop.eval_episodes = 10
  c.loop.checkpoint_every = 10_000
  c.loop.replay_capacity = 1_000_000
  c.loop.max_to_keep = 2
  c.loop.log_every_seconds = 10.0
  c.loop.divergence_threshold = 1e8  # a loss or Q-value past this has diverged
  c.loop.on_divergence = "warn"  # or "stop" (like a NaN)
  return c


def model_base_config(model_name: str, model: ml_collections.ConfigDict
                      ) -> ml_collections.ConfigDict:
  """The ``experiments.train_model`` config around a world model's config: ``model_name``
  (``ensemble``, ``rssm`` or ``cadm``), ``model``, ``seed``, ``dataset.path`` / ``dataset.root``,
  ``output`` (the artifact, never overwritten), ``workdir`` (None: ``<output>.train``),
  ``mesh``, ``log_every_seconds``."""
  c = ml_collections.ConfigDict()
  c.model_name = model_name
  c.model = model
  c.seed = 0
  c.dataset = ml_collections.ConfigDict()
  c.dataset.path = config_dict.placeholder(str)  # a directory or a catalog name (vd4rl/...)
  c.dataset.root = config_dict.placeholder(str)  # catalog root (None: $WORLDMODELS_DATA)
  c.output = config_dict.placeholder(str)  # artifact directory (must not exist)
  c.workdir = config_dict.placeholder(str)  # checkpoints and logs; None: <output>.train
  c.mesh = mesh_config()
  c.log_every_seconds = 10.0
  return c


def mesh_config() -> ml_collections.ConfigDict:
  """Devices per mesh axis (``worldmodels.parallel.make_mesh``); all 1: one device. Their
  product must be the number of devices (``jax.devices()``, over every process)."""
  c = ml_collections.ConfigDict()
  c.members = 1  # ensemble members split over this many devices
  c.seeds = 1  # vmapped seeds split over this many devices
  c.data = 1  # each batch split over this many devices
  return c


def shrink_loop(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Loop settings of the ``tiny`` presets: a few chunks, one short evaluation episode."""
  c.loop.steps_per_chunk = 50
  c.loop.eval_every = 100
  c.loop.eval_episodes = 1
  c.loop.checkpoint_every = 100
  c.loop.replay_capacity = 10_000
  c.loop.log_every_seconds = 0.0
  c.env.episode_length = 50
  return c


PIXEL_PRESETS = ("default", "paper", "cpu", "tiny")


def pixel_agent_config(agent_name: str, agent: ml_collections.ConfigDict, preset: str,
                       tiny_agent: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Launcher presets of the DrQ-v2 pixel agents (``drqbc``, ``cql``, ``pixel_bc``).

  * ``paper`` (= ``default``): V-D4RL table 9: 84 x 84 frames, 3 stacked, batch 256,
    100,000 updates (256 offline epochs of a 100k-step dataset). An accelerator run.
  * ``cpu``: 64 x 64 frames, 3 stacked, batch 64, MLPs of 256, 10,000 updates.
  * ``tiny``: 16 x 16 frames (tests).
  """
  name = preset
  if name not in PIXEL_PRESETS:
    raise ValueError(f"unknown {agent_name} preset {preset!r}; choose one of "
                     f"{', '.join(PIXEL_PRESETS)}")
  c = base_config(agent_name, tiny_agent if name == "tiny" else agent)
  c.dataset.observation_keys = ("pixels",)
  c.env.obs_type, c.env.image_size = "pixels", 84
  c.frame_stack = 3
  if name == "cpu":
    c.env.image_size = 64
    c.agent.batch_size = 64
    c.agent.hidden_sizes = (256, 256)
    c.agent.num_steps = 10_000
    c.loop.eval_every = c.loop.checkpoint_every = 2_500
    c.loop.steps_per_chunk = 250
  elif name == "tiny":
    shrink_loop(c)
    c.env.image_size = 16
  else:
    c.loop.eval_every = c.loop.checkpoint_every = 10_000
  return c
