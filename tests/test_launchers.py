"""Smoke runs of every launcher with its tiny preset (subprocesses, as a user runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO_ROOT
from worldmodels.data import load_dataset


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


def test_train_launcher_bad_flag_value():
  env = dict(os.environ, MUJOCO_GL="egl")
  out = subprocess.run([sys.executable, "-m", "experiments.train",
                        "--config=experiments/configs/td3bc.py:tiny",
                        "--config.dataset.path=/nonexistent/dataset"],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env)
  assert out.returncode != 0
  assert "/nonexistent/dataset" in out.stderr


def test_demo_tiny(tmp_path):
  out = _run("experiments.demo", "--tiny", f"--workdir={tmp_path / 'run'}",
             f"--results_dir={tmp_path / 'results'}")
  assert "| SAC (online)" in out.stdout and "| TD3+BC (offline)" in out.stdout
  assert os.path.getsize(tmp_path / "results" / "learning_curves.png") > 10_000
  text = open(tmp_path / "results" / "RESULTS.md").read()
  assert "random policy" in text and "git revision" in text
