r"""Trains any registered agent: online in a dm_control task, or offline on an episodic dataset.

  python -m experiments.train --config=experiments/configs/<agent>.py:<preset> [--config.x=...]

Examples:
  python -m experiments.train --config=experiments/configs/sac.py:tiny \
      --config.save_replay=/tmp/replay
  python -m experiments.train --config=experiments/configs/td3bc.py:tiny \
      --config.dataset.path=/tmp/replay

A rerun of the same command resumes from the last checkpoint. The default workdir,
``runs/<agent>-<task>-seed<seed>-<digest>``, is named after what makes the run (its config,
dataset and model), and a workdir holding another run is refused, naming what differs.
Offline agents evaluate on the task their dataset records unless ``--config.env.task`` names
another task with the same observation and action sizes. ``--print_config`` lists every field.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

from absl import app
import jax
import ml_collections
import numpy as np

from benchmarks.datasets import catalog
from experiments import cli
from benchmarks.envs import GYM_TASKS, make_env_factory, make_gym_env_factory
from worldmodels import parallel, provenance
from worldmodels.agents import make_agent
from worldmodels.data import format_statistics_table, write_dataset
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_text
from worldmodels.provenance import file_digest
from worldmodels.training.logging import read_jsonl
from worldmodels.training.loop import LoopConfig, TrainResult, train


def env_factory_from_config(config: ml_collections.ConfigDict, task: str):
  """Single-frame environments of ``task`` with ``config.env``'s settings (frame stacks are
  the agent's: its spec); gymnasium MuJoCo tasks (``GYM_TASKS``) or dm_control ones."""
  e = config.env
  if task in GYM_TASKS:  # episode_length None: the gymnasium tasks' 1000 steps
    length = {} if e.episode_length is None else {"episode_length": e.episode_length}
    return make_gym_env_factory(task, action_repeat=e.action_repeat, **length)
  return make_env_factory(task, obs_type=e.obs_type, action_repeat=e.action_repeat,
                          image_size=e.image_size, episode_length=e.episode_length)


def run_fingerprint(config: ml_collections.ConfigDict,
                    source: Optional[DataSource]) -> Dict[str, Any]:
  """What makes a run: its config (but where it runs and how often it prints), the identity of
  its dataset and of its world model, and the code version."""
  values = config.to_dict()
  values.pop("workdir", None)
  values.pop("mesh", None)  # where it runs: a run may resume on another device layout
  values["loop"] = {k: v for k, v in values["loop"].items() if k != "log_every_seconds"}
  parts: Dict[str, Any] = {"config": values}
  if source is not None:
    metadata = source.metadata()
    parts["dataset"] = {"path": metadata.get("path"),
                        "digest": file_digest(os.path.join(metadata["path"], "metadata.json"))}
  model_path = config.agent.get("model_path")
  if model_path:
    parts["model"] = {"path": os.path.abspath(model_path),
                      "digest": file_digest(os.path.join(model_path, "model.json"))}
  return provenance.fingerprint(**parts)


def default_workdir(config: ml_collections.ConfigDict, fingerprint: Dict[str, Any]) -> str:
  """``--config.workdir``, or ``runs/<agent>-<task>-seed<seed>-<digest>`` (``seeds<a>-<b>``
  with ``num_seeds``): runs that differ in anything but their workdir never share a default
  one."""
  parts = {k: v for k, v in fingerprint.items() if k != "code"}
  seeds = seeds_of(config)
  name = f"seeds{seeds[0]}-{seeds[-1]}" if seeds else f"seed{config.seed}"
  return config.workdir or os.path.join(
      "runs", f"{config.agent_name}-{config.env.task}-{name}-{provenance.digest(parts)[:8]}")


def seeds_of(config: ml_collections.ConfigDict) -> Optional[Tuple[int, ...]]:
  """The vmapped seeds of ``config`` (``seed .. seed + num_seeds - 1``), None for one seed.

  Raises:
    ConfigError: ``num_seeds`` below 1.
  """
  if config.num_seeds < 1:
    raise ConfigError(f"--config.num_seeds={config.num_seeds}: must be at least 1.")
  if config.num_seeds == 1:
    return None
  return tuple(range(config.seed, config.seed + config.num_seeds))


