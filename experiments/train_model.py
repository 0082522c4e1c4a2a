r"""Trains a world model on an episodic dataset and saves it as an artifact.

  python -m experiments.train_model --config=experiments/configs/ensemble.py:default \
      --config.dataset.path=PATH --config.output=OUT

Prints the holdout report at the end (per-member MSE and NLL, elites, per-dimension MSE and
variance calibration of the elites).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import logging
import numpy as np
from ml_collections import config_flags

from worldmodels.data import DatasetError
from worldmodels.data.source import DataSource
from worldmodels.models.artifacts import ModelArtifactError, save_model
from worldmodels.models.ensemble_learner import EnsembleLearner
from worldmodels.training.loop import LoopConfig, train


def default_workdir(config) -> str:
  """Checkpoints and per-epoch logs of the training: beside the artifact, ``<output>.train``."""
  return config.workdir or os.path.abspath(config.output) + ".train"


def run(config, source: DataSource | None = None) -> dict:
  """Trains (resuming from the workdir's checkpoints), saves and reports; returns the report.

  Args:
    config: the model launcher config.
    source: the data source of ``config.dataset.path``, already loaded (default: loaded here).
  """
  if not config.dataset.path:
    raise ValueError("--config.dataset.path is required (an episodic dataset directory).")
  if not config.output:
    raise ValueError("--config.output is required (a new directory for the model artifact).")
  if os.path.exists(config.output):
    raise ModelArtifactError(f"{config.output}: already exists; artifacts are never overwritten.")
  source = source or DataSource.load(config.dataset.path,
                                     observation_keys=(config.dataset.observation_key,))
  learner = EnsembleLearner.from_source(config.model, source,
                                        observation_key=config.dataset.observation_key)
  workdir = default_workdir(config)
  loop = LoopConfig(steps_per_chunk=learner.num_batches, eval_every=0, eval_episodes=0,
                    checkpoint_every=config.checkpoint_every_epochs * learner.num_batches,
                    seed=config.seed, max_to_keep=2, log_every_seconds=config.log_every_seconds)
  start = time.time()
  state = train(learner, workdir=workdir, loop=loop, data=source).state
  model, report = learner.trained_model(state), learner.report(state)
  summary = dict(report.as_dict(), train_seconds=time.time() - start)
  metadata = source.metadata()
  save_model(config.output, learner.ensemble, model, report=summary,
             provenance={"dataset": metadata.get("path", config.dataset.path),
                         "task": metadata.get("task"), "seed": config.seed,
                         "workdir": workdir})
  np.set_printoptions(precision=4, suppress=True)
  print(f"trained {config.model.num_members} members for {report.epochs} epochs on "
        f"{report.transitions} transitions in {summary['train_seconds']:.0f} s")
  print(f"holdout MSE per member: {report.holdout_mse}")
  print(f"holdout NLL per member: {report.holdout_nll}")
  print(f"elites: {report.elites}")
  print(f"elites' holdout MSE per dim (delta_s..., r): {report.mse_per_dim}")
  print(f"elites' calibration MSE/predicted var per dim (1 = calibrated): {report.calibration}")
  print(f"saved {os.path.abspath(config.output)}")
  return summary


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=experiments/configs/ensemble.py")
  logging.set_verbosity(logging.WARNING)
  try:
    run(_CONFIG.value)
  except (DatasetError, ModelArtifactError, ValueError) as error:
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  # Flags are defined only when this module is the program, so experiments can import its
  # functions next to other launchers.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "Model config: experiments/configs/ensemble.py:<preset>.", lock_config=True)
  app.run(main)
