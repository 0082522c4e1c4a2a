r"""Online SAC -> episodic dataset -> offline TD3+BC and BC (the README's first main job, before
the AugWM demo replaced it; it still exercises the online loop and the model-free agents).

1. Train SAC online on a dm_control task (walker-walk by default, action repeat 2).
2. Save its replay as an episodic dataset and print the dataset's statistics.
3. Train TD3+BC and BC offline on that dataset.
4. Evaluate everything, and a uniform random policy, in the real environment; print a table of
   returns, write ``RESULTS.md`` and ``learning_curves.png`` (default: beside this file).

Each stage resumes from its checkpoints when rerun with the same ``--workdir``.

  python -m experiments.online_offline [--task=walker-walk] [--seed=0] \
      [--workdir=runs/online_offline]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from absl import flags
import jax
import numpy as np

from benchmarks.envs import make_env
from benchmarks.protocols.zero_shot import save_figure
from experiments import cli
from experiments import train as train_launcher
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_text
from worldmodels.provenance import git_revision
from experiments.configs import bc as bc_configs
from experiments.configs import sac as sac_configs
from experiments.configs import online_offline as size_configs
from experiments.configs import td3bc as td3bc_configs
from worldmodels.data import format_statistics_table, read_metadata
from worldmodels.training.acting import EpisodeRunner
from worldmodels.training.logging import read_jsonl

_TASK = flags.DEFINE_string("task", "walker-walk", "dm_control task, domain-task.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every stage.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/online_offline",
                                "Checkpoints, logs and the dataset.")
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", None, "Where RESULTS.md and learning_curves.png are written (default: "
    "<workdir>/results; see --publish).")
_PUBLISH = flags.DEFINE_bool(
    "publish", False, "Write the results into experiments/online_offline/, the committed ones.")
PUBLISH_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "online_offline")


def _output_dir() -> str:
  if _PUBLISH.value and _RESULTS_DIR.value:
    raise ConfigError("--publish and --results_dir both say where the results go; give one.")
  if _PUBLISH.value:
    return PUBLISH_DIR
  return _RESULTS_DIR.value or os.path.join(_WORKDIR.value, "results")
_SIZE_FLAGS = {
    name: flags.DEFINE_integer(name, None, f"{text} Default: the preset's "
                               "(experiments/configs/online_offline.py).")
    for name, text in (("sac_steps", "Online SAC environment steps."),
                       ("td3bc_steps", "TD3+BC updates."), ("bc_steps", "BC updates."),
                       ("eval_episodes", "Final evaluation episodes."))}
_TINY = flags.DEFINE_bool(
    "tiny", False, "Smoke-test size: tiny networks, 50-step episodes, a few hundred steps.")


def _budgets() -> dict:
  """The sizes of the run: its preset, with the size flags that were set."""
  c = size_configs.get_config("tiny" if _TINY.value else "cpu")
  for name, flag in _SIZE_FLAGS.items():
    if flag.value is not None:
      c[name] = flag.value
  return dict(preset=c.stage_preset, sac=c.sac_steps, td3bc=c.td3bc_steps, bc=c.bc_steps,
              eval_episodes=c.eval_episodes, episode_length=c.episode_length,
              sac_eval_every=c.sac_eval_every)


def _stage_config(configs, preset: str, stage: str, steps: int, episode_length):
  c = configs.get_config(preset)
  c.env.task = _TASK.value
  c.env.episode_length = episode_length
  c.seed = _SEED.value
  c.workdir = os.path.join(_WORKDIR.value, stage)
  c.agent.num_steps = steps
  return c


def random_policy_returns(task: str, episodes: int, seed: int,
                          episode_length=None) -> np.ndarray:
  """Returns of uniform random actions (the baseline SAC must beat), on the evaluation seeds."""
  rng = np.random.default_rng(seed)
  returns = []
  for episode in range(episodes):
    env = make_env(task, seed=10_000 + seed * 1000 + episode, episode_length=episode_length)
    spec = env.action_spec()
    uniform = lambda observation, t: rng.uniform(spec.minimum, spec.maximum)
    returns.append(EpisodeRunner(env).run_episode(None, jax.random.PRNGKey(0),
                                                  actions=uniform).total)
    env.close()
  return np.asarray(returns)


def plot_curves(path: str, curves: dict, random_mean: float) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  sac = curves["SAC (online)"]
  axes[0].errorbar(sac["step"], sac["mean"], yerr=sac["std"], marker="o", capsize=3,
                   label="SAC (online)")
  axes[0].set_xlabel("environment steps (action repeat 2)")
  axes[0].set_title(f"online SAC, {_TASK.value}")
  for name in ("TD3+BC (offline)", "BC (offline)"):
    c = curves[name]
    axes[1].errorbar(c["step"], c["mean"], yerr=c["std"], marker="o", capsize=3, label=name)
  axes[1].set_xlabel("gradient updates")
  axes[1].set_title("offline, on the SAC replay dataset")
  for ax in axes:
    ax.axhline(random_mean, color="gray", linestyle="--", label="random policy")
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.set_dpi(120)
  save_figure(fig, path)
  plt.close(fig)


def _curve(workdir: str) -> dict:
  rows = read_jsonl(os.path.join(workdir, "eval.jsonl"))
  return {"step": [r["step"] for r in rows], "mean": [r["return_mean"] for r in rows],
          "std": [r["return_std"] for r in rows]}


def main(argv):
  del argv
  start, revision = time.time(), git_revision()  # before any result file is rewritten
  replay_path = os.path.join(_WORKDIR.value, "dataset")

  # 1-2. Online SAC; its replay becomes the episodic dataset.
  b = _budgets()
  sac = _stage_config(sac_configs, b["preset"], "sac", b["sac"], b["episode_length"])
  if not os.path.exists(os.path.join(replay_path, "metadata.json")):
    sac.save_replay = replay_path
  sac.loop.eval_every = sac.loop.checkpoint_every = b["sac_eval_every"]
  sac.loop.replay_capacity = b["sac"] + b["sac"] // 10 + 10
  sac.loop.eval_episodes = min(5, b["eval_episodes"])
  print(f"== 1/3 SAC online on {_TASK.value} for {b['sac']} env steps", flush=True)
  train_launcher.run(sac)
  sac_eval = read_jsonl(os.path.join(sac.workdir, "eval.jsonl"))[-1]
  metadata = read_metadata(replay_path)
  stats_table = format_statistics_table(metadata["statistics"], f"{_TASK.value} SAC replay")
  print(stats_table, flush=True)

  # 3. Offline agents on the dataset.
  results, budgets, source = {}, {}, None
  for number, name, configs, stage in ((2, "TD3+BC", td3bc_configs, "td3bc"),
                                       (3, "BC", bc_configs, "bc")):
    c = _stage_config(configs, b["preset"], stage, b[stage], b["episode_length"])
    c.dataset.path = replay_path
    c.loop.eval_episodes = b["eval_episodes"]
    c.loop.eval_every = max(b[stage] // 4, 1)
    print(f"== {number}/3 {name} offline for {b[stage]} updates", flush=True)
    source = source or train_launcher.load_source(c)  # loaded once, for both agents
    train_launcher.run(c, source)
    results[name] = read_jsonl(os.path.join(c.workdir, "eval.jsonl"))[-1]
    budgets[name] = b[stage]

  random_returns = random_policy_returns(_TASK.value, b["eval_episodes"], _SEED.value,
                                         b["episode_length"])
  rows = [("random policy", "-", random_returns.mean(), random_returns.std(),
           len(random_returns)),
          ("SAC (online)", f"{b['sac']} env steps", sac_eval["return_mean"],
           sac_eval["return_std"], int(sac_eval["episodes"]))]
  rows += [(f"{name} (offline)", f"{budgets[name]} updates", r["return_mean"], r["return_std"],
            int(r["episodes"])) for name, r in results.items()]
  table = ["| Agent | Budget | Return mean | Return std | Episodes |",
           "| --- | --- | ---: | ---: | ---: |"]
  table += [f"| {a} | {bud} | {m:.1f} | {sd:.1f} | {n} |" for a, bud, m, sd, n in rows]
  table = "\n".join(table)
  print(table)

  out = _output_dir()
  os.makedirs(out, exist_ok=True)
  plot_path = os.path.join(out, "learning_curves.png")
  plot_curves(plot_path, {"SAC (online)": _curve(sac.workdir),
                          "TD3+BC (offline)": _curve(os.path.join(_WORKDIR.value, "td3bc")),
                          "BC (offline)": _curve(os.path.join(_WORKDIR.value, "bc"))},
              float(random_returns.mean()))
  wall = time.time() - start
  command = "python -m experiments.online_offline " + " ".join(sys.argv[1:])
  with atomic_text(os.path.join(out, "RESULTS.md")) as f:
    f.write(f"# Online SAC, then offline TD3+BC and BC: {_TASK.value}, seed {_SEED.value}\n\n"
            f"Written by `{command.strip()}` at git revision `{revision}` "
            f"on {platform.machine()} ({os.cpu_count()} CPU cores), wall time {wall / 60:.1f} "
            "min for this invocation (stages resumed from checkpoints take no time).\n\n"
            "Returns are undiscounted episode returns in the real dm_control environment "
            f"({'50-step tiny' if _TINY.value else '1000-frame'} episodes, action repeat 2); "
            "evaluation episodes use env seeds 10000+.\n\n"
            f"{table}\n\n## The SAC replay dataset\n\n{stats_table}\n\n"
            "Configs: `experiments/configs/{sac,td3bc,bc}.py:demo` with the step budgets above; "
            "SAC: 256x256 networks, batch 256, 1 update per env step after 2,000 random steps. "
            "TD3+BC: alpha 2.5, standardised states. BC: MSE, standardised states.\n\n"
            "![learning curves](learning_curves.png)\n")
    f.write("\n```json\n" + json.dumps({"sac_eval": sac_eval, "offline": results,
                                        "random": random_returns.tolist()}, indent=1) + "\n```\n")
  print(f"wrote {plot_path} and RESULTS.md; wall time {wall / 60:.1f} min")


if __name__ == "__main__":
  cli.run(main)
