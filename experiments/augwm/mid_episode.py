r"""AugWM experiment 5 (paper figure 8): dynamics that change in the middle of an episode.

1,500-step episodes of cheetah-run that start with the training dynamics and switch to mass
x 0.75, damping x 0.5 at step 500 (a "motor fault"). The MOPO and AugWM (DAS, context) agents of
``experiments.augwm.run`` (same ``--workdir``: trained seeds are restored) are run with their
per-step rewards recorded; the figure shows the cumulative return and the rolling mean reward
(mean ± std over seeds x episodes), the table the return before and after the switch.

  python -m experiments.augwm.mid_episode [--workdir=runs/mopo] [--seeds=3] [--tiny]
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time

from absl import flags
import numpy as np

from benchmarks.protocols.zero_shot import episode_rewards, save_figure
from benchmarks.shifts import MidEpisodeSwitch, grid, make_shifted_env_factory
from experiments import cli
from experiments import zero_shot
from experiments.augwm import run as augwm_run
from worldmodels.agents.augwm import config as augwm_config
from worldmodels.io import atomic_text
from worldmodels.provenance import FINGERPRINT_FILE, digest, file_digest, git_revision


def switch_setting(step: int, mass: float = 0.75, damping: float = 0.5) -> MidEpisodeSwitch:
  """Default dynamics, then ``mass`` x ``damping`` from agent step ``step`` on."""
  return MidEpisodeSwitch(step, grid([1.0], [1.0])[0], grid([mass], [damping])[0])


def rolling_mean(rewards: np.ndarray, window: int) -> np.ndarray:
  """``[..., T]`` trailing moving average (shorter windows at the start)."""
  cumulative = np.cumsum(rewards, axis=-1)
  shifted = np.concatenate([np.zeros(rewards.shape[:-1] + (window,)),
                            cumulative[..., :-window]], axis=-1)[..., :rewards.shape[-1]]
  counts = np.minimum(np.arange(1, rewards.shape[-1] + 1), window)
  return (cumulative - shifted) / counts


def plot(path: str, traces: dict, switch: int, window: int, title: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for row, rewards in traces.items():
    steps = np.arange(1, rewards.shape[-1] + 1)
    for ax, values in ((axes[0], np.cumsum(rewards, axis=-1)),
                       (axes[1], rolling_mean(rewards, window))):
      mean, std = values.mean(axis=0), values.std(axis=0)
      ax.plot(steps, mean, label=row)
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  axes[0].set_ylabel("cumulative return")
  axes[1].set_ylabel(f"reward, rolling mean over {window} steps")
  for ax in axes:
    ax.axvline(switch, color="gray", linestyle="--")
    ax.set_xlabel("agent step")
    ax.grid(alpha=0.3)
  axes[0].legend()
  fig.suptitle("\n".join(textwrap.wrap(
      f"{title}. Lines: mean over seeds x episodes; shaded: ± 1 std; dashed: the step at "
      "which the dynamics change.", 120, break_on_hyphens=False)), fontsize=9)
  fig.tight_layout()
  fig.set_dpi(120)
  save_figure(fig, path)
  plt.close(fig)


def main(argv, common: zero_shot.CommonFlags, length_flag, switch_flag, window_flag) -> None:
  del argv
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  size = inputs.sizes
  runs = augwm_run.agent_runs(common, inputs)
  steps = runs[-1].steps
  adapt_after = augwm_config.adapt_after(runs[-1].configs.get_config(size.stage_preset).agent,
                                         inputs.episode_steps(common.task.value))
  # Three training episodes long by default (1,500 steps; the sizes' episode length at tiny
  # size), switching a third of the way in.
  length = length_flag.value or 3 * (size.episode_length or 500)
  switch = switch_flag.value or length // 3
  setting = switch_setting(switch)
  factory = make_shifted_env_factory(
      zero_shot.evaluation_env_factory(common.task.value, length,
                                       inputs.source.metadata().get("action_repeat")), setting)
  traces: dict = {}
  for run in runs:
    agent, states, configs = zero_shot.trained_agents(run, common.task.value, inputs,
                                                      common.workdir.value)
    for seed, (state, c) in enumerate(zip(states, configs)):
      seed_part = [f"seed {seed}"] if len(states) > 1 else []  # seeds sharing a workdir
      for row, policy_for in run.evaluations.items():
        run_digest = file_digest(os.path.join(c.workdir, FINGERPRINT_FILE))
        cache = os.path.join(c.workdir, f"mid-episode-{length}-{switch}-{zero_shot.slug(row)}-"
                             f"{digest([run_digest, setting.name, size.grid_episodes, *seed_part])[:8]}"
                             ".json")
        if os.path.exists(cache):
          with open(cache) as f:
            rewards = json.load(f)
        else:
          policy = policy_for(agent)
          rewards = []
          for episode in range(size.grid_episodes):
            env = factory(40_000 + 100 * seed + episode)
            rewards.append(episode_rewards(policy, state, env,
                                           40_000 + 100 * seed + episode).tolist())
            env.close()
          with atomic_text(cache) as f:
            json.dump(rewards, f)
        traces.setdefault(row, []).extend(rewards)
  traces = {row: np.asarray(values) for row, values in traces.items()}

  late = switch + (length - switch) // 2  # the second half of the post-switch steps
  lines = [f"| Agent | Episodes | Return, steps 1-{switch} | Return, steps {switch + 1}-{length} "
           f"| Return, steps {late + 1}-{length} |", "| --- | ---: | ---: | ---: | ---: |"]
  for row, rewards in traces.items():
    parts = [rewards[:, :switch].sum(axis=1), rewards[:, switch:].sum(axis=1),
             rewards[:, late:].sum(axis=1)]
    lines.append(f"| {row} | {len(rewards)} | "
                 + " | ".join(f"{p.mean():.1f} ± {p.std():.1f}" for p in parts) + " |")
  table = "\n".join(lines)
  out = common.output_dir()
  os.makedirs(out, exist_ok=True)
  plot(os.path.join(out, "mid_episode.png"), traces, switch, window_flag.value,
       f"{common.task.value}: {setting.name}")
  with atomic_text(os.path.join(out, "RESULTS.md")) as f:
    f.write(f"# AugWM figure 8 on {common.task.value}: dynamics change mid-episode\n\n"
            f"Command: `python -m experiments.augwm.mid_episode {' '.join(sys.argv[1:])}`; git "
            f"revision `{revision}`; wall time {(time.time() - started) / 60:.1f} min. "
            f"{length}-step episodes; default dynamics, then mass x 0.75 and damping x 0.5 from "
            f"step {switch + 1} (`{setting.name}`). Agents: `experiments.augwm.run` in "
            f"`{common.workdir.value}` ({steps} updates, {size.seeds} seeds x "
            f"{size.grid_episodes} episodes; mean ± std over those episodes). The learned "
            f"context starts after k = {adapt_after} steps of each episode and is refit as it "
            "goes.\n\n"
            f"{table}\n\n![cumulative and rolling reward](mid_episode.png)\n")
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), "mid_episode"))
  _LENGTH = flags.DEFINE_integer("length", None, "Agent steps per episode (default: three "
                                 "training episodes, 1500 steps).")
  _SWITCH = flags.DEFINE_integer("switch", None, "Agent step at which the dynamics change "
                                 "(default: a third of the way in, 500).")
  _WINDOW = flags.DEFINE_integer("window", 50, "Rolling-mean window of the reward plot.")
  flags.adopt_module_key_flags(zero_shot)  # --help lists the shared flags
  cli.run(lambda argv: main(argv, _COMMON, _LENGTH, _SWITCH, _WINDOW))
