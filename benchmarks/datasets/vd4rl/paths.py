"""The V-D4RL directory layout: where each task's behaviour run and datasets live."""

from __future__ import annotations

import os

BEHAVIOUR_DIR = "behaviour"
TRAINING_REPLAY = "training_replay"
SELECTION_FILE = "selection.json"
CARD_FILE = "CARD.md"
PARTIAL_SUFFIX = ".partial"


def task_directory(root: str, task: str) -> str:
  """``<root>/vd4rl/<domain>_<task>`` (V-D4RL names tasks with an underscore)."""
  return os.path.join(root, "vd4rl", task.replace("-", "_"))


def dataset_directory(root: str, task: str, kind: str, observation: str = "state") -> str:
  """Where dataset ``kind`` of ``task`` lives; ``observation`` is "state" or "<S>px"."""
  return os.path.join(task_directory(root, task), kind, observation)