def mesh_from_config(mesh_config: ml_collections.ConfigDict):
  """The device mesh of ``--config.mesh.*`` (None when every axis is 1: one device).

  Raises:
    ConfigError: sizes that do not multiply to the number of devices.
  """
  sizes = (mesh_config.members, mesh_config.seeds, mesh_config.data)
  if sizes == (1, 1, 1):
    return None
  try:
    return parallel.make_mesh(*sizes)
  except ConfigError as error:
    raise ConfigError(f"--config.mesh.members/seeds/data: {error}") from None


def load_source(config: ml_collections.ConfigDict) -> DataSource:
  """The data source of ``config.dataset`` (a directory or a catalog name; one dataset, the
  frame stack of the config)."""
  path = catalog.dataset_path(config.dataset.path, config.dataset.root)
  return DataSource.load(path, observation_keys=tuple(config.dataset.observation_keys),
                         frame_stack=config.frame_stack)


def agent_vmaps_seeds(agent) -> bool:
  """Whether ``agent``'s seeds can train as one vmapped state: every phase is offline."""
  return all(phase.kind == "offline" for phase in agent.phases())


def run(config: ml_collections.ConfigDict, source: Optional[DataSource] = None) -> Dict[str, Any]:
  """Builds the agent of ``config``, trains it, writes ``summary.json`` in the workdir.

  Returns:
    The summary: final evaluation, evaluations, workdir, and the replay dataset path if saved.
  """
  return run_with_agent(config, source)[0]


def _check_before_training(config: ml_collections.ConfigDict, spec: DataSpec,
                           env_spec: DataSpec, source: Optional[DataSource]) -> None:
  """The mismatches that would otherwise surface after training has started.

  Raises:
    ValueError: the dataset's observations or actions do not fit the evaluation environment,
      or ``save_replay`` already exists (the message names the flag and what was expected).
  """
  if source is not None:
    problems = spec.mismatches(env_spec)
    if problems:
      dataset_task = source.metadata().get("task")
      raise ConfigError(
          f"--config.dataset.path={config.dataset.path} (task {dataset_task!r}) does not fit "
          f"the evaluation environment --config.env.task={config.env.task!r}: "
          + "; ".join(problems) + ". Evaluate on the dataset's own task (leave --config.env.task "
          "unset) or on a task with the same observation and action sizes.")
  if config.save_replay and os.path.exists(config.save_replay):
    raise ConfigError(f"--config.save_replay={config.save_replay}: already exists; datasets are "
                     "never overwritten, so this run would fail after training. Choose a new "
                     "path.")


def resolve_config(config: ml_collections.ConfigDict,
                   source: Optional[DataSource] = None) -> Optional[DataSource]:
  """Fills the fields left to the data: ``env.task`` and ``env.action_repeat`` from the
  dataset's metadata (online agents: ``env.task`` is required, action repeat 2); returns the
  data source (loaded here unless given), None for online agents.

  Raises:
    ConfigError: an online agent without a task, or a dataset that records none.
  """
  if not config.dataset.path:
    if config.env.task is None:
      raise ConfigError(f"agent {config.agent_name!r} trains online: name its environment with "
                        "--config.env.task (e.g. cheetah-run).")
    if config.env.action_repeat is None:
      config.env.action_repeat = 2
    return None
  source = source or load_source(config)
  metadata = source.metadata()
  if config.env.task is None:
    if metadata.get("task") is None:
      raise ConfigError(f"--config.dataset.path={config.dataset.path} records no task; name "
                        "the evaluation environment with --config.env.task.")
    config.env.task = metadata["task"]
  if config.env.action_repeat is None:
    config.env.action_repeat = metadata.get("action_repeat", 2)
  return source


