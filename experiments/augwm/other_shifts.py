r"""AugWM experiment 4 (paper table 2): other dynamics shifts than mass x damping.

The MOPO and AugWM (DAS, context) agents of ``experiments.augwm.run`` (same ``--workdir``: seeds
already trained there are restored, not retrained) evaluated zero-shot on cheetah-run with

* crippled joints: one actuator's gear set to zero (each of the six, ``crippled:<joint>``);
* a crippled leg: the three actuators of the back or the front leg;
* body parts bigger / smaller (mass, inertia and size x 1.25 / x 0.75; foot, leg, thigh,
  torso, head, as the gym-extensions HalfCheetah of the paper's appendix B.4).

The paper's crippled-leg rows are on Ant (four legs, "one" and "two" crippled legs); a cheetah
has two legs, so one crippled joint and one crippled leg play those roles here.

  python -m experiments.augwm.other_shifts [--workdir=runs/mopo] [--seeds=3] [--tiny]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, List

from absl import flags
from absl import app
from scipy import stats

from benchmarks.shifts import CrippledActuators, halfcheetah_body_part
from experiments import cli
from experiments import zero_shot
from experiments.augwm import run as augwm_run
from worldmodels.io import atomic_text
from worldmodels.provenance import git_revision

CHEETAH_JOINTS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
BODY_PARTS = ("foot", "leg", "thigh", "torso", "head")


def shift_groups() -> Dict[str, List]:
  """Group name -> perturbations (the rows of the paper's table 2 are group means)."""
  return {
      "one crippled joint": [CrippledActuators((i,), label=f"crippled:{joint}")
                             for i, joint in enumerate(CHEETAH_JOINTS)],
      "one crippled leg": [CrippledActuators((0, 1, 2), label="crippled:back_leg"),
                           CrippledActuators((3, 4, 5), label="crippled:front_leg")],
      "body parts big / small": [halfcheetah_body_part(part, big) for part in BODY_PARTS
                                 for big in (True, False)],
  }


def group_table(results: dict, groups: Dict[str, List]) -> str:
  """Markdown: per agent, the mean over each group's settings (± std over seeds), and the
  Welch p-value against MOPO over the per-seed group means."""
  names = list(groups)
  lines = ["| Agent | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
  offsets, start = {}, 0
  for name, settings in groups.items():
    offsets[name] = slice(start, start + len(settings))
    start += len(settings)

  def per_seed(result, name):  # [seeds] mean return over the group's cells
    return result.returns[:, offsets[name]].mean(axis=(1, 2))

  for row, result in results.items():
    cells = []
    for name in names:
      values = per_seed(result, name)
      cell = f"{values.mean():.1f} ± {values.std():.1f}"
      if row != "MOPO" and len(values) > 1:
        p = stats.ttest_ind(values, per_seed(results["MOPO"], name), equal_var=False).pvalue
        better = p < 0.05 and values.mean() > per_seed(results["MOPO"], name).mean()
        cell += f"{' ★' if better else ''} (p={p:.2f})"
      cells.append(cell)
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv, common: zero_shot.CommonFlags) -> None:
  del argv
  if common.task.value != "cheetah-run":
    raise app.UsageError(f"--task={common.task.value}: the shifts of this experiment name "
                         "cheetah bodies and joints; only cheetah-run is supported.")
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  size = inputs.sizes
  runs = augwm_run.agent_runs(common, inputs)
  steps = runs[-1].steps
  groups = shift_groups()
  settings = [setting for group in groups.values() for setting in group]
  _, results, _ = zero_shot.run_agents(common.task.value, inputs, common.workdir.value, runs,
                                      settings=settings, tag="other-shifts")
  table = group_table(results, groups)
  out = common.output_dir()
  os.makedirs(out, exist_ok=True)
  with atomic_text(os.path.join(out, "RESULTS.md")) as f:
    f.write(f"# AugWM table 2 on {common.task.value}: other shifts (zero-shot)\n\n"
            f"Command: `python -m experiments.augwm.other_shifts {' '.join(sys.argv[1:])}`; git "
            f"revision `{revision}`; wall time {(time.time() - started) / 60:.1f} min (trained "
            "seeds are restored from the workdir). Agents: those of `experiments.augwm.run` "
            f"(same workdir `{common.workdir.value}`, {steps} updates per seed, "
            f"{size.seeds} seeds), {size.grid_episodes} episodes per setting and seed.\n\n"
            "Mean return over each group's settings, ± std over seeds; ★: above MOPO with "
            "p < 0.05 (Welch t-test over the per-seed group means).\n\n"
            f"{table}\n\n## Every setting (mean ± std over seeds)\n\n")
    for row, result in results.items():
      f.write(f"### {row}\n\n{result.returns_table()}\n\n")
      result.save(os.path.join(out, f"{zero_shot.slug(row)}.json"))
    f.write("The paper's crippled-leg rows are on Ant (one and two of four legs crippled); "
            "the cheetah has two legs, so one crippled joint and one crippled leg stand in "
            "for them. Body parts: mass, inertia and geom size x 1.25 (big) or x 0.75 (small), "
            "as gym-extensions' modified HalfCheetah (paper appendix B.4).\n")
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), "other_shifts"))
  flags.adopt_module_key_flags(zero_shot)  # --help lists the shared flags
  cli.run(lambda argv: main(argv, _COMMON))
