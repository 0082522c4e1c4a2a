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

from experiments import pipeline
from experiments.provenance import git_revision
from experiments.configs import bc as bc_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import td3bc as td3bc_configs

_TASK = flags.DEFINE_string("task", "cheetah-run", "dm_control task.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per offline agent.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/mopo", "Runs, dataset and model.")
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", os.path.dirname(os.path.abspath(__file__)), "Where results are written.")
_SAC_STEPS = flags.DEFINE_integer("sac_steps", 40_000, "Env steps of the behaviour SAC.")
_MOPO_STEPS = flags.DEFINE_integer("mopo_steps", 30_000, "MOPO updates per seed.")
_TD3BC_STEPS = flags.DEFINE_integer("td3bc_steps", 20_000, "TD3+BC updates per seed.")
_BC_STEPS = flags.DEFINE_integer("bc_steps", 10_000, "BC updates per seed.")
_MOPO_PRESET = flags.DEFINE_string("mopo_preset", "halfcheetah-mixed",
                                   "Table-3 preset giving MOPO's (h, lambda).")
_ROLLOUT_BATCH = flags.DEFINE_integer("rollout_batch", 10_000, "MOPO rollout starts.")
_FACTORS = flags.DEFINE_list("factors", ["0.5", "1.0", "1.5"], "Mass and damping factors.")
_GRID_EPISODES = flags.DEFINE_integer("grid_episodes", 2, "Episodes per grid cell and seed.")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 10, "Unshifted evaluation episodes.")
_TINY = flags.DEFINE_bool("tiny", False, "Smoke-test sizes (seconds).")
_MODEL_EPOCHS = flags.DEFINE_integer(
    "model_max_epochs", 100, "Cap on ensemble epochs (early stopping may end training sooner).")


def sizes() -> pipeline.Sizes:
  if _TINY.value:
    return pipeline.Sizes("tiny", 200, min(2, _SEEDS.value), 1, 1, 50)
  return pipeline.Sizes("demo", _SAC_STEPS.value, _SEEDS.value, _EVAL_EPISODES.value,
                        _GRID_EPISODES.value, None)


def mopo_settings(c) -> None:
  """Table-3 (h, lambda) and the rollout batch (kept at the tiny preset's sizes when tiny)."""
  if not _TINY.value:
    c.agent.horizon, c.agent.penalty_coef = mopo_configs.TABLE3[_MOPO_PRESET.value]
    c.agent.rollout_batch_size = _ROLLOUT_BATCH.value


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  started, revision = time.time(), git_revision()
  size = sizes()
  steps = (lambda full, tiny: tiny if _TINY.value else full)
  dataset = pipeline.ensure_dataset(_TASK.value, size, _WORKDIR.value)
  model = pipeline.ensure_model(dataset, _WORKDIR.value, _TINY.value, _MODEL_EPOCHS.value)
  runs = [
      pipeline.AgentRun("mopo", mopo_configs, steps(_MOPO_STEPS.value, 40),
                        {"MOPO": pipeline.default_policy}, mopo_settings, needs_model=True),
      pipeline.AgentRun("td3bc", td3bc_configs, steps(_TD3BC_STEPS.value, 40),
                        {"TD3+BC": pipeline.default_policy}),
      pipeline.AgentRun("bc", bc_configs, steps(_BC_STEPS.value, 40),
                        {"BC": pipeline.default_policy}),
  ]
  factors = [float(f) for f in _FACTORS.value]
  unshifted, grids, linear_r2 = pipeline.run_agents(_TASK.value, size, _WORKDIR.value, dataset, model, runs,
                                         factors)
  h, lam = mopo_configs.TABLE3[_MOPO_PRESET.value]
  table = pipeline.write_results(
      _RESULTS_DIR.value, f"MOPO baseline on {_TASK.value} (zero-shot mass x damping)",
      "python -m experiments.mopo.run " + " ".join(sys.argv[1:]), revision, started,
      _TASK.value, size,
      dataset, model, unshifted, grids, [("MOPO", "TD3+BC")],
      f"Mass and damping factors {factors}. MOPO: (h, lambda) = ({h}, {lam}) (AugWM table 3, "
      f"{_MOPO_PRESET.value}), penalty max aleatoric std norm, {_ROLLOUT_BATCH.value} rollout "
      f"starts every 1000 updates, model buffer of 5 rollout batches, 5% real data, SAC 256x256, "
      f"{_MOPO_STEPS.value} updates. TD3+BC {_TD3BC_STEPS.value} updates, BC {_BC_STEPS.value} "
      "updates (256x256, batch 256). Reduced from the paper to fit a 2-core CPU: a dm_control "
      "cheetah-run replay dataset instead of D4RL HalfCheetah, 30k instead of 400k MOPO updates, "
      "10k instead of 50k rollout starts, a 3 x 3 instead of 7 x 7 grid, 3 instead of 5 seeds.")
  print(table)


if __name__ == "__main__":
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(main)
