r"""The AugWM paper's oracle experiment (issue 17): AugWM trained with the true ``z`` of one
target environment, against MOPO and AugWM (DAS, context), in that environment.

  python -m experiments.augwm.oracle --task=HalfCheetah-v5 --dataset=d4rl/halfcheetah/medium \
      --preset=halfcheetah-medium [--target_mass=1.5] [--target_damping=1.5] \
      [--workdir=runs/mopo] [--publish]

The true ``z = delta* / delta`` of the target (mass and damping scaled, 1.5 x each as in the
paper) is measured once on the dataset's recorded transitions: each start state is replayed
with its action in the target and in the default simulator, and ``z_d`` is the least-squares
ratio of the two state changes (``benchmarks.shifts.oracle.true_scale``). The oracle agent is
AugWM (DAS, context) trained with that one ``z`` on every transition instead of
``z ~ U[0.5, 1.5]^|S|``, acting with it as its context. It shares the MOPO and AugWM runs of
``experiments.augwm.run`` in the same ``--workdir``. Rows, each on the default dynamics and the
target: MOPO; AugWM with the default, learned and test-time oracle context; the oracle agent.
Results: ``<workdir>/results/oracle`` (``--publish``: ``experiments/augwm/oracle/``).
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags
import numpy as np

from benchmarks.shifts import grid
from benchmarks.shifts.oracle import true_scale
from experiments import cli
from experiments import zero_shot
from experiments.augwm import run as augwm_run
from experiments.configs import augwm as augwm_configs
from experiments.configs import zero_shot as size_configs
from worldmodels.data import load_dataset
from worldmodels.errors import ConfigError
from worldmodels.provenance import git_revision

_MASS = flags.DEFINE_float("target_mass", 1.5, "Mass factor of the target environment.")
_DAMPING = flags.DEFINE_float("target_damping", 1.5, "Damping factor of the target.")
_TRANSITIONS = flags.DEFINE_integer("oracle_transitions", 5000,
                                    "Dataset transitions replayed to measure the true z.")

ORACLE_ROW = "Oracle (AugWM trained with the true z)"


def measure_true_z(task: str, dataset: str, target, low: float, high: float,
                   transitions: int, action_repeat: int) -> np.ndarray:
  """The target's true z on ``transitions`` of the dataset's transitions (seed 0)."""
  if transitions < 1:
    raise ConfigError(f"--oracle_transitions={transitions}: expected at least 1.")
  steps, _ = load_dataset(dataset, observation_keys=None)
  if "physics" not in steps.observation:
    raise ConfigError(f"--dataset={dataset} records no 'physics' observation; the true z is "
                      "measured by replaying recorded simulator states (regenerate the dataset "
                      "with benchmarks.datasets).")
  starts = np.flatnonzero(~np.asarray(steps.is_last))
  pick = np.sort(np.random.default_rng(0).choice(starts, min(transitions, starts.size),
                                                 replace=False))
  return true_scale(task, target, np.asarray(steps.observation["state"])[pick],
                    np.asarray(steps.observation["physics"])[pick],
                    np.asarray(steps.action)[pick], low, high, action_repeat)


def main(argv, common: zero_shot.CommonFlags):
  del argv
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  sizes = inputs.sizes
  (target,) = grid([_MASS.value], [_DAMPING.value])
  base = augwm_configs.get_config(sizes.stage_preset).agent
  z = [round(float(v), 4) for v in measure_true_z(
      common.task.value, inputs.dataset, target, base.z_low, base.z_high, _TRANSITIONS.value,
      inputs.action_repeat())]
  print(f"== true z of {target.name}: {z}", flush=True)
  runs = augwm_run.agent_runs(common, inputs)

  def oracle(c):
    common.model_based(c)
    c.agent.augmentation, c.agent.use_context = "das", True
    c.agent.train_z = tuple(z)

  runs.append(zero_shot.AgentRun(
      zero_shot.model_based_stage(f"augwm-das-true-z-{zero_shot.slug(target.name)}", sizes),
      augwm_configs,
      size_configs.augwm_updates(sizes),
      {ORACLE_ROW: augwm_run.context_policy("default", inputs.episode_steps(common.task.value))},
      oracle, needs_model=True))
  unshifted, results, linear_r2 = zero_shot.run_agents(
      common.task.value, inputs, common.workdir.value, runs, settings=[target], tag="oracle")
  comparisons = [(row, "MOPO") for row in results if row != "MOPO"]
  comparisons.append((ORACLE_ROW, "AugWM (DAS, learned context)"))
  text = (augwm_run.settings_text(common, inputs, runs[:2], [_MASS.value])
          + f" Oracle agent: AugWM (DAS, context) trained with the true z of {target.name} on "
          f"every transition, measured on {_TRANSITIONS.value} dataset transitions replayed in "
          f"the target and the default simulator (clipped to [{base.z_low}, {base.z_high}]): "
          f"{z}; it acts with that z as its context.")
  table = zero_shot.write_results(
      common.output_dir(), f"AugWM's oracle experiment on {common.task.value}: {target.name}",
      "python -m experiments.augwm.oracle " + " ".join(sys.argv[1:]), revision, started,
      common.task.value, sizes, inputs.dataset, inputs.model, unshifted, results, comparisons,
      text, linear_r2)
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "oracle"))
  flags.adopt_module_key_flags(zero_shot)
  cli.run(lambda argv: main(argv, _COMMON))
