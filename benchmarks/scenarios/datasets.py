"""MrCoM's scenario datasets, from the V-D4RL generator, and the ``v_max`` they are built on.

* :func:`measure_v_max`: the mean forward speed of the expert (the last snapshot) of the
  embodiment's V-D4RL behaviour SAC (``benchmarks.datasets.vd4rl``, the DMC task under default
  dynamics; the same run the V-D4RL datasets use), over ``episodes`` deterministic episodes.
  Written once to ``<root>/mrcom/<domain>_<task>/v_max.json`` with what made it.
* :func:`scenario_config` / :func:`generate_scenario_datasets`: the V-D4RL procedure run inside
  a scenario (its torso scaling, target-speed reward and observation function): a behaviour SAC
  trained in the scenario, then the ``random`` / ``mixed`` / ``medium`` / ``expert`` /
  ``medexp`` datasets, under ``<root>/mrcom/<domain>_<task>/<scenario name>/<kind>/state``
  (catalog-style name ``mrcom/<domain>_<task>/<scenario name>/<kind>``), each with a card that
  states its scenario.
* :func:`report`: the statistics tables of the generated scenario datasets
  (``benchmarks/scenarios/RESULTS.md`` with ``python -m benchmarks.scenarios report --publish``).

Scales: ``full`` is the V-D4RL generator's (a behaviour SAC per scenario until convergence);
``cpu`` trains each scenario's SAC for ``CPU_BEHAVIOUR_STEPS`` environment steps and writes
``CPU_DATASET_SIZE`` transitions per dataset, with the medium snapshot the first above
``CPU_MEDIUM_THRESHOLD`` (the returns of a short run are lower than V-D4RL's 500); ``tiny``
is for tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from benchmarks.datasets import catalog, configs, vd4rl
from benchmarks.envs import make_env
from benchmarks.scenarios import objectives
from benchmarks.scenarios.suite import Scenario
from worldmodels.data import read_metadata
from worldmodels.io import Lock, atomic_json
from worldmodels.provenance import git_revision
from worldmodels.training.acting import compile_policy
from worldmodels.training.loop import restore_snapshot, snapshot_steps

SUITE = "mrcom"
CPU_BEHAVIOUR_STEPS = 30_000
CPU_DATASET_SIZE = 30_000
CPU_MEDIUM_THRESHOLD = 50.0
V_MAX_FILE = "v_max.json"


class VMaxError(RuntimeError):
  """``v_max`` cannot be measured (no behaviour run, or a policy that does not move)."""


def embodiment_directory(root: str, embodiment: str) -> str:
  """``<root>/mrcom/<domain>_<task>``."""
  return os.path.join(root, SUITE, embodiment.replace("-", "_"))


def dataset_name(scenario: Scenario, kind: str) -> str:
  """``mrcom/<domain>_<task>/<scenario name>/<kind>``."""
  return f"{SUITE}/{scenario.embodiment.replace('-', '_')}/{scenario.name}/{kind}"


def _generation_config(embodiment: str, scale: str,
                       overrides: Optional[dict]) -> ml_collections.ConfigDict:
  config = configs.get_config(f"{embodiment}/{scale}")
  catalog.apply_overrides(config, overrides or {})
  return config


# -- v_max ------------------------------------------------------------------------------------


def measure_v_max(embodiment: str, root: str, scale: str = "cpu", episodes: int = 10,
                  overrides: Optional[dict] = None) -> Dict[str, object]:
  """``v_max`` of ``embodiment``: trains (or reuses) its V-D4RL behaviour SAC at ``scale``, then
  rolls out the run's last snapshot for ``episodes`` deterministic episodes under default
  dynamics and averages the forward speed over every step.

  Returns:
    ``{"embodiment", "v_max", "speed_std", "episodes", "expert_step", "return_mean",
    "fingerprint", ...}``, also in ``<root>/mrcom/<domain>_<task>/v_max.json`` (reused when
    its fingerprint matches).

  Raises:
    VMaxError: the behaviour run left no snapshot, or its policy's mean speed is not positive.
  """
  if embodiment not in objectives.EMBODIMENTS:
    raise ValueError(f"unknown embodiment {embodiment!r}; choose from "
                     f"{', '.join(objectives.EMBODIMENTS)}.")
  config = _generation_config(embodiment, scale, overrides)
  fingerprint = json.loads(json.dumps(  # as JSON stores it (tuples become lists)
      {"behaviour": vd4rl.generation_fingerprint(config, "training_replay"),
       "episodes": int(episodes)}))
  path = os.path.join(embodiment_directory(root, embodiment), V_MAX_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      recorded = json.load(f)
    if recorded.get("fingerprint") == fingerprint:
      return recorded
    raise VMaxError(f"{path}: measured with other settings (behaviour run or episodes); a "
                    "recorded v_max is never replaced: move it away to measure again.")
  with Lock(path, "measuring v_max"):
    workdir = vd4rl.train_behaviour(config, root)
    steps = snapshot_steps(workdir)
    if not steps:
      raise VMaxError(f"the behaviour run in {workdir} saved no snapshot.")
    agent, _ = vd4rl.behaviour._sac_agent(config)  # pylint: disable=protected-access
    state = restore_snapshot(agent, workdir, steps[-1])
    act = compile_policy(agent)
    speeds, returns = [], []
    for episode in range(episodes):
      env = make_env(embodiment, seed=10_000 + episode, action_repeat=config.action_repeat,
                     episode_length=config.episode_length)
      carry, key = agent.policy_init(jax.random.PRNGKey(episode)), jax.random.PRNGKey(episode)
      time_step, total, t = env.reset(), 0.0, 0
      while not time_step.last():
        action, carry = act(state, carry, time_step.observation, key, t, True)
        time_step = env.step(np.asarray(action))
        speeds.append(objectives.forward_speed(embodiment, env.physics))
        total, t = total + float(time_step.reward), t + 1
      returns.append(total)
      env.close()
    v_max = float(np.mean(speeds))
    if not v_max > 0:
      raise VMaxError(f"{embodiment}: the behaviour policy's mean forward speed is {v_max:.3f}"
                      f" (snapshot at step {steps[-1]} of {workdir}); train it longer "
                      "(python -m benchmarks.scenarios ... --v_max_set behaviour.num_steps=N) "
                      "before building scenarios on it.")
    result = {"embodiment": embodiment, "v_max": v_max, "speed_std": float(np.std(speeds)),
              "episodes": int(episodes), "expert_step": int(steps[-1]),
              "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
              "behaviour_workdir": os.path.abspath(workdir), "scale": scale,
              "code_version": git_revision(), "fingerprint": fingerprint}
    atomic_json(path, result)
  return result


# -- scenario datasets ------------------------------------------------------------------------


def scenario_config(scenario: Scenario, v_max: float, scale: str = "cpu",
                    overrides: Optional[dict] = None) -> ml_collections.ConfigDict:
  """The V-D4RL generation config of ``scenario`` (see the module docstring for the scales)."""
  config = configs.get_config(f"{scenario.embodiment}/{scale}")
  if scale == "cpu":
    config.behaviour.num_steps = CPU_BEHAVIOUR_STEPS
    config.behaviour.medium_threshold = CPU_MEDIUM_THRESHOLD
    for kind in ("random", "mixed", "medium", "expert"):
      config.sizes[kind] = CPU_DATASET_SIZE
  config.scenario = ml_collections.ConfigDict({**dataclasses.asdict(scenario),
                                               "name": scenario.name, "v_max": float(v_max)})
  catalog.apply_overrides(config, overrides or {})
  return config


def generate_scenario_datasets(scenarios: Sequence[Scenario], v_max: float, root: str,
                               kinds: Sequence[str] = ("random", "mixed"), scale: str = "cpu",
                               overrides: Optional[dict] = None) -> Dict[str, str]:
  """Builds (or reuses) ``kinds`` of every scenario, one kind for all scenarios before the
  next (so a learned kind that fails, e.g. a behaviour run below the medium threshold, leaves
  the earlier kinds of every scenario built); returns ``{catalog-style name: path}``."""
  built = {}
  for kind in kinds:
    for scenario in scenarios:
      config = scenario_config(scenario, v_max, scale, overrides)
      built[dataset_name(scenario, kind)] = vd4rl.generate_dataset(config, root, kind)["state"]
  return built


def scenario_datasets(root: str, embodiment: Optional[str] = None) -> List[str]:
  """The complete scenario dataset directories under ``root`` (sorted)."""
  base = os.path.join(root, SUITE)
  found = []
  for dirpath, _, filenames in os.walk(base):
    if "metadata.json" in filenames and os.path.basename(dirpath) == "state":
      if embodiment is None or embodiment.replace("-", "_") in dirpath.split(os.sep):
        if vd4rl.BEHAVIOUR_DIR not in dirpath.split(os.sep):
          found.append(dirpath)
  return sorted(found)


def report(root: str, command: str) -> str:
  """Markdown: ``v_max`` per embodiment and the statistics of every scenario dataset."""
  lines = ["# MrCoM scenario datasets generated on this machine", "",
           f"Command: `{command}`; git revision `{git_revision()}`; root `{root}`. Returns are "
           "undiscounted sums of the scenario's target-speed reward "
           "(`benchmarks/scenarios/objectives.py`) over 1000-frame episodes (500 agent steps, "
           "action repeat 2).", "", "## v_max (default dynamics)", "",
           "| Embodiment | v_max (m/s) | speed std | Expert snapshot (env steps) | Its DMC return |"
           " Episodes |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
  for embodiment in objectives.EMBODIMENTS:
    path = os.path.join(embodiment_directory(root, embodiment), V_MAX_FILE)
    if os.path.isfile(path):
      with open(path) as f:
        v = json.load(f)
      lines.append(f"| {embodiment} | {v['v_max']:.3f} | {v['speed_std']:.3f} | "
                   f"{v['expert_step']:,} | {v['return_mean']:.1f} ± {v['return_std']:.1f} | "
                   f"{v['episodes']} |")
  lines += ["", "## Datasets", "",
            "| Dataset | Torso length | Torso size | rho | Target speed | Behaviour | Transitions |"
            " Episodes | Mean | Std | Min | Median | Max |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
            " ---: |"]
  for path in scenario_datasets(root):
    meta = read_metadata(path)
    card, stats = meta["extra"]["card"], meta["statistics"]
    sc = card["scenario"]
    name = os.path.relpath(os.path.dirname(path), root)
    lines.append(
        f"| {name} | {sc['torso_length']:.3f} | {sc['torso_size']:.3f} | {sc['rho']:.3f} | "
        f"{sc['rho'] * sc['v_max']:.3f} | {card.get('policy', '-')} | "
        f"{meta['num_transitions']:,} | {meta['num_episodes']:,} | {stats['return_mean']:.1f} | "
        f"{stats['return_std']:.1f} | {stats['return_min']:.1f} | {stats['return_median']:.1f} | "
        f"{stats['return_max']:.1f} |")
  return "\n".join(lines) + "\n"
