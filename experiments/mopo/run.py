r"""MOPO baseline experiment (issue 4): dataset -> ensemble -> MOPO / TD3+BC / BC over seeds ->
unshifted returns and a zero-shot mass x damping grid. Writes ``RESULTS.md``, heatmaps, an
overview figure and ``results.json`` to ``<workdir>/results/mopo`` (``--results_dir`` elsewhere;
``--publish`` the committed ones beside this file).

  python -m experiments.mopo.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo] [--publish]

Stages are resumable: each is skipped (or resumed from checkpoints) when its output exists.
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags

from experiments import cli
from experiments import zero_shot
from experiments.configs import bc as bc_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import td3bc as td3bc_configs
from experiments.configs import zero_shot as size_configs
from worldmodels.provenance import git_revision


def main(argv, common: zero_shot.CommonFlags):
  del argv
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  sizes = inputs.sizes
  runs = [
      zero_shot.AgentRun(zero_shot.model_based_stage("mopo", sizes), mopo_configs,
                         sizes.mopo_steps, {"MOPO": zero_shot.default_policy}, common.model_based,
                         needs_model=True),
      zero_shot.AgentRun("td3bc", td3bc_configs, sizes.td3bc_steps,
                         {"TD3+BC": zero_shot.default_policy}),
      zero_shot.AgentRun("bc", bc_configs, sizes.bc_steps, {"BC": zero_shot.default_policy}),
  ]
  factors = common.grid_factors()
  unshifted, grids, linear_r2 = zero_shot.run_agents(common.task.value, inputs,
                                                     common.workdir.value, runs, factors)
  mopo, td3bc, bc = (zero_shot.stage_config(run, 0, common.task.value, inputs,
                                            common.workdir.value).agent for run in runs)
  paper = size_configs.get_config("paper")
  table = zero_shot.write_results(
      common.output_dir(),
      f"MOPO baseline on {common.task.value} (zero-shot mass x damping)",
      "python -m experiments.mopo.run " + " ".join(sys.argv[1:]), revision, started,
      common.task.value, sizes, inputs.dataset, inputs.model, unshifted, grids,
      [("MOPO", "TD3+BC")],
      f"Mass and damping factors {factors}. MOPO: (h, lambda) = ({mopo.horizon}, "
      f"{mopo.penalty_coef})"
      + (f" (AugWM table 3, {common.preset.value})" if sizes.table3 else "")
      + f", penalty {mopo.penalty}, {mopo.rollout_batch_size} rollout starts every "
      f"{mopo.rollout_every} updates, model buffer of {mopo.model_retain_epochs} rollout "
      f"batches, {mopo.real_ratio:.0%} real data, SAC {'x'.join(map(str, mopo.sac.hidden_sizes))}, "
      f"{mopo.num_steps} updates. TD3+BC {td3bc.num_steps} updates, BC {bc.num_steps} updates "
      f"({'x'.join(map(str, td3bc.hidden_sizes))}, batch {td3bc.batch_size}). Sizes: the "
      f"`{sizes.preset}` preset of experiments/configs/zero_shot.py and the flags given."
      + ("" if sizes.preset == "paper" else
         f" Reduced from the paper to fit a 2-core CPU: a dm_control {common.task.value} "
         f"dataset instead of D4RL HalfCheetah, {mopo.num_steps // 1000}k instead of "
         f"{paper.mopo_steps // 1000}k MOPO updates, a {len(factors)} x {len(factors)} instead "
         f"of 7 x 7 grid, {sizes.seeds} instead of {paper.seeds} seeds."), linear_r2)
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.dirname(os.path.abspath(__file__)))
  flags.adopt_module_key_flags(zero_shot)  # --help lists the shared flags
  cli.run(lambda argv: main(argv, _COMMON))
