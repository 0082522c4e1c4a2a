r"""Trains any registered agent: online in a dm_control task, or offline on an episodic dataset.

  python -m experiments.train --config=experiments/configs/<agent>.py:<preset> [--config.x=...]

Examples:
  python -m experiments.train --config=experiments/configs/sac.py:tiny \
      --config.save_replay=/tmp/replay
  python -m experiments.train --config=experiments/configs/td3bc.py:tiny \
      --config.dataset.path=/tmp/replay

A rerun with the same workdir resumes from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Optional, Tuple

from absl import app
from absl import logging
import ml_collections
from ml_collections import config_flags

from benchmarks.envs import make_env_factory
from worldmodels.agents import make_agent
from worldmodels.data import DatasetError, format_statistics_table, write_dataset
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.models.artifacts import ModelArtifactError
from worldmodels.training.logging import read_jsonl
from worldmodels.training.loop import LoopConfig, TrainResult, train


def env_factory_from_config(config: ml_collections.ConfigDict):
  """Single-frame environments of ``config.env`` (frame stacks are the agent's: its spec)."""
  e = config.env
  return make_env_factory(e.task, obs_type=e.obs_type, action_repeat=e.action_repeat,
                          image_size=e.image_size, episode_length=e.episode_length)


def default_workdir(config: ml_collections.ConfigDict) -> str:
  return config.workdir or os.path.join(
      "runs", f"{config.agent_name}-{config.env.task}-seed{config.seed}")


def load_source(config: ml_collections.ConfigDict) -> DataSource:
  """The data source of ``config.dataset`` (one dataset, the frame stack of the config)."""
  return DataSource.load(config.dataset.path,
                         observation_keys=tuple(config.dataset.observation_keys),
                         frame_stack=config.frame_stack)


def run(config: ml_collections.ConfigDict, source: Optional[DataSource] = None) -> Dict[str, Any]:
  """Builds the agent of ``config``, trains it, writes ``summary.json`` in the workdir.

  Returns:
    The summary: final evaluation, evaluations, workdir, and the replay dataset path if saved.
  """
  return run_with_agent(config, source)[0]


def run_with_agent(config: ml_collections.ConfigDict, source: Optional[DataSource] = None
                   ) -> Tuple[Dict[str, Any], Any, TrainResult]:
  """As :func:`run`, also returning the agent and the :class:`TrainResult` (final state), for
  experiments that evaluate the trained agent further (e.g. on shifted dynamics).

  Args:
    config: the launcher config.
    source: the data source of ``config.dataset.path``, already loaded (experiments that train
      several agents or seeds on one dataset load it once); default: loaded here.
  """
  workdir = default_workdir(config)
  env_factory = env_factory_from_config(config)
  if config.dataset.path:
    source = source or load_source(config)
    metadata = source.metadata()
    if metadata.get("task") not in (None, config.env.task):
      print(f"note: dataset task {metadata['task']!r} differs from --config.env.task "
            f"{config.env.task!r}; evaluating on {config.env.task!r}.")
    spec = source.spec()
  else:
    source = None
    probe = env_factory(config.seed)
    spec = DataSpec.from_environment(probe, frame_stack=config.frame_stack,
                                     task=config.env.task)
    probe.close()
  agent = make_agent(config.agent_name, config.agent, spec)
  loop = LoopConfig(seed=config.seed, **config.loop.to_dict())
  result: TrainResult = train(agent, workdir=workdir, loop=loop, data=source,
                              env_factory=env_factory)
  eval_path = os.path.join(workdir, "eval.jsonl")
  evaluations = read_jsonl(eval_path) if os.path.exists(eval_path) else []  # across resumes
  summary: Dict[str, Any] = {
      "agent": config.agent_name, "task": config.env.task, "seed": config.seed,
      "workdir": os.path.abspath(workdir), "evaluations": evaluations,
      "final_return_mean": evaluations[-1]["return_mean"] if evaluations else None,
      "final_return_std": evaluations[-1]["return_std"] if evaluations else None,
  }
  if config.save_replay and result.replay is None:
    raise ValueError(f"--config.save_replay={config.save_replay}: the run collected no complete "
                     "episode; raise --config.agent.num_steps above the episode length.")
  if config.save_replay:
    metadata = write_dataset(
        config.save_replay, result.replay, task=config.env.task,
        behaviour_policy={"agent": config.agent_name, "kind": "online replay",
                          "env_steps": int(config.agent.num_steps)},
        action_repeat=config.env.action_repeat, seed=config.seed)
    summary["replay_path"] = os.path.abspath(config.save_replay)
    print(format_statistics_table(metadata["statistics"], config.save_replay))
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  print(f"final evaluation: {summary['final_return_mean']} ± {summary['final_return_std']} "
        f"({config.agent_name}, {config.env.task}); workdir {summary['workdir']}")
  return summary, agent, result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=experiments/configs/sac.py:tiny")
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    run(_CONFIG.value)
  except (DatasetError, ModelArtifactError) as error:  # bad input: one paragraph, no traceback
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  # Flags are defined only when this module is the program, so experiments can import its
  # functions next to other launchers.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "Launcher config: experiments/configs/<agent>.py:<preset>.",
      lock_config=True)
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(main)
