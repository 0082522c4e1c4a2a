"""Every command line turns bad input into one paragraph: a non-zero exit (1: bad input, 2: bad
usage), a message naming the input, no traceback, and the inputs left as they were."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, synthetic_steps, tiny_rssm
from worldmodels.data import write_dataset
from worldmodels.models.artifacts import save_model

ENV = dict(os.environ, MUJOCO_GL="egl", PYTHONHASHSEED="0")
TD3BC = "--config=experiments/configs/td3bc.py:tiny"
ENSEMBLE = "--config=experiments/configs/ensemble.py:tiny"


def _tree_digest(path) -> str:
  """Names and bytes of every file under ``path`` (the input must not change)."""
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(path)):
    for name in sorted(files):
      digest.update(os.path.relpath(os.path.join(root, name), path).encode())
      with open(os.path.join(root, name), "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  """A walker-shaped dataset, a 5-d one, a foreign directory, an existing path, a workdir with
  only unreadable checkpoints."""
  root = tmp_path_factory.mktemp("inputs")
  write_dataset(root / "walker", synthetic_steps((60, 60), obs_dim=24, action_dim=6),
                task="walker-walk", behaviour_policy="synthetic", action_repeat=2, seed=0)
  write_dataset(root / "small", synthetic_steps((30, 30), obs_dim=5, action_dim=2),
                task="synthetic", behaviour_policy="synthetic", action_repeat=1, seed=0)
  save_model(str(root / "rssm5"), *tiny_rssm(5, 2))  # fits "small", not "walker"
  (root / "foreign").mkdir()
  (root / "foreign" / "notes.txt").write_text("not a dataset")
  (root / "existing").mkdir()
  (root / "existing" / "keep.txt").write_text("mine")
  out = subprocess.run([sys.executable, "-m", "experiments.train", TD3BC,
                        f"--config.workdir={root / 'corrupt'}",
                        f"--config.dataset.path={root / 'walker'}", "--config.agent.num_steps=100",
                        "--config.loop.eval_episodes=0"],
                       cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  for directory, _, files in os.walk(root / "corrupt" / "checkpoints"):
    for name in files:
      open(os.path.join(directory, name), "wb").close()
  return root


def _cases():
  """(id, program and arguments, exit status, words the message must contain)."""
  i = "{inputs}"
  return [
      ("train: mistyped override", ["experiments.train", TD3BC, "--config.agent.lerning_rate=1"],
       2, ["agent.lerning_rate", "agent.actor_lr"]),
      ("train: wrong type", ["experiments.train", TD3BC, "--config.agent.actor_lr=fast"], 2,
       ["actor_lr", "fast"]),
      ("train: unknown preset", ["experiments.train",
                                 "--config=experiments/configs/td3bc.py:huge"], 2,
       ["huge", "default, demo or tiny"]),
      ("train: unknown flag", ["experiments.train", TD3BC, "--nope"], 2, ["nope"]),
      ("train: missing dataset", ["experiments.train", TD3BC,
                                  f"--config.dataset.path={i}/missing"], 1,
       ["missing", "does not exist"]),
      ("train: foreign dataset", ["experiments.train", TD3BC, f"--config.dataset.path={i}/foreign"],
       1, ["foreign", "not a worldmodels dataset"]),
      ("train: unbuilt catalog name", ["experiments.train", TD3BC,
                                       "--config.dataset.path=vd4rl/walker_walk/medium/state",
                                       f"--config.dataset.root={i}/nocatalog"], 1,
       ["vd4rl/walker_walk/medium/state", "generate walker-walk"]),
      ("train: observation size mismatch", ["experiments.train", TD3BC,
                                            f"--config.dataset.path={i}/small",
                                            "--config.env.task=walker-walk"], 1,
       ["does not fit", "float32[5] here and float32[24] there", "actions are 2-d"]),
      ("train: existing save_replay", ["experiments.train",
                                       "--config=experiments/configs/sac.py:tiny",
                                       f"--config.save_replay={i}/existing"], 1,
       ["save_replay", "already exists"]),
      ("train: world model for another dataset", ["experiments.train",
                                                  "--config=experiments/configs/mopo.py:tiny",
                                                  f"--config.dataset.path={i}/walker",
                                                  f"--config.agent.model_path={i}/small"], 1,
       ["small", "not a model artifact"]),
      ("train: unreadable checkpoints", ["experiments.train", TD3BC,
                                         f"--config.workdir={i}/corrupt",
                                         f"--config.dataset.path={i}/walker",
                                         "--config.agent.num_steps=100",
                                         "--config.loop.eval_episodes=0"], 1,
       ["corrupt/checkpoints", "no checkpoint can be read"]),
      ("train: NaN stop", ["experiments.train", TD3BC, f"--config.dataset.path={i}/walker",
                           f"--config.workdir={i}/nan", "--config.agent.critic_lr=1e38",
                           "--config.agent.actor_lr=1e38", "--config.loop.eval_episodes=0"], 1,
       ["non-finite value", "phase 'td3bc'"]),
      ("train: a mesh larger than the machine", ["experiments.train", TD3BC,
                                                  f"--config.dataset.path={i}/walker",
                                                  "--config.mesh.seeds=2"], 1,
       ["--config.mesh.members/seeds/data", "needs 2 devices; there are 1"]),
      ("train: seeds of an online agent", ["experiments.train",
                                           "--config=experiments/configs/sac.py:tiny",
                                           "--config.env.task=walker-walk",
                                           "--config.num_seeds=2"], 1,
       ["num_seeds=2", "one seed per run"]),
      ("train_model: half the multi-host flags", ["experiments.train_model", ENSEMBLE,
                                                  f"--config.dataset.path={i}/small",
                                                  f"--config.output={i}/m",
                                                  "--num_processes=2"], 1,
       ["--num_processes", "--coordinator_address, --process_id"]),
      ("train_model: missing dataset", ["experiments.train_model", ENSEMBLE,
                                        f"--config.dataset.path={i}/missing",
                                        f"--config.output={i}/m"], 1, ["missing"]),
      ("train_model: existing output", ["experiments.train_model", ENSEMBLE,
                                        f"--config.dataset.path={i}/small",
                                        f"--config.output={i}/existing"], 1,
       ["existing", "never overwritten"]),
      ("train_model: too few transitions", ["experiments.train_model",
                                            "--config=experiments/configs/ensemble.py:default",
                                            f"--config.dataset.path={i}/small",
                                            f"--config.output={i}/m"], 1,
       ["too few for the ensemble", "ensemble.py:tiny"]),
      ("train: an RSSM of another dataset", ["experiments.train",
                                              "--config=experiments/configs/offline_dv2.py:tiny",
                                              f"--config.dataset.path={i}/walker",
                                              f"--config.agent.model_path={i}/rssm5"], 1,
       ["rssm5: the RSSM does not fit the data", "float32[5] in the model and float32[24]"]),
      ("train_model: sequences longer than every episode", [
          "experiments.train_model", "--config=experiments/configs/rssm.py:tiny",
          f"--config.dataset.path={i}/small", f"--config.output={i}/m",
          "--config.model.sequence_length=500"], 1,
       ["phase 'rssm'", "sequences of 500 steps", "the longest has 31 steps"]),
      ("train_model: mistyped override", ["experiments.train_model", ENSEMBLE,
                                          "--config.model.num_member=3"], 2,
       ["model.num_member", "model.num_members"]),
      ("datasets stats: missing", ["benchmarks.datasets", "stats", f"{i}/missing"], 1,
       ["missing", "does not exist"]),
      ("datasets generate: unknown task", ["benchmarks.datasets", "generate", "dog-fly/tiny",
                                           "--root", f"{i}/gen"], 1, ["dog-fly"]),
      ("datasets generate: bad --set", ["benchmarks.datasets", "generate", "walker-walk/tiny",
                                        "--root", f"{i}/gen", "--set", "seed=x"], 1,
       ["seed", "'x'"]),
      ("datasets import: unknown format", ["benchmarks.datasets", "import", "csv", f"{i}/walker",
                                           f"{i}/imported", "--task", "t"], 2, ["csv"]),
      ("mopo.run: missing dataset", ["experiments.mopo.run", "--tiny",
                                     f"--dataset={i}/missing", f"--workdir={i}/w1"], 1,
       ["missing"]),
      ("augwm.run: unknown sizes", ["experiments.augwm.run", "--sizes=huge"], 2,
       ["sizes", "huge"]),
      ("demo: two result places", ["experiments.demo", "--tiny", "--publish",
                                   f"--results_dir={i}/r", f"--workdir={i}/w2"], 1,
       ["--publish and --results_dir"]),
      ("table1: no results place", ["experiments.augwm.table1"], 1, ["--results_dir", "--publish"]),
      ("online_offline: wrong type", ["experiments.online_offline", "--sac_steps=many"], 2,
       ["sac_steps", "many"]),
      ("perf: unknown benchmark", ["benchmarks.perf", "fastest"], 2, ["fastest"]),
  ]


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0])
def test_bad_input_gives_one_paragraph_and_changes_nothing(inputs, case):
  _, args, status, words = case
  args = [a.replace("{inputs}", str(inputs)) for a in args]
  before = {name: _tree_digest(inputs / name) for name in ("walker", "small", "existing")}
  out = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == status, (out.returncode, out.stdout[-1500:], out.stderr[-1500:])
  assert "Traceback" not in out.stderr + out.stdout, out.stderr[-3000:]
  message = out.stderr
  for word in words:
    assert word.replace("{inputs}", str(inputs)) in message, (word, message[-2000:])
  assert {name: _tree_digest(inputs / name) for name in before} == before
  assert not np.any([n.endswith(".lock") for n in os.listdir(inputs)])  # no lock left


@pytest.mark.parametrize("program, own_flags", [
    ("experiments.mopo.run", ["--tiny", "--workdir", "--results_dir", "--publish", "--seeds"]),
    ("experiments.demo", ["--tiny", "--workdir", "--publish", "--no_context_augmentations"]),
])
def test_program_help_lists_its_own_flags(program, own_flags):
  """``--help`` (not only ``--helpfull``) shows the flags a user of the program sets."""
  out = subprocess.run([sys.executable, "-m", program, "--help"], cwd=REPO_ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 1, out.stderr[-2000:]  # absl's --help exits with status 1
  assert "Traceback" not in out.stderr, out.stderr[-2000:]
  for flag in own_flags:  # "--workdir:" or, for booleans, "--[no]tiny:"
    assert re.search(rf"--(\[no\])?{flag[2:]}:", out.stdout), (flag, out.stdout[-3000:])
