r"""Redraws the figures of a zero-shot results directory from its saved per-seed grids: one
heatmap per agent on a shared colour scale, and the overview figure (every agent on one scale,
and its difference to MOPO). The returns themselves are not recomputed.

  python -m experiments.replot experiments/augwm/table1/medium

The agents (and their order) are those of the directory's ``results.json``; a note naming
this program and the code revision is added to its ``RESULTS.md`` when one is there.
"""

from __future__ import annotations

import json
import os
import re

from benchmarks.protocols.zero_shot import GridResult
from experiments import cli
from experiments import zero_shot
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_write
from worldmodels.provenance import git_revision

_NOTE = "Figures redrawn from the saved grids by `python -m experiments.replot"


def replot(results_dir: str, revision: str) -> list:
  """Redraws ``results_dir``'s figures, noting ``revision`` (the code that drew them) in its
  ``RESULTS.md``; returns the agents drawn."""
  summary_path = os.path.join(results_dir, "results.json")
  if not os.path.isfile(summary_path):
    raise ConfigError(f"{results_dir}: holds no results.json of a zero-shot experiment.")
  with open(summary_path) as f:
    summary = json.load(f)
  names = list(summary["unshifted"])
  grids = {}
  for name in names:
    path = os.path.join(results_dir, f"grid_{zero_shot.slug(name)}.json")
    if not os.path.isfile(path):
      raise ConfigError(f"{path}: missing; the grid of {name!r} is needed to redraw.")
    grids[name] = GridResult.load(path)
  results_md = os.path.join(results_dir, "RESULTS.md")
  text = open(results_md, encoding="utf-8").read() if os.path.isfile(results_md) else ""
  match = re.match(r"# (.*?) on ([\w-]+) \(", text)
  title = summary.get("title") or (match.group(0)[2:-2] if match else "zero-shot grid")
  task = summary.get("task") or (match.group(2) if match else "")
  if zero_shot.plot_grids(results_dir, grids, title, task) is None:
    raise ConfigError(f"{results_dir}: its settings are not a mass x damping grid.")
  if text:
    text = re.sub(rf"\n{re.escape(_NOTE)}.*\n", "\n", text)
    text += (f"\n{_NOTE} {os.path.relpath(results_dir)}` at git revision `{revision}`: "
             "heatmaps on one colour scale, and the overview ![overview](overview.png).\n")
    atomic_write(results_md, text)
  return names


def main(argv):
  if len(argv) < 2:
    raise ConfigError("name the results directories to redraw, e.g. python -m "
                      "experiments.replot experiments/demo")
  revision = git_revision()  # before any figure is written into the tree
  for results_dir in argv[1:]:
    print(f"{results_dir}: {', '.join(replot(results_dir, revision))}")


if __name__ == "__main__":
  cli.run(main, positional=True)
