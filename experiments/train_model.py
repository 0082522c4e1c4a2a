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
import jax
import numpy as np
from ml_collections import config_flags

from worldmodels.data import DatasetError, load_dataset
from worldmodels.data.samplers import all_transitions
from worldmodels.models import ensemble as ens
from worldmodels.models.artifacts import ModelArtifactError, save_ensemble


def run(config) -> dict:
  """Trains, saves and reports; returns the report as a dict."""
  if not config.dataset.path:
    raise ValueError("--config.dataset.path is required (an episodic dataset directory).")
  if not config.output:
    raise ValueError("--config.output is required (a new directory for the model artifact).")
  if os.path.exists(config.output):
    raise ModelArtifactError(f"{config.output}: already exists; artifacts are never overwritten.")
  steps, metadata = load_dataset(config.dataset.path,
                                 observation_keys=(config.dataset.observation_key,))
  state, action, reward, next_state, discount = all_transitions(
      steps, config.dataset.observation_key)
  model_def = ens.Ensemble(state.shape[1], action.shape[1], config.model)
  start = time.time()
  model, report = ens.train_ensemble(model_def, jax.random.PRNGKey(config.seed), state, action,
                                     reward, next_state, terminal=discount == 0.0, verbose=True)
  summary = {"epochs": report.epochs, "holdout_mse": report.holdout_mse,
             "holdout_nll": report.holdout_nll, "elites": report.elites,
             "elite_mse_per_dim": report.mse_per_dim, "elite_calibration": report.calibration,
             "train_seconds": time.time() - start, "transitions": int(state.shape[0])}
  save_ensemble(config.output, model_def, model, report=summary,
                provenance={"dataset": os.path.abspath(config.dataset.path),
                            "task": metadata.get("task"), "seed": config.seed})
  np.set_printoptions(precision=4, suppress=True)
  print(f"trained {config.model.num_members} members for {report.epochs} epochs on "
        f"{state.shape[0]} transitions in {summary['train_seconds']:.0f} s")
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
