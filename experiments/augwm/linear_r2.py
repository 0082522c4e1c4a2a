r"""How well AugWM's online linear model fits a task's state changes (paper figure 4), with the
paper's ``[s, 1]`` features and with ``[s, a, 1]`` (issue 17).

  python -m experiments.augwm.linear_r2 --datasets=d4rl/halfcheetah/medium,d4rl/halfcheetah/random \
      [--episodes=20] [--data_root=...] [--publish]

For each dataset episode the model is fitted online, step by step, exactly as the test-time
context fits it (``worldmodels.agents.augwm.context.OnlineLinearModel``, the agent's default
ridge), and scored one step ahead. The R^2 rule: a pair is scored only once the fit predicting
it is determined (it has seen at least as many pairs as it has features), so the first
``S + 1`` (or ``S + A + 1``) pairs of an episode are fitted but never scored. Writes
``RESULTS.md`` and ``results.json`` to ``runs/linear_r2`` (``--publish``:
``experiments/augwm/linear_r2/``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List

from absl import flags
import numpy as np

from benchmarks.datasets import catalog
from experiments import cli
from worldmodels.agents.augwm import config as augwm_config
from worldmodels.agents.augwm.context import OnlineLinearModel
from worldmodels.data import load_dataset
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_text
from worldmodels.provenance import git_revision

_DATASETS = flags.DEFINE_list("datasets", ["d4rl/halfcheetah/medium"],
                              "Datasets (directories or catalog names).")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Catalog root for the names.")
_EPISODES = flags.DEFINE_integer("episodes", 20, "Episodes per dataset (its first ones).")
_OUTPUT = flags.DEFINE_string("output", "runs/linear_r2", "Where the results go.")
_PUBLISH = flags.DEFINE_bool("publish", False, "Write the committed results beside this file.")

FEATURES = {"[s, 1]": False, "[s, a, 1]": True}


def episode_r2(states: np.ndarray, actions: np.ndarray, with_action: bool,
               ridge: float) -> float:
  """The online linear model's one-step-ahead R^2 over one episode.

  Args:
    states: ``[T + 1, S]`` the episode's observations.
    actions: ``[T, A]`` the actions taken at the first ``T`` of them.
    with_action: fit ``[s, a, 1]`` instead of ``[s, 1]``.
    ridge: the ridge coefficient.
  """
  model = OnlineLinearModel.empty(states.shape[1], ridge,
                                  actions.shape[1] if with_action else 0)
  for t in range(len(actions)):
    model = model.update(states[t], states[t + 1] - states[t],
                         actions[t] if with_action else None)
  return model.r2()


def dataset_r2(path: str, episodes: int, ridge: float) -> Dict[str, List[float]]:
  """Feature set -> R^2 per episode of the dataset's first ``episodes`` episodes."""
  steps, _ = load_dataset(path, observation_keys=("state",))
  states = np.asarray(steps.observation["state"], np.float64)
  actions = np.asarray(steps.action, np.float64)
  starts = np.flatnonzero(np.asarray(steps.is_first))
  ends = np.append(starts[1:], steps.num_steps)
  out: Dict[str, List[float]] = {name: [] for name in FEATURES}
  for start, end in list(zip(starts, ends))[:episodes]:
    # Step t holds o_t and the action taken there; the last step of an episode only o_T.
    for name, with_action in FEATURES.items():
      out[name].append(episode_r2(states[start:end], actions[start:end - 1], with_action,
                                  ridge))
  return out


def main(argv):
  del argv
  if _EPISODES.value < 1:
    raise ConfigError(f"--episodes={_EPISODES.value}: expected at least 1.")
  started, revision = time.time(), git_revision()
  ridge = augwm_config.default_config().linear_ridge
  results = {}
  for name in _DATASETS.value:
    path = catalog.dataset_path(name, _DATA_ROOT.value)
    results[name] = dataset_r2(path, _EPISODES.value, ridge)
    print(name, {k: float(np.mean(v)) for k, v in results[name].items()}, flush=True)
  lines = ["| Dataset | Episodes | " + " | ".join(f"{f} mean | {f} median | {f} min"
                                                  for f in FEATURES) + " |",
           "| --- | ---: |" + " ---: | ---: | ---: |" * len(FEATURES)]
  for name, per_features in results.items():
    cells = []
    for values in per_features.values():
      v = np.asarray(values, float)
      cells += [f"{v.mean():.3f}", f"{np.median(v):.3f}", f"{v.min():.3f}"]
    lines.append(f"| {name} | {len(next(iter(per_features.values())))} | "
                 + " | ".join(cells) + " |")
  out_dir = (os.path.join(os.path.dirname(os.path.abspath(__file__)), "linear_r2")
             if _PUBLISH.value else _OUTPUT.value)
  os.makedirs(out_dir, exist_ok=True)
  text = ("# The online linear model's one-step-ahead R^2 on dataset episodes\n\n"
          f"Command: `python -m experiments.augwm.linear_r2 {' '.join(sys.argv[1:])}`; git "
          f"revision `{revision}`; {time.time() - started:.0f} s.\n\n"
          "Per episode, the model of AugWM's test-time context (ridge "
          f"{ridge:g}) is fitted online on the episode's state changes and scored one step "
          "ahead, as during an evaluation episode. Rule: a pair is scored only once the fit "
          "that predicts it is determined (it has seen at least as many pairs as it has "
          "features: S + 1 for [s, 1], S + A + 1 for [s, a, 1]); R^2 is the mean over state "
          "dimensions of 1 - SSE / SST over the scored pairs.\n\n" + "\n".join(lines) + "\n")
  with atomic_text(os.path.join(out_dir, "RESULTS.md")) as f:
    f.write(text)
  with atomic_text(os.path.join(out_dir, "results.json")) as f:
    json.dump({"ridge": ridge, "r2": results}, f, indent=1)
  print(text)


if __name__ == "__main__":
  cli.run(main)
