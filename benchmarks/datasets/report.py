"""``RESULTS.md`` of generated datasets: behaviour policies, statistics, the papers' numbers.

``python -m benchmarks.datasets report --root DIR [--tasks walker-walk,cheetah-run]
[--output benchmarks/datasets/RESULTS.md]`` reads every built state dataset and the behaviour
runs' ``selection.json`` under the catalog root and writes, per task, the medium and expert
snapshots with their evaluated returns, the snapshot evaluation curve, and the statistics table
of each dataset next to the V-D4RL paper's appendix A row. D4RL-style tasks (``--tasks
halfcheetah``) get D4RL's reference returns instead, and each dataset's mean return on D4RL's
normalised scale. Everything after a ``## Reading`` heading in an existing output file (the
hand-written interpretation) is kept.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from worldmodels.io import atomic_text
from worldmodels.data import read_metadata
from worldmodels.provenance import git_revision

from benchmarks.datasets import configs, vd4rl

# V-D4RL paper, appendix A (table 5): timesteps and return mean, std, min, P25, median, P75, max.
PAPER_APPENDIX_A = {
    ("walker-walk", "random"): ("100K", 42.3, 8.7, 30.0, 34.9, 41.3, 46.8, 74.6),
    ("walker-walk", "mixed"): ("100K", 144.5, 155.9, 10.9, 44.3, 69.4, 162.4, 604.9),
    ("walker-walk", "medium"): ("100K", 439.6, 48.4, 176.2, 423.1, 445.5, 466.7, 538.0),
    ("walker-walk", "medexp"): ("200K", 704.1, 267.7, 176.2, 445.5, 538.0, 969.1, 990.6),
    ("walker-walk", "expert"): ("100K", 969.8, 12.4, 909.2, 963.9, 969.1, 979.5, 990.6),
    ("cheetah-run", "random"): ("100K", 6.6, 2.6, 1.1, 4.7, 6.3, 8.4, 16.3),
    ("cheetah-run", "mixed"): ("200K", 191.2, 144.6, 2.5, 48.3, 191.9, 303.4, 473.8),
    ("cheetah-run", "medium"): ("100K", 523.8, 25.5, 325.3, 509.1, 524.2, 538.3, 578.3),
    ("cheetah-run", "medexp"): ("200K", 707.0, 184.9, 325.3, 524.2, 578.3, 894.1, 905.7),
    ("cheetah-run", "expert"): ("100K", 891.1, 11.2, 843.0, 886.9, 894.2, 898.5, 905.7),
    ("humanoid-walk", "random"): ("100K", 1.1, 0.8, 0.0, 0.5, 1.0, 1.5, 5.7),
    ("humanoid-walk", "mixed"): ("600K", 275.7, 176.1, 0.0, 93.7, 341.7, 423.1, 529.0),
    ("humanoid-walk", "medium"): ("100K", 573.0, 16.7, 526.5, 560.6, 572.9, 584.9, 609.4),
    ("humanoid-walk", "medexp"): ("200K", 715.9, 146.1, 526.5, 572.9, 620.6, 877.4, 889.8),
    ("humanoid-walk", "expert"): ("100K", 858.1, 42.4, 631.8, 846.4, 877.6, 885.5, 889.8),
}
# D4RL's reference returns of a random and an expert policy (Fu et al., 2020; the d4rl
# package's REF_MIN_SCORE / REF_MAX_SCORE), which define its normalised score.
D4RL_REFERENCE_RETURNS = {
    "HalfCheetah-v5": (-280.178953, 12135.0),
    "Walker2d-v5": (1.629008, 4592.3),
    "Hopper-v5": (-20.272305, 3234.3),
    "Ant-v5": (-325.6, 3879.7),
}
_STATS = ("mean", "std", "min", "p25", "median", "p75", "max")


def d4rl_normalised_score(task: str, episode_return: float) -> float:
  """100 x (return - random) / (expert - random) with D4RL's reference returns of ``task``
  (a gymnasium id, e.g. "HalfCheetah-v5")."""
  random_return, expert_return = D4RL_REFERENCE_RETURNS[task]
  return 100.0 * (episode_return - random_return) / (expert_return - random_return)
READING_HEADING = "## Reading"


def _task_section(root: str, task: str) -> list[str]:
  d4rl = configs.is_d4rl_task(task)
  lines = [f"## {configs.preset_name(task)} ({task})" if d4rl else f"## {task}", ""]
  behaviour = os.path.join(vd4rl.task_directory(root, task), vd4rl.BEHAVIOUR_DIR)
  selection_path = os.path.join(behaviour, vd4rl.SELECTION_FILE)
  if os.path.exists(selection_path):
    with open(selection_path) as f:
      selection = json.load(f)
    replay = read_metadata(os.path.join(behaviour, vd4rl.TRAINING_REPLAY))
    env_steps = replay["behaviour_policy"].get("env_steps")
    lines += [f"Behaviour SAC: {env_steps:,} env steps ({env_steps * replay['action_repeat']:,} "
              f"frames), seed {replay['seed']}. Rule: {selection['rule']}.", "",
              "| Policy | Snapshot (env steps) | Frames | Evaluated return |",
              "| --- | ---: | ---: | ---: |"]
    for kind in ("medium", "expert"):
      row = selection[kind]
      lines.append(f"| {kind} | {row['step']:,} | {row['frames']:,} | "
                   f"{row['return_mean']:.1f} ± {row['return_std']:.1f} |")
    curve = ", ".join(f"{row['frames'] // 1000}k: {row['return_mean']:.0f}"
                      for row in selection["evaluations"])
    lines += ["", f"Every snapshot (frames: mean return): {curve}.", ""]
  lines += ["| Dataset | Source | Timesteps | Episodes | Mean | Std | Min | P25 | Median | P75 "
            "| Max |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
            "---: |"]
  normalised = []
  for kind in configs.DATASET_KINDS:
    path = vd4rl.dataset_directory(root, task, kind)
    if os.path.isfile(os.path.join(path, "metadata.json")):
      metadata = read_metadata(path)
      s = metadata["statistics"]
      values = " | ".join(f"{s['return_' + name]:.1f}" for name in _STATS)
      lines.append(f"| {kind} | ours | {s['timesteps']:,} | {s['episodes']:,} | {values} |")
      if d4rl:
        normalised.append(f"{kind} {d4rl_normalised_score(task, s['return_mean']):.1f}")
    paper = PAPER_APPENDIX_A.get((task, kind))
    if paper:
      values = " | ".join(f"{value:.1f}" for value in paper[1:])
      lines.append(f"| {kind} | paper | {paper[0]} | - | {values} |")
  if d4rl:
    random_return, expert_return = D4RL_REFERENCE_RETURNS[task]
    lines += ["", f"D4RL's reference returns: random {random_return:.1f}, expert "
              f"{expert_return:.1f} (normalised 0 and 100). Our mean returns on that scale: "
              + (", ".join(normalised) or "no dataset built") + "."]
  return lines + [""]


def write_report(root: str, tasks: Sequence[str], output: str, command: str) -> str:
  """Writes the report (keeping an existing ``## Reading`` section); returns its text."""
  reading = ""
  if os.path.exists(output):
    with open(output, encoding="utf-8") as f:
      previous = f.read()
    if READING_HEADING in previous:
      reading = previous[previous.index(READING_HEADING):]
  tasks = [configs.D4RL_TASKS.get(task, task) for task in tasks]
  families = {configs.is_d4rl_task(task) for task in tasks}
  if len(families) > 1:
    raise ValueError(f"--tasks {','.join(tasks)}: report V-D4RL and D4RL-style tasks into "
                     "separate files (--output).")
  if families == {True}:
    lines = ["# D4RL-style datasets generated on this machine", "",
             f"Command: `{command}`; git revision `{git_revision()}`; catalog root `{root}`. "
             "Returns are undiscounted sums over episodes of up to 1000 steps (action repeat "
             "1; Hopper, Walker2d and Ant end early on unhealthy states). Every card lists how "
             "its dataset differs from D4RL's.", ""]
  else:
    lines = ["# V-D4RL datasets generated on this machine", "",
             f"Command: `{command}`; git revision `{git_revision()}`; catalog root `{root}`. "
             "Returns are undiscounted sums over 1000-frame episodes (500 agent steps, action "
             "repeat 2). 'paper' rows: V-D4RL appendix A (Lu et al., TMLR 2023).", ""]
  for task in tasks:
    lines += _task_section(root, task)
  text = "\n".join(lines) + ("\n" + reading if reading else "")
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with atomic_text(output) as f:
    f.write(text)
  return text
