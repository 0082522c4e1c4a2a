r"""Trains a world model on an episodic dataset and saves it as an artifact.

  python -m experiments.train_model --config=experiments/configs/ensemble.py:default \
      --config.dataset.path=PATH --config.output=OUT
  python -m experiments.train_model --config=experiments/configs/rssm.py:cpu \
      --config.dataset.path=vd4rl/walker_walk/random/state --config.output=OUT
  python -m experiments.train_model --config=experiments/configs/cadm.py:tiny \
      --config.dataset.path=PATH --config.output=OUT

Training is a phase of the common loop, with checkpoints and per-epoch logs in
``<output>.train`` (``--config.workdir``): a rerun of the same command resumes, a workdir made
for another dataset or config is refused. Prints the holdout report at the end (per-member MSE
and NLL, elites, per-dimension MSE and variance calibration of the elites). The dataset may be a
directory or a catalog name. On several devices, ``--config.mesh.members=<n>`` splits the
members over ``n`` of them (the numbers equal a one-device run's).
"""

from __future__ import annotations

import os
import time

from absl import app
import numpy as np

from benchmarks.datasets import catalog
from experiments import cli
from experiments.train import mesh_from_config
from worldmodels import parallel, provenance
from worldmodels.data.source import DataSource
from worldmodels.errors import ConfigError
from worldmodels.agents.cadm.learner import CaDMLearner
from worldmodels.models.artifacts import ModelArtifactError, save_model
from worldmodels.models.ensemble_learner import EnsembleLearner
from worldmodels.models.rssm_learner import RSSMLearner
from worldmodels.training.loop import LoopConfig, train


def default_workdir(config) -> str:
  """Checkpoints and per-epoch logs of the training: beside the artifact, ``<output>.train``."""
  return config.workdir or os.path.abspath(config.output) + ".train"


def model_fingerprint(config, source: DataSource) -> dict:
  """What makes an artifact: the model config and seed, the dataset's identity, the code."""
  values = config.to_dict()
  for key in ("output", "workdir", "log_every_seconds", "mesh"):
    values.pop(key, None)
  identities = []
  for name in source.names:
    metadata = source.metadata(name)
    identities.append({
        "path": metadata.get("path"),
        "digest": provenance.file_digest(os.path.join(metadata["path"], "metadata.json"))})
  return provenance.fingerprint(config=values, dataset=identities[0] if len(identities) == 1
                                else identities)


def load_source(config) -> DataSource:
  """The data source of ``config.dataset`` with the entries the model reads: one dataset, or
  several when ``dataset.path`` is a comma-separated list (each named by its path; for models
  that train on many, e.g. CaDM on the scenarios of one embodiment)."""
  keys = (config.dataset.observation_keys if "observation_keys" in config.dataset
          else (config.dataset.observation_key,))
  paths = [p for p in config.dataset.path.split(",") if p]
  if len(paths) > 1 and config.model_name != "cadm":
    raise ConfigError(f"--config.dataset.path lists {len(paths)} datasets; the "
                      f"{config.model_name} model trains on one.")
  resolved = {path: catalog.dataset_path(path, config.dataset.root) for path in paths}
  return DataSource.load(resolved if len(paths) > 1 else resolved[paths[0]],
                         observation_keys=tuple(keys))


def _ensemble_learner(config, source: DataSource):
  """The ensemble's learner and loop settings (one epoch per chunk)."""
  learner = EnsembleLearner.from_source(config.model, source,
                                        observation_key=config.dataset.observation_key)
  if config.mesh.members > 1 and config.model.num_members % config.mesh.members:
    raise ConfigError(f"--config.mesh.members={config.mesh.members} does not divide the "
                      f"{config.model.num_members} ensemble members.")
  loop = dict(steps_per_chunk=learner.num_batches,
              checkpoint_every=config.checkpoint_every_epochs * learner.num_batches)
  return learner, learner.ensemble, loop


def _rssm_learner(config, source: DataSource):
  """The RSSM's learner and loop settings."""
  learner = RSSMLearner.from_source(config.model, source,
                                    observation_keys=tuple(config.dataset.observation_keys))
  loop = dict(steps_per_chunk=config.steps_per_chunk, checkpoint_every=config.checkpoint_every)
  return learner, learner.model, loop


