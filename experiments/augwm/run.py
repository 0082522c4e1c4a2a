r"""AugWM experiments (issue 5) on the MOPO pipeline: MOPO vs AugWM (DAS, context) with the
default and the learned test-time context, and optionally RAD / RANS / DAS without context
(figure 6), over seeds, on a zero-shot mass x damping grid. Shares ``--workdir`` with
``experiments.mopo.run`` so the dataset, the ensemble and MOPO's seeds are reused.

  python -m experiments.augwm.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo] \
      [--augmentations=das]          # add rad,rans for the no-context comparison (figure 6)
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
from experiments.configs import augwm as augwm_configs
from experiments.configs import mopo as mopo_configs
from worldmodels.agents.augwm.context import AugWMPolicy

_TASK = flags.DEFINE_string("task", "cheetah-run", "dm_control task.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per agent.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/mopo", "Shared with experiments.mopo.run.")
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", os.path.dirname(os.path.abspath(__file__)), "Where results are written.")
_SAC_STEPS = flags.DEFINE_integer("sac_steps", 40_000, "Env steps of the behaviour SAC.")
_STEPS = flags.DEFINE_integer("steps", 30_000, "MOPO / AugWM updates per seed.")
_PRESET = flags.DEFINE_string("preset", "halfcheetah-mixed", "Table-3 (h, lambda) preset.")
_ROLLOUT_BATCH = flags.DEFINE_integer("rollout_batch", 10_000, "Rollout starts.")
_NO_CONTEXT = flags.DEFINE_list("no_context_augmentations", [],
                                "Also train these augmentations without context (rad,rans,das).")
_FACTORS = flags.DEFINE_list("factors", ["0.5", "1.0", "1.5"], "Mass and damping factors.")
_GRID_EPISODES = flags.DEFINE_integer("grid_episodes", 2, "Episodes per grid cell and seed.")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 10, "Unshifted evaluation episodes.")
_TINY = flags.DEFINE_bool("tiny", False, "Smoke-test sizes (seconds).")
_MODEL_EPOCHS = flags.DEFINE_integer(
    "model_max_epochs", 100, "Cap on ensemble epochs (early stopping may end training sooner).")


def _model_based(c) -> None:
  if not _TINY.value:
    c.agent.horizon, c.agent.penalty_coef = mopo_configs.TABLE3[_PRESET.value]
    c.agent.rollout_batch_size = _ROLLOUT_BATCH.value


def _augwm(augmentation: str, use_context: bool):
  def configure(c):
    _model_based(c)
    c.agent.augmentation, c.agent.use_context = augmentation, use_context
  return configure


def _context_policy(mode: str):
  return lambda agent, state: AugWMPolicy(agent, state, mode=mode)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  started, revision = time.time(), git_revision()
  size = (pipeline.Sizes("tiny", 200, min(2, _SEEDS.value), 1, 1, 50) if _TINY.value else
          pipeline.Sizes("demo", _SAC_STEPS.value, _SEEDS.value, _EVAL_EPISODES.value,
                         _GRID_EPISODES.value, None))
  steps = 40 if _TINY.value else _STEPS.value
  dataset = pipeline.ensure_dataset(_TASK.value, size, _WORKDIR.value)
  model = pipeline.ensure_model(dataset, _WORKDIR.value, _TINY.value, _MODEL_EPOCHS.value)
  runs = [
      pipeline.AgentRun("mopo", mopo_configs, steps, {"MOPO": pipeline.default_policy},
                        _model_based, needs_model=True),
      pipeline.AgentRun("augwm-das-context", augwm_configs, steps,
                        {"AugWM (DAS, default context)": _context_policy("default"),
                         "AugWM (DAS, learned context)": _context_policy("learned")},
                        _augwm("das", True), needs_model=True),
  ]
  for augmentation in _NO_CONTEXT.value:
    runs.append(pipeline.AgentRun(f"augwm-{augmentation}-nocontext", augwm_configs, steps,
                                  {f"{augmentation.upper()} (no context)":
                                   _context_policy("none")},
                                  _augwm(augmentation, False), needs_model=True))
  factors = [float(f) for f in _FACTORS.value]
  unshifted, grids, linear_r2 = pipeline.run_agents(_TASK.value, size, _WORKDIR.value, dataset, model, runs,
                                         factors)
  comparisons = [(row, "MOPO") for row in grids if row != "MOPO"]
  h, lam = mopo_configs.TABLE3[_PRESET.value]
  table = pipeline.write_results(
      _RESULTS_DIR.value, f"AugWM vs MOPO on {_TASK.value} (zero-shot mass x damping)",
      "python -m experiments.augwm.run " + " ".join(sys.argv[1:]), revision, started,
      _TASK.value, size,
      dataset, model, unshifted, grids, comparisons,
      f"Mass and damping factors {factors}. Both agents: (h, lambda) = ({h}, {lam}) (AugWM "
      f"table 3, {_PRESET.value}), {_ROLLOUT_BATCH.value} rollout starts every 1000 updates, "
      f"5% real data, SAC 256x256, {steps} updates per seed. AugWM: DAS with z ~ U[0.5, 1.5]^|S| "
      "per transition, context appended to actor and critic inputs; learned context after "
      "k = 300 steps, clipped to [0.93, 1.07]. Reduced from the paper to fit a 2-core CPU: a "
      "dm_control cheetah-run replay dataset instead of D4RL HalfCheetah, 30k instead of 900k "
      "AugWM (400k MOPO) updates, 10k instead of 50k rollout starts, a 3 x 3 instead of 7 x 7 "
      "grid, 3 instead of 5 seeds.", linear_r2)
  print(table)


if __name__ == "__main__":
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(main)
