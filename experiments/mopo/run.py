r"""MOPO baseline experiment: dataset -> ensemble -> MOPO / TD3+BC / BC -> unshifted returns and a
zero-shot mass x damping grid, over several seeds. Writes ``RESULTS.md``, ``grid_*.png`` and
``results.json`` beside this file (or ``--results_dir``).

  python -m experiments.mopo.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo]

Stages are resumable: each one is skipped (or resumed from its checkpoints) when its output
exists in ``--workdir``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from benchmarks.envs import make_env_factory
from benchmarks.protocols.zero_shot import agent_policy, evaluate_grid, merge_seeds
from benchmarks.shifts.perturbations import grid, make_shifted_env_factory
from experiments import train as train_launcher
from experiments.provenance import git_revision
from experiments import train_model as model_launcher
from experiments.configs import bc as bc_configs
from experiments.configs import ensemble as ensemble_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import sac as sac_configs
from experiments.configs import td3bc as td3bc_configs
from worldmodels.data import format_statistics_table, read_metadata
from worldmodels.models.artifacts import load_ensemble

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


def _sizes() -> dict:
  if _TINY.value:
    return dict(preset="tiny", sac=200, mopo=40, td3bc=40, bc=40, rollout_batch=32,
                episode_length=50, eval_episodes=1, grid_episodes=1, seeds=min(2, _SEEDS.value))
  return dict(preset="demo", sac=_SAC_STEPS.value, mopo=_MOPO_STEPS.value,
              td3bc=_TD3BC_STEPS.value, bc=_BC_STEPS.value, rollout_batch=_ROLLOUT_BATCH.value,
              episode_length=None, eval_episodes=_EVAL_EPISODES.value,
              grid_episodes=_GRID_EPISODES.value, seeds=_SEEDS.value)


def _configure(c, size, stage, steps, seed):
  c.env.task = _TASK.value
  c.env.episode_length = size["episode_length"]
  c.seed = seed
  c.workdir = os.path.join(_WORKDIR.value, f"{stage}-seed{seed}")
  c.agent.num_steps = steps
  c.loop.eval_episodes = size["eval_episodes"]
  c.loop.eval_every = max(steps // 3, 1)
  c.loop.checkpoint_every = max(steps // 3, 1)
  return c


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start = time.time()
  size = _sizes()
  dataset = os.path.join(_WORKDIR.value, "dataset")
  model_path = os.path.join(_WORKDIR.value, "ensemble")

  # 1. Dataset: the replay of an online SAC run (a "mixed" / medium-replay style dataset).
  if not os.path.exists(os.path.join(dataset, "metadata.json")):
    sac = _configure(sac_configs.get_config(size["preset"]), size, "sac", size["sac"], 0)
    sac.save_replay = dataset
    sac.loop.replay_capacity = size["sac"] + size["sac"] // 10 + 10
    print(f"== dataset: SAC online on {_TASK.value}, {size['sac']} env steps", flush=True)
    train_launcher.run(sac)
  stats = read_metadata(dataset)["statistics"]

  # 2. World model.
  if not os.path.exists(os.path.join(model_path, "model.json")):
    mc = ensemble_configs.get_config("tiny" if _TINY.value else "default")
    mc.dataset.path, mc.output = dataset, model_path
    print("== ensemble", flush=True)
    model_launcher.run(mc)
  _, _, model_meta = load_ensemble(model_path)

  # 3. Offline agents, several seeds each; unshifted evaluation and the zero-shot grid.
  factors = [float(f) for f in _FACTORS.value]
  settings = grid(factors, factors)
  base_factory = make_env_factory(_TASK.value, episode_length=size["episode_length"])
  factory_for = lambda setting: make_shifted_env_factory(base_factory, setting)
  agents = {
      "MOPO": (mopo_configs, "mopo", size["mopo"]),
      "TD3+BC": (td3bc_configs, "td3bc", size["td3bc"]),
      "BC": (bc_configs, "bc", size["bc"]),
  }
  unshifted, grids = {}, {}
  for name, (configs, stage, steps) in agents.items():
    per_seed, seed_grids = [], []
    for seed in range(size["seeds"]):
      c = _configure(configs.get_config(size["preset"]), size, stage, steps, seed)
      c.dataset.path = dataset
      if stage == "mopo":
        if not _TINY.value:
          c.agent.horizon, c.agent.penalty_coef = mopo_configs.TABLE3[_MOPO_PRESET.value]
          c.agent.rollout_batch_size = size["rollout_batch"]
        c.agent.model_path = model_path
      print(f"== {name} seed {seed}: {steps} updates", flush=True)
      summary, agent, result = train_launcher.run_with_agent(c)
      per_seed.append(summary["final_return_mean"])
      grid_path = os.path.join(c.workdir, "grid.json")
      if os.path.exists(grid_path):
        from benchmarks.protocols.zero_shot import GridResult  # pylint: disable=g-import-not-at-top
        seed_grids.append(GridResult.load(grid_path))
      else:
        seed_grid = evaluate_grid(agent_policy(agent, result.state), factory_for, settings,
                                  size["grid_episodes"], seed=20_000 + 100 * seed)
        seed_grid.save(grid_path)
        seed_grids.append(seed_grid)
    unshifted[name] = per_seed
    grids[name] = merge_seeds(seed_grids)

  # 4. Results.
  os.makedirs(_RESULTS_DIR.value, exist_ok=True)
  lines = ["| Agent | Seeds | Unshifted return (mean ± std over seeds) | Per seed | "
           "Grid mean ± std over seeds |", "| --- | ---: | ---: | --- | ---: |"]
  for name, values in unshifted.items():
    values = np.asarray(values)
    gm, gs = grids[name].overall_mean_std()
    lines.append(f"| {name} | {len(values)} | {values.mean():.1f} ± {values.std():.1f} | "
                 f"{', '.join(f'{v:.1f}' for v in values)} | {gm:.1f} ± {gs:.1f} |")
  main_table = "\n".join(lines)
  for name, result in grids.items():
    result.heatmap(os.path.join(_RESULTS_DIR.value, f"grid_{name.lower().replace('+', '')}.png"),
                   f"{name} on {_TASK.value}: mass x damping (zero-shot)")
  comparison = grids["MOPO"].compare(grids["TD3+BC"])
  report = model_meta["report"]
  wall = time.time() - start
  command = "python -m experiments.mopo.run " + " ".join(sys.argv[1:])
  with open(os.path.join(_RESULTS_DIR.value, "RESULTS.md"), "w") as f:
    f.write(f"# MOPO baseline on {_TASK.value} (zero-shot mass x damping)\n\n"
            f"Command: `{command.strip()}`; git revision `{git_revision()}`; "
            f"{platform.machine()}, {os.cpu_count()} CPU cores; wall time of this invocation "
            f"{wall / 60:.1f} min (stages found done in the workdir are not re-run).\n\n"
            f"## Dataset\n\nThe replay of online SAC ({size['sac']} env steps, action repeat 2), "
            "a mixed / medium-replay style dataset.\n\n"
            f"{format_statistics_table(stats, _TASK.value + ' SAC replay')}\n\n"
            "## World model (holdout)\n\n"
            f"Ensemble {model_meta['config']['num_members']} x "
            f"{model_meta['config']['hidden_sizes']}, {report['epochs']} epochs, "
            f"{report['transitions']} transitions, elites {report['elites']}.\n\n"
            f"- holdout MSE per member: {np.round(report['holdout_mse'], 5).tolist()}\n"
            f"- holdout NLL per member (nats/dim): {np.round(report['holdout_nll'], 3).tolist()}\n"
            f"- elites' MSE per dimension (delta_s..., r): "
            f"{np.round(report['elite_mse_per_dim'], 5).tolist()}\n"
            f"- elites' calibration (MSE / predicted variance; 1 = calibrated): "
            f"{np.round(report['elite_calibration'], 2).tolist()}\n\n"
            "## Returns\n\n"
            f"Unshifted: {size['eval_episodes']} evaluation episodes per seed at the end of "
            f"training. Grid: {len(settings)} cells (mass x damping factors {factors}), "
            f"{size['grid_episodes']} episodes per cell and seed.\n\n{main_table}\n\n")
    for name, result in grids.items():
      f.write(f"### {name} on the grid (mean ± std over seeds)\n\n{result.returns_table()}\n\n"
              f"![{name}](grid_{name.lower().replace('+', '')}.png)\n\n")
    f.write("### MOPO minus TD3+BC per cell (Welch t-test over seeds; ★ p < 0.05)\n\n"
            f"{comparison.table()}\n\n")
    f.write(f"## Settings\n\nMOPO: (h, lambda) = {mopo_configs.TABLE3[_MOPO_PRESET.value]} "
            f"(AugWM table 3, {_MOPO_PRESET.value}), penalty max aleatoric std norm, "
            f"{size['rollout_batch']} rollout starts every 1000 updates, model buffer of 5 "
            f"rollout batches, 5% real data, SAC 256x256, {size['mopo']} updates. TD3+BC "
            f"{size['td3bc']} updates, BC {size['bc']} updates (256x256, batch 256).\n")
  with open(os.path.join(_RESULTS_DIR.value, "results.json"), "w") as f:
    json.dump({"unshifted": unshifted, "grid_overall": {k: g.overall_mean_std()
                                                        for k, g in grids.items()}}, f, indent=1)
  print(main_table)
  print(f"wrote {_RESULTS_DIR.value}/RESULTS.md; wall time {wall / 60:.1f} min")


if __name__ == "__main__":
  os.environ.setdefault("MUJOCO_GL", "egl")
  app.run(main)