def _cadm_learner(config, source: DataSource):
  """CaDM's learner and loop settings."""
  learner = CaDMLearner.from_source(config.model, source)
  loop = dict(steps_per_chunk=config.steps_per_chunk, checkpoint_every=config.checkpoint_every)
  return learner, learner.model, loop


LEARNERS = {"ensemble": _ensemble_learner, "rssm": _rssm_learner, "cadm": _cadm_learner}


def run(config, source: DataSource | None = None) -> dict:
  """Trains (resuming from the workdir's checkpoints), saves and reports; returns the report.

  Args:
    config: the model launcher config (``model_name``: ``ensemble``, ``rssm`` or ``cadm``).
    source: the data source of ``config.dataset.path``, already loaded (default: loaded here).
  """
  if not config.dataset.path:
    raise ConfigError("--config.dataset.path is required (an episodic dataset directory or a "
                      "catalog name).")
  if not config.output:
    raise ConfigError("--config.output is required (a new directory for the model artifact).")
  if os.path.exists(config.output):
    raise ModelArtifactError(f"{config.output}: already exists; artifacts are never overwritten.")
  if config.model_name not in LEARNERS:
    raise ConfigError(f"--config.model_name={config.model_name!r}: choose one of "
                      f"{sorted(LEARNERS)}.")
  source = source or load_source(config)
  try:
    learner, definition, loop_settings = LEARNERS[config.model_name](config, source)
  except ValueError as error:
    raise ConfigError(f"--config.dataset.path={config.dataset.path}: {error}") from None
  workdir = default_workdir(config)
  fingerprint = model_fingerprint(config, source)
  loop = LoopConfig(eval_every=0, eval_episodes=0, seed=config.seed, max_to_keep=2,
                    log_every_seconds=config.log_every_seconds, **loop_settings)
  start = time.time()
  state = train(learner, workdir=workdir, loop=loop, data=source, fingerprint=fingerprint,
                mesh=mesh_from_config(config.mesh)).state
  state = parallel.to_host(state)  # several hosts: every process gets the whole state
  if config.model_name == "ensemble":
    model, report = learner.trained_model(state), learner.report(state)
    summary = dict(report.as_dict(), train_seconds=time.time() - start)
  else:
    model, report = learner.trained_model(state), None
    summary = dict(learner.report(state, source), train_seconds=time.time() - start)
  paths = [source.metadata(name).get("path", name) for name in source.names]
  tasks = list(dict.fromkeys(source.metadata(name).get("task") for name in source.names))
  if not parallel.is_primary():  # process 0 writes the artifact
    parallel.barrier("artifact saved")
    return summary
  save_model(config.output, definition, model, report=summary,
             provenance={"dataset": paths[0] if len(paths) == 1 else paths,
                         "task": tasks[0] if len(tasks) == 1 else tasks, "seed": config.seed,
                         "workdir": workdir, "fingerprint": fingerprint})
  if report is not None:
    _print_ensemble_report(config, report, summary)
  else:
    print(f"trained the {config.model_name} model for {summary['steps']} updates in "
          f"{summary['train_seconds']:.0f} s; "
          "final model loss terms (8 batches): " + ", ".join(
              f"{k} {v:.4g}" for k, v in summary.items() if k not in ("steps", "train_seconds")))
  print(f"saved {os.path.abspath(config.output)}")
  parallel.barrier("artifact saved")
  return summary


def _print_ensemble_report(config, report, summary) -> None:
  np.set_printoptions(precision=4, suppress=True)
  print(f"trained {config.model.num_members} members for {report.epochs} epochs on "
        f"{report.transitions} transitions in {summary['train_seconds']:.0f} s")
  print(f"holdout MSE per member: {report.holdout_mse}")
  print(f"holdout NLL per member: {report.holdout_nll}")
  print(f"elites: {report.elites}")
  print(f"elites' holdout MSE per dim (delta_s..., r): {report.mse_per_dim}")
  print(f"elites' calibration MSE/predicted var per dim (1 = calibrated): {report.calibration}")


def main(argv):
  del argv
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=experiments/configs/ensemble.py")
  run(_CONFIG.value)


if __name__ == "__main__":
  # Flags are defined only when this module is the program, so experiments can import its
  # functions next to other launchers.
  _CONFIG = cli.define_config_flag("Model config: experiments/configs/ensemble.py:<preset>; "
                                   "override any field with --config.<key>=<value>.")
  cli.run(main)
