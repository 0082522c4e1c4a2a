"""The V-D4RL directory layout: where each task's behaviour run and datasets live.

The D4RL-style datasets of the gymnasium tasks (``benchmarks.datasets.configs.D4RL_TASKS``)
live under ``<root>/d4rl/<name>/`` (``<name>`` e.g. ``halfcheetah``), with the same layout.

A generation config with a ``scenario`` (MrCoM's scenarios, ``benchmarks.scenarios.datasets``)
lives under ``<root>/mrcom/<domain>_<task>/<scenario name>/`` instead, with the same layout
below it.
"""

from __future__ import annotations

import os

import ml_collections

from benchmarks.datasets.configs import D4RL_SUITE_NAMES, is_d4rl_task

BEHAVIOUR_DIR = "behaviour"
TRAINING_REPLAY = "training_replay"
SELECTION_FILE = "selection.json"
CARD_FILE = "CARD.md"
PARTIAL_SUFFIX = ".partial"


def task_directory(root: str, task: str) -> str:
  """``<root>/vd4rl/<domain>_<task>`` (V-D4RL names tasks with an underscore), or
  ``<root>/d4rl/<name>`` for a gymnasium task (``HalfCheetah-v5`` -> ``d4rl/halfcheetah``)."""
  if is_d4rl_task(task):
    return os.path.join(root, "d4rl", D4RL_SUITE_NAMES[task])
  return os.path.join(root, "vd4rl", task.replace("-", "_"))


def dataset_directory(root: str, task: str, kind: str, observation: str = "state") -> str:
  """Where dataset ``kind`` of ``task`` lives; ``observation`` is "state" or "<S>px"."""
  return os.path.join(task_directory(root, task), kind, observation)


def generation_directory(root: str, config: ml_collections.ConfigDict) -> str:
  """The behaviour run's and datasets' directory of generation ``config``:
  :func:`task_directory`, or ``<root>/mrcom/<domain>_<task>/<scenario name>`` for a scenario."""
  scenario = config.get("scenario")
  if scenario is None:
    return task_directory(root, config.task)
  return os.path.join(root, "mrcom", config.task.replace("-", "_"), scenario.name)


def generated_dataset_directory(root: str, config: ml_collections.ConfigDict, kind: str,
                                observation: str = "state") -> str:
  """Where dataset ``kind`` of generation ``config`` lives."""
  return os.path.join(generation_directory(root, config), kind, observation)
