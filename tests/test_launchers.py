"""Smoke runs of every launcher with its tiny preset (subprocesses, as a user runs them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from tests.conftest import REPO_ROOT, synthetic_steps
from worldmodels.data import load_dataset, write_dataset


def _run(*args, timeout=300):
  env = dict(os.environ, MUJOCO_GL="egl")
  out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                       cwd=REPO_ROOT, timeout=timeout, env=env)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return out


def test_train_launcher_online_then_offline(tmp_path):
  replay = tmp_path / "replay"
  out = _run("experiments.train", "--config=experiments/configs/sac.py:tiny",
             f"--config.workdir={tmp_path / 'sac'}", f"--config.save_replay={replay}")
  assert "Return median" in out.stdout  # dataset statistics table
  steps, metadata = load_dataset(str(replay))
  assert metadata["task"] == "walker-walk" and metadata["num_transitions"] == 200
  assert steps.num_episodes == 4
  for agent in ("td3bc", "bc"):
    _run("experiments.train", f"--config=experiments/configs/{agent}.py:tiny",
         f"--config.workdir={tmp_path / agent}", f"--config.dataset.path={replay}")
    summary = json.load(open(tmp_path / agent / "summary.json"))
    assert np.isfinite(summary["final_return_mean"])
  # Model-based: ensemble artifact, then MOPO on the same replay.
  _run("experiments.train_model", "--config=experiments/configs/ensemble.py:tiny",
       f"--config.dataset.path={replay}", f"--config.output={tmp_path / 'model'}")
  _run("experiments.train", "--config=experiments/configs/mopo.py:tiny",
       f"--config.workdir={tmp_path / 'mopo'}", f"--config.dataset.path={replay}",
       f"--config.agent.model_path={tmp_path / 'model'}")
  summary = json.load(open(tmp_path / "mopo" / "summary.json"))
  assert np.isfinite(summary["final_return_mean"])
  _run("experiments.train", "--config=experiments/configs/augwm.py:tiny",
       f"--config.workdir={tmp_path / 'augwm'}", f"--config.dataset.path={replay}",
       f"--config.agent.model_path={tmp_path / 'model'}")
  summary = json.load(open(tmp_path / "augwm" / "summary.json"))
  assert np.isfinite(summary["final_return_mean"])


def test_train_launcher_bad_flag_value():
  env = dict(os.environ, MUJOCO_GL="egl")
  out = subprocess.run([sys.executable, "-m", "experiments.train",
                        "--config=experiments/configs/td3bc.py:tiny",
                        "--config.dataset.path=/nonexistent/dataset"],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env)
  assert out.returncode != 0
  assert "/nonexistent/dataset" in out.stderr


def test_online_offline_tiny(tmp_path):
  out = _run("experiments.online_offline", "--tiny", f"--workdir={tmp_path / 'run'}",
             f"--results_dir={tmp_path / 'results'}")
  assert "| SAC (online)" in out.stdout and "| TD3+BC (offline)" in out.stdout
  assert os.path.getsize(tmp_path / "results" / "learning_curves.png") > 10_000
  text = open(tmp_path / "results" / "RESULTS.md").read()
  assert "random policy" in text and "git revision" in text


def test_demo_tiny(tmp_path):
  """The README's main job at smoke size: SAC replay -> ensemble -> MOPO and AugWM -> grid."""
  out = _run("experiments.demo", "--tiny", f"--workdir={tmp_path / 'run'}",
             f"--results_dir={tmp_path / 'results'}")
  assert "| MOPO | 1 |" in out.stdout and "| AugWM (DAS, learned context) | 1 |" in out.stdout
  text = open(tmp_path / "results" / "RESULTS.md").read()
  assert "python -m experiments.demo --tiny" in text and "SAC replay" in text
  assert os.path.getsize(tmp_path / "results" / "grid_augwm__das__default_context.png") > 5_000


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
  """SIGKILL a training process after its first checkpoint; the rerun ends where an
  uninterrupted run ends, parameter for parameter."""

  data = tmp_path / "data"
  write_dataset(str(data), synthetic_steps((150, 150), obs_dim=24, action_dim=6),
                task="walker-walk", behaviour_policy="synthetic", action_repeat=2, seed=0)

  def command(workdir):
    return [sys.executable, "-m", "experiments.train", "--config=experiments/configs/td3bc.py:tiny",
            f"--config.workdir={workdir}", f"--config.dataset.path={data}",
            "--config.agent.num_steps=6000", "--config.loop.steps_per_chunk=100",
            "--config.loop.checkpoint_every=500", "--config.loop.eval_every=0",
            "--config.loop.eval_episodes=0"]

  env = dict(os.environ, MUJOCO_GL="egl")
  killed = tmp_path / "killed"
  proc = subprocess.Popen(command(killed), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  ckpt_dir = killed / "checkpoints"
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if ckpt_dir.exists() and any(p.name.isdigit() for p in ckpt_dir.iterdir()):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "the run finished before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps_at_kill = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
  assert steps_at_kill and steps_at_kill[-1] < 6000
  _run(*command(killed)[2:])  # resume
  _run(*command(tmp_path / "straight")[2:])

  def final_params(workdir):
    # CheckpointManager keeps each step's pytree under <step>/default.
    path = workdir / "checkpoints" / "6000" / "default"
    return ocp.StandardCheckpointer().restore(path)["agent"]

  jax.tree_util.tree_map(np.testing.assert_array_equal, final_params(killed),
                         final_params(tmp_path / "straight"))


def test_zero_shot_experiments_tiny(tmp_path):
  """The MOPO / AugWM pipeline end to end at smoke size on a catalog dataset generated by the
  dataset CLI: ensemble, agents over two seeds, unshifted and grid evaluations (learned context
  included), results and heatmaps; the table-1 gathering of such runs; then experiments 4
  (other shifts) and 5 (mid-episode change) on the same, restored, agents."""
  data = tmp_path / "data"
  _run("benchmarks.datasets", "generate", "cheetah-run/tiny", "--kinds", "random",
       "--root", str(data), "--set", "sizes.random=100")
  results = tmp_path / "table1" / "random"
  common = ["--tiny", "--task=cheetah-run", f"--workdir={tmp_path / 'run'}",
            "--dataset=vd4rl/cheetah_run/random/state", f"--data_root={data}"]
  out = _run("experiments.augwm.run", *common, f"--results_dir={results}")
  assert "| AugWM (DAS, learned context) | 2 |" in out.stdout
  text = open(results / "RESULTS.md").read()
  assert "MOPO minus" not in text and "AugWM (DAS, learned context) minus MOPO" in text
  assert "one-step-ahead R^2" in text and "| cheetah-run random | 100 | 5 |" in text
  assert os.path.getsize(results / "grid_mopo.png") > 5_000
  out = _run("experiments.augwm.table1", "--kinds=random", f"--results_dir={results.parent}")
  assert "| random | " in out.stdout and "(p=" in out.stdout
  assert "| random |" in open(results.parent / "RESULTS.md").read()

  out = _run("experiments.augwm.other_shifts", *common, f"--results_dir={tmp_path / 'shifts'}")
  assert "Resuming from checkpoint" in out.stdout  # agents restored, not retrained
  assert "| AugWM (DAS, learned context) |" in out.stdout and "one crippled leg" in out.stdout
  text = open(tmp_path / "shifts" / "RESULTS.md").read()
  assert "crippled:front_leg" in text and "big_head" in text
  out = _run("experiments.augwm.mid_episode", *common, f"--results_dir={tmp_path / 'mid'}")
  assert "| MOPO | 2 |" in out.stdout  # 2 seeds x 1 episode
  assert os.path.getsize(tmp_path / "mid" / "mid_episode.png") > 5_000
