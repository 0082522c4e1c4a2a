r"""AugWM experiments (issue 5) on the MOPO pipeline: MOPO vs AugWM (DAS, context) with the
default and the learned test-time context, and optionally augmentations without context
(figure 6), over seeds, on a zero-shot mass x damping grid. Shares ``--workdir`` with
``experiments.mopo.run`` so the dataset, the ensemble and MOPO's seeds are reused.

  python -m experiments.augwm.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo] \
      [--no_context_augmentations=rad,rans,das] [--dataset=vd4rl/cheetah_run/medium/state]

With ``--dataset`` (a directory or a catalog name of ``benchmarks.datasets``) the agents train on
that dataset instead of the SAC replay; ``experiments.augwm.table1`` gathers such runs over
dataset types into the paper's table 1.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List, Sequence

from absl import app
from absl import flags
from absl import logging

from benchmarks.shifts.oracle import OracleContext
from experiments import zero_shot
from experiments.configs import augwm as augwm_configs
from experiments.configs import mopo as mopo_configs
from worldmodels.provenance import git_revision
from worldmodels.agents.augwm.context import AugWMPolicy


def _context_policy(mode: str):
  return lambda agent: AugWMPolicy(agent, mode=mode)


def _oracle_policy(task: str):
  """The true z of the test dynamics, measured against an unshifted simulator twin."""
  return lambda agent: AugWMPolicy(agent, mode="oracle", oracle=OracleContext(
      task, agent.config.z_low, agent.config.z_high))


MOPO_PAPER_UPDATES, AUGWM_PAPER_UPDATES = 400_000, 900_000  # AugWM paper table 4


def agent_runs(common: zero_shot.CommonFlags, steps: int,
               no_context: Sequence[str] = ()) -> List[zero_shot.AgentRun]:
  """MOPO, AugWM (DAS, context; rows: default, learned and oracle context) and, for each of
  ``no_context``, that augmentation without context: the runs every AugWM experiment shares
  (same stages, so a shared workdir trains each seed once). ``steps``: the ``--steps`` flag."""
  mopo_steps = common.steps(steps, MOPO_PAPER_UPDATES)
  augwm_steps = common.steps(steps, AUGWM_PAPER_UPDATES)

  def augwm(augmentation: str, use_context: bool):
    def configure(c):
      common.model_based(c)
      c.agent.augmentation, c.agent.use_context = augmentation, use_context
    return configure

  runs = [
      zero_shot.AgentRun("mopo", mopo_configs, mopo_steps, {"MOPO": zero_shot.default_policy},
                        common.model_based, needs_model=True),
      zero_shot.AgentRun("augwm-das-context", augwm_configs, augwm_steps,
                        {"AugWM (DAS, default context)": _context_policy("default"),
                         "AugWM (DAS, learned context)": _context_policy("learned"),
                         "AugWM (DAS, oracle context)": _oracle_policy(common.task.value)},
                        augwm("das", True), needs_model=True),
  ]
  for augmentation in no_context:
    runs.append(zero_shot.AgentRun(f"augwm-{augmentation}-nocontext", augwm_configs, augwm_steps,
                                  {f"{augmentation.upper()} (no context)":
                                   _context_policy("none")},
                                  augwm(augmentation, False), needs_model=True))
  return runs


def main(argv, common: zero_shot.CommonFlags, steps_flag, no_context,
         program: str = "experiments.augwm.run"):
  """Runs the experiment with the parsed flags; ``program`` is named in RESULTS.md."""
  del argv
  logging.set_verbosity(logging.WARNING)
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  size, dataset, model = inputs.sizes, inputs.dataset, inputs.model
  runs = agent_runs(common, steps_flag.value, no_context.value)
  factors = common.grid_factors()
  unshifted, grids, linear_r2 = zero_shot.run_agents(common.task.value, inputs,
                                                     common.workdir.value, runs, factors)
  comparisons = [(row, "MOPO") for row in grids if row != "MOPO"]
  source = (f"the dm_control {common.task.value} dataset `{common.dataset.value}`"
            if common.dataset.value else f"a dm_control {common.task.value} SAC replay dataset")
  h, lam = mopo_configs.TABLE3[common.preset.value]
  mopo_steps, augwm_steps = runs[0].steps, runs[1].steps
  rollout_batch = (mopo_configs.get_config("default").agent.rollout_batch_size
                   if common.paper_scale.value else common.rollout_batch.value)
  settings = (
      f"Mass and damping factors {factors}. Both agents: (h, lambda) = ({h}, {lam}) (AugWM "
      f"table 3, {common.preset.value}), {rollout_batch} rollout starts every 1000 updates, 5% "
      f"real data, SAC 256x256; MOPO {mopo_steps}, AugWM {augwm_steps} updates per seed. AugWM: "
      "DAS with z ~ U[0.5, 1.5]^|S| per transition, context appended to actor and critic "
      "inputs; learned context after k = 300 steps, clipped to [0.93, 1.07]; oracle context: "
      "the true per-dimension scale of the test dynamics against an unshifted simulator twin, "
      "clipped to [0.5, 1.5]. ")
  if common.paper_scale.value:
    settings += f"Paper scale (AugWM table 4): {size.seeds} seeds, {source}."
  else:
    settings += (
        f"Reduced from the paper to fit a 2-core CPU: {source} instead of D4RL HalfCheetah, the "
        f"ensemble capped at {common.model_epochs.value} epochs, {augwm_steps // 1000}k instead "
        f"of 900k AugWM ({mopo_steps // 1000}k instead of 400k MOPO) updates, "
        f"{rollout_batch // 1000}k instead of 50k rollout starts, a {len(factors)} x "
        f"{len(factors)} instead of 7 x 7 grid, {size.seeds} instead of 5 seeds.")
  table = zero_shot.write_results(
      common.results_dir.value,
      f"AugWM vs MOPO on {common.task.value} (zero-shot mass x damping)",
      f"python -m {program} " + " ".join(sys.argv[1:]), revision, started,
      common.task.value, size, dataset, model, unshifted, grids, comparisons, settings,
      linear_r2)
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.dirname(os.path.abspath(__file__)))
  _STEPS = flags.DEFINE_integer("steps", 30_000, "MOPO / AugWM updates per seed.")
  _NO_CONTEXT = flags.DEFINE_list(
      "no_context_augmentations", [], "Also train these augmentations without context "
      "(rad, rans, das).")
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(lambda argv: main(argv, _COMMON, _STEPS, _NO_CONTEXT))
