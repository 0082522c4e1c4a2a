r"""AugWM paper table 1 on our datasets: MOPO vs AugWM over dataset types (zero-shot grid).

Each dataset type is one ``experiments.augwm.run`` invocation with its own workdir and results
directory ``experiments/augwm/table1/<kind>/`` (which holds the per-seed grids as JSON); this
program gathers them into one table: grid mean ± std over seeds per agent, and the Welch t-test
of each AugWM row against MOPO over the per-seed grid means (★ p < 0.05, as the paper's stars).
On HalfCheetah-v5 the table also gives the paper's HalfCheetah numbers (its table 1: MOPO and
AugWM, 5 seeds, mean over the 7 x 7 grid).

The committed table (HalfCheetah-v5, the D4RL-style datasets of ``benchmarks.datasets``, the
paper's 7 x 7 grid with 5 episodes per cell, 5 seeds trained as runs of 3 and 2, MOPO's lambda
the one ``experiments.mopo.lambda_sweep`` chose on each dataset):

  GRID=0.25,0.5,0.75,1,1.25,1.5,1.75
  python -m experiments.augwm.run --task=HalfCheetah-v5 --dataset=d4rl/halfcheetah/medium \
      --preset=halfcheetah-medium --model_max_epochs=30 --workdir=runs/hc_medium --seeds=5 \
      --seeds_per_run=3 --factors=$GRID --grid_episodes=5 \
      --results_dir=experiments/augwm/table1/medium
  python -m experiments.augwm.run --task=HalfCheetah-v5 --dataset=d4rl/halfcheetah/mixed \
      --preset=halfcheetah-mixed --penalty_coef=0.3 --model_max_epochs=30 \
      --workdir=runs/hc_mixed --seeds=5 --seeds_per_run=3 --factors=$GRID --grid_episodes=5 \
      --results_dir=experiments/augwm/table1/mixed
  python -m experiments.augwm.table1 --task=HalfCheetah-v5 --kinds=medium,mixed --publish
"""

from __future__ import annotations

import os
import sys

from absl import flags

from benchmarks.protocols.zero_shot import GridResult
from experiments import cli
from experiments.zero_shot import slug
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_text
from worldmodels.provenance import git_revision

ROWS = ("MOPO", "AugWM (DAS, default context)", "AugWM (DAS, learned context)",
        "AugWM (DAS, oracle context)")

# The paper's table 1 for HalfCheetah (D4RL v2, 5 seeds, mean ± std over seeds of the 49-cell
# grid mean): (MOPO, AugWM), AugWM with its learned context.
PAPER_HALFCHEETAH = {"random": ("2303 ± 112", "2818 ± 197 ★"),
                     "mixed": ("3447 ± 218", "3948 ± 122 ★"),
                     "medium": ("2954 ± 89", "2967 ± 106"),
                     "medexp": ("1590 ± 766", "2885 ± 432 ★")}


def gather(results_dir: str, kinds) -> dict:
  """``{kind: {row: GridResult}}`` from ``<results_dir>/<kind>/grid_<row>.json``.

  Raises:
    FileNotFoundError: a kind's run is missing (the message gives the command that makes it).
  """
  table = {}
  for kind in kinds:
    table[kind] = {}
    for row in ROWS:
      path = os.path.join(results_dir, kind, f"grid_{slug(row)}.json")
      if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: run python -m experiments.augwm.run "
            f"--dataset=vd4rl/<task>/{kind}/state --results_dir={os.path.dirname(path)} ... "
            "first (see this module's docstring).")
      table[kind][row] = GridResult.load(path)
  return table


def format_table(table: dict, paper: bool = False) -> str:
  """Markdown: one row per dataset type, one column per agent; ★ where AugWM beats MOPO with
  p < 0.05 (Welch t-test over per-seed grid means); the p-values in brackets. ``paper``: two
  more columns, the paper's HalfCheetah MOPO and AugWM."""
  extra = ["Paper: MOPO", "Paper: AugWM"] if paper else []
  header = "| Dataset | " + " | ".join(list(ROWS) + extra) + " |"
  lines = [header, "| --- |" + " ---: |" * (len(ROWS) + len(extra))]
  for kind, results in table.items():
    cells = []
    for row in ROWS:
      mean, std = results[row].overall_mean_std()
      cell = f"{mean:.1f} ± {std:.1f}"
      if row != "MOPO":
        comparison = results[row].compare(results["MOPO"])
        better = comparison.overall_p_value < 0.05 and comparison.overall_difference > 0
        cell += f"{' ★' if better else ''} (p={comparison.overall_p_value:.2f})"
      cells.append(cell)
    if paper:
      cells += list(PAPER_HALFCHEETAH.get(kind, ("-", "-")))
    lines.append(f"| {kind} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


PUBLISH_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "table1")


def main(argv, kinds_flag, results_flag, publish_flag, task_flag) -> None:
  del argv
  if publish_flag.value == bool(results_flag.value):
    raise ConfigError("give --results_dir (the parent of the per-dataset result directories) "
                      "or --publish (the committed experiments/augwm/table1/), one of them.")
  results_dir = PUBLISH_DIR if publish_flag.value else results_flag.value
  table = gather(results_dir, kinds_flag.value)
  seeds = {len(result.seeds) for results in table.values() for result in results.values()}
  text = format_table(table, paper=task_flag.value.lower().startswith("halfcheetah"))
  path = os.path.join(results_dir, "RESULTS.md")
  with atomic_text(path) as f:
    f.write(f"# AugWM table 1 on {task_flag.value}: MOPO vs AugWM over dataset types\n\n"
            f"Command: `python -m experiments.augwm.table1 {' '.join(sys.argv[1:])}`; git "
            f"revision `{git_revision()}`. Each row gathers one `experiments.augwm.run` "
            "invocation (its own RESULTS.md, heatmaps, per-cell t-tests and settings are in "
            f"`{os.path.relpath(results_dir)}/<dataset>/`).\n\n"
            f"Grid mean return (all cells of the zero-shot mass x damping grid) ± std over "
            f"{'/'.join(str(s) for s in sorted(seeds))} seeds; ★: AugWM above MOPO with "
            f"p < 0.05 (two-sided Welch t-test over the per-seed grid means).\n\n{text}\n")
  print(text)
  print(f"wrote {path}")


if __name__ == "__main__":
  _KINDS = flags.DEFINE_list("kinds", ["random", "medium"], "Dataset types (rows).")
  _RESULTS = flags.DEFINE_string(
      "results_dir", None, "Holds <kind>/grid_*.json of each experiments.augwm.run; RESULTS.md "
      "is written here. Required unless --publish.")
  _PUBLISH = flags.DEFINE_bool(
      "publish", False, "Gather the committed runs of experiments/augwm/table1/ and rewrite "
      "its RESULTS.md.")
  _TASK = flags.DEFINE_string("task", "cheetah-run", "Task (for the title).")
  cli.run(lambda argv: main(argv, _KINDS, _RESULTS, _PUBLISH, _TASK))