def run_with_agent(config: ml_collections.ConfigDict, source: Optional[DataSource] = None
                   ) -> Tuple[Dict[str, Any], Any, TrainResult]:
  """As :func:`run`, also returning the agent and the :class:`TrainResult` (final state), for
  experiments that evaluate the trained agent further (e.g. on shifted dynamics).

  Args:
    config: the launcher config (unlocked: ``env.task`` is filled in from the dataset).
    source: the data source of ``config.dataset.path``, already loaded (experiments that train
      several agents or seeds on one dataset load it once); default: loaded here.
  """
  if jax.process_count() > 1:
    raise ConfigError("experiments.train runs on one host (its evaluation and replay are "
                      "host-side); on several hosts use experiments.train_model, or the "
                      "library's train(..., mesh=...) as WORKSPACE.md shows.")
  source = resolve_config(config, source)
  spec = source.spec() if source is not None else None
  env_factory = env_factory_from_config(config, config.env.task)
  probe = env_factory(config.seed)
  env_spec = DataSpec.from_environment(probe, frame_stack=config.frame_stack,
                                       task=config.env.task)
  probe.close()
  if source is None:
    spec = env_spec
  _check_before_training(config, spec, env_spec, source)
  agent = make_agent(config.agent_name, config.agent, spec)
  seeds = seeds_of(config)
  if seeds is not None and not agent_vmaps_seeds(agent):
    raise ConfigError(f"--config.num_seeds={config.num_seeds}: agent {config.agent_name!r} "
                      "trains online, one seed per run; run the seeds one by one "
                      "(--config.seed=<k>).")
  fingerprint = run_fingerprint(config, source)
  workdir = default_workdir(config, fingerprint)
  loop = LoopConfig(seed=config.seed, seeds=seeds, **config.loop.to_dict())
  result: TrainResult = train(agent, workdir=workdir, loop=loop, data=source,
                              env_factory=env_factory, fingerprint=fingerprint,
                              mesh=mesh_from_config(config.mesh))
  eval_path = os.path.join(workdir, "eval.jsonl")
  evaluations = read_jsonl(eval_path) if os.path.exists(eval_path) else []  # across resumes
  # The final evaluation: the last row of each seed.
  final = list({row.get("seed", config.seed): row for row in evaluations}.values())
  summary: Dict[str, Any] = {
      "agent": config.agent_name, "task": config.env.task, "seed": config.seed,
      "workdir": os.path.abspath(workdir), "evaluations": evaluations,
      "final_return_mean": float(np.mean([r["return_mean"] for r in final])) if final else None,
      "final_return_std": (float(np.std([r["return_mean"] for r in final])) if seeds else
                           final[-1]["return_std"]) if final else None,
  }
  if seeds is not None:
    summary["seeds"] = list(seeds)
    summary["final_return_per_seed"] = [r["return_mean"] for r in final]
  if config.save_replay:
    expected = config.agent.num_steps // max(1, (config.env.episode_length or 500))
    if result.replay is None:
      raise ConfigError(f"--config.save_replay={config.save_replay}: the run collected no "
                       "complete episode; raise --config.agent.num_steps above the episode "
                       "length.")
    if result.replay.num_episodes < expected:
      print(f"note: the replay holds {result.replay.num_episodes} whole episodes, fewer than "
            f"the {expected} the run collected: --config.loop.replay_capacity="
            f"{config.loop.replay_capacity} keeps only the newest steps (raise it to keep "
            "them all).", flush=True)
    metadata = write_dataset(
        config.save_replay, result.replay, task=config.env.task,
        behaviour_policy={"agent": config.agent_name, "kind": "online replay",
                          "env_steps": int(config.agent.num_steps)},
        action_repeat=config.env.action_repeat, seed=config.seed,
        extra={"fingerprint": fingerprint})
    summary["replay_path"] = os.path.abspath(config.save_replay)
    print(format_statistics_table(metadata["statistics"], config.save_replay))
  with atomic_text(os.path.join(workdir, "summary.json")) as f:
    json.dump(summary, f, indent=2)
  over = f" over seeds {list(seeds)}" if seeds else ""
  print(f"final evaluation: {summary['final_return_mean']} ± {summary['final_return_std']}"
        f"{over} ({config.agent_name}, {config.env.task}); workdir {summary['workdir']}")
  return summary, agent, result


def main(argv):
  del argv
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=experiments/configs/sac.py:tiny")
  run(_CONFIG.value)


if __name__ == "__main__":
  # Flags are defined only when this module is the program, so experiments can import its
  # functions next to other launchers.
  _CONFIG = cli.define_config_flag("Launcher config: experiments/configs/<agent>.py:<preset>; "
                                   "override any field with --config.<key>=<value>.")
  cli.run(main)
