r"""MOPO baseline experiment (issue 4): dataset -> ensemble -> MOPO / TD3+BC / BC over seeds ->
unshifted returns and a zero-shot mass x damping grid. Writes ``RESULTS.md``, heatmaps and
``results.json`` beside this file (or ``--results_dir``).

  python -m experiments.mopo.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo]

Stages are resumable: each is skipped (or resumed from checkpoints) when its output exists.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
from absl import logging

from experiments import zero_shot
from experiments.configs import bc as bc_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import td3bc as td3bc_configs
from worldmodels.provenance import git_revision


def main(argv, common: zero_shot.CommonFlags, mopo_steps, td3bc_steps, bc_steps):
  del argv
  logging.set_verbosity(logging.WARNING)
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  size, dataset, model = inputs.sizes, inputs.dataset, inputs.model
  runs = [
      zero_shot.AgentRun("mopo", mopo_configs, common.steps(mopo_steps.value),
                        {"MOPO": zero_shot.default_policy}, common.model_based, needs_model=True),
      zero_shot.AgentRun("td3bc", td3bc_configs, common.steps(td3bc_steps.value),
                        {"TD3+BC": zero_shot.default_policy}),
      zero_shot.AgentRun("bc", bc_configs, common.steps(bc_steps.value),
                        {"BC": zero_shot.default_policy}),
  ]
  factors = common.grid_factors()
  unshifted, grids, linear_r2 = zero_shot.run_agents(common.task.value, inputs,
                                                     common.workdir.value, runs, factors)
  h, lam = mopo_configs.TABLE3[common.preset.value]
  table = zero_shot.write_results(
      common.results_dir.value,
      f"MOPO baseline on {common.task.value} (zero-shot mass x damping)",
      "python -m experiments.mopo.run " + " ".join(sys.argv[1:]), revision, started,
      common.task.value, size, dataset, model, unshifted, grids, [("MOPO", "TD3+BC")],
      f"Mass and damping factors {factors}. MOPO: (h, lambda) = ({h}, {lam}) (AugWM table 3, "
      f"{common.preset.value}), penalty max aleatoric std norm, {common.rollout_batch.value} "
      "rollout starts every 1000 updates, model buffer of 5 rollout batches, 5% real data, SAC "
      f"256x256, {mopo_steps.value} updates. TD3+BC {td3bc_steps.value} updates, BC "
      f"{bc_steps.value} updates (256x256, batch 256). Reduced from the paper to fit a 2-core "
      "CPU: a dm_control cheetah-run replay dataset instead of D4RL HalfCheetah, 30k instead of "
      "400k MOPO updates, 10k instead of 50k rollout starts, a 3 x 3 instead of 7 x 7 grid, 3 "
      "instead of 5 seeds.", linear_r2)
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.dirname(os.path.abspath(__file__)))
  _MOPO_STEPS = flags.DEFINE_integer("mopo_steps", 30_000, "MOPO updates per seed.")
  _TD3BC_STEPS = flags.DEFINE_integer("td3bc_steps", 20_000, "TD3+BC updates per seed.")
  _BC_STEPS = flags.DEFINE_integer("bc_steps", 10_000, "BC updates per seed.")
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(lambda argv: main(argv, _COMMON, _MOPO_STEPS, _TD3BC_STEPS, _BC_STEPS))
