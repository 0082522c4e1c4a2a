"""The documented path works as written: every command of README.md (its two set-up commands,
the "Using the pieces" block, the Python snippet) and of WORKSPACE.md's command table runs, in
the documented order, at tiny size.

Each command is run as the docs give it, changed only by the substitutions listed in
``TINY`` below (a tiny preset or ``--tiny``, and paths under a temporary directory), so a
command that changes in the docs without a matching entry here fails the suite: the docs cannot
go stale. The commands run in a scratch directory that links to the repository's
``experiments/`` (for the config files), so their default ``runs/`` and results land there.
Checks on the outputs sit beside each command (these runs are also the launchers' smoke tests).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from worldmodels.data import load_dataset, read_metadata

ENV = dict(os.environ, MUJOCO_GL="egl", PYTHONHASHSEED="0")

# Commands that are not run here, and why.
NOT_RUN = {
    "make test": "the suite itself",
    "make test-slow": "the slow tests (make test-slow)",
    "make venv": "the tests run inside the virtual environment it makes",
    "bash .ci/run": "CI's make test",
    # Benchmarks whose tiny runs are compile-bound (about 30 s each): run in process by the slow
    # tests of tests/test_perf.py instead, to keep the default suite under 15 minutes.
    "python -m benchmarks.perf seeds": "tests/test_perf.py::test_seeds_benchmark_runs_small (slow)",
    "python -m benchmarks.perf evaluation": "tests/test_perf.py::"
                                            "test_evaluation_benchmark_runs_small",
    "python -m benchmarks.perf rssm": "tests/test_perf.py::test_rssm_benchmark_runs_small (slow)",
    "python -m benchmarks.perf drqbc": "tests/test_perf.py::test_drqbc_benchmark_runs_small (slow)",
    # Their parts run in the default tier (tests/test_perf.py::test_benchmarks_run_small and
    # ::test_render_benchmark_runs_small); their command-line mains at tiny size are slow tests.
    "python -m benchmarks.perf sac": "tests/test_perf.py::test_benchmark_mains_run_small (slow)",
    "python -m benchmarks.perf ensemble": "tests/test_perf.py::test_benchmark_mains_run_small "
                                          "(slow)",
    "python -m benchmarks.perf rollout": "tests/test_perf.py::test_benchmark_mains_run_small "
                                         "(slow)",
    "python -m benchmarks.perf render --frames 10000": "tests/test_perf.py::"
                                                       "test_benchmark_mains_run_small (slow)",
    # The MrCoM suite's commands: tiny versions run by the slow tests beside their code (a
    # behaviour SAC per scenario and the adaptation runs are compile-bound, about a minute).
    "python -m benchmarks.scenarios generate --embodiment walker-walk --split id-dynamics "
    "--count 2 --kinds random,mixed": "tests/test_scenario_datasets.py::"
                                      "test_the_documented_commands_run_small (slow)",
    "python -m experiments.mrcom.cadm": "tests/test_scenario_datasets.py::"
                                        "test_the_documented_commands_run_small (slow)",
}

# Commands run by the slow side chain ``test_the_slow_documented_commands_run_as_written``
# instead of the default chain (to keep the default suite under 15 minutes), in this order,
# with their TINY substitutions and checks. The AugWM table-1 pair builds its own tiny dataset,
# ensemble and agents (about 45 s), and the other-shifts grid evaluates every agent of the AugWM
# run on crippled joints (about 45 s); ``experiments.augwm.run`` stays in the default chain.
SLOW_CHAIN = (
    "python -m experiments.augwm.run --dataset=vd4rl/cheetah_run/random/state "
    "--results_dir=runs/table1/random",
    "python -m experiments.augwm.table1 --kinds=random --results_dir=runs/table1",
    "python -m experiments.augwm.other_shifts",
)
NOT_RUN.update({command: "tests/test_docs.py::test_the_slow_documented_commands_run_as_written "
                "(slow)" for command in SLOW_CHAIN})
# What the slow chain needs first (also in the default chain): the tiny walker-walk random
# dataset, and the MOPO and AugWM runs whose agents the other-shifts grid reuses.
SLOW_CHAIN_SETUP = ("python -m benchmarks.datasets generate walker-walk/cpu --pixels 64 "
                    "--root ~/data", "python -m experiments.mopo.run",
                    "python -m experiments.augwm.run --no_context_augmentations=rad,rans,das")

# Documented command -> the substitutions that make it tiny: (old, new) pairs (each `old` must
# occur in the command) and arguments appended.
TINY = {
    "make demo": ([("make demo", "python -m experiments.demo")], ["--tiny"]),
    "python -m experiments.train --config=experiments/configs/sac.py:demo "
    "--config.env.task=cheetah-run --config.save_replay=/tmp/replay": ([(":demo", ":tiny")], []),
    "python -m experiments.train --config=experiments/configs/td3bc.py:demo "
    "--config.dataset.path=/tmp/replay": ([(":demo", ":tiny")], []),
    "python -m benchmarks.datasets stats /tmp/replay": ([], []),
    "python -m experiments.train_model --config=experiments/configs/ensemble.py:default "
    "--config.dataset.path=/tmp/replay --config.output=/tmp/ensemble": (
        [(":default", ":tiny")], []),
    "python -m experiments.train --config=experiments/configs/mopo.py:demo "
    "--config.dataset.path=/tmp/replay --config.agent.model_path=/tmp/ensemble": (
        [(":demo", ":tiny")], []),
    "python -m benchmarks.datasets generate walker-walk/cpu --pixels 64 --root ~/data": (
        [("walker-walk/cpu", "walker-walk/tiny"), ("--pixels 64", "--pixels 16")],
        ["--kinds", "random"]),
    "python -m benchmarks.datasets list --root ~/data": ([], []),
    "python -m benchmarks.datasets import d4rl-hdf5 halfcheetah.hdf5 /tmp/hc "
    "--task HalfCheetah-v5": ([], []),  # the test writes a small D4RL-layout halfcheetah.hdf5
    # WORKSPACE.md's table.
    "python -m experiments.demo": ([], ["--tiny"]),  # = make demo: resumes its finished run
    "python -m experiments.mopo.run": ([], ["--tiny"]),
    # On the tiny SAC replay of the command above, reusing its ensemble and TD3+BC seeds.
    "python -m experiments.mopo.lambda_sweep --task=HalfCheetah-v5 "
    "--dataset=d4rl/halfcheetah/medium --preset=halfcheetah-medium": (
        [("--task=HalfCheetah-v5 --dataset=d4rl/halfcheetah/medium ", "")],
        ["--tiny", "--lambdas=0,1"]),
    "python -m experiments.augwm.run --no_context_augmentations=rad,rans,das": (
        [("rad,rans,das", "rans")], ["--tiny"]),  # one of the three: the same code path
    "python -m experiments.online_offline": ([], ["--tiny"]),
    "python -m experiments.augwm.run --dataset=vd4rl/cheetah_run/random/state "
    "--results_dir=runs/table1/random": (
        [("cheetah_run", "walker_walk")],
        ["--tiny", "--seeds=1", "--task=walker-walk", "--workdir=runs/table1-run",
         "--data_root=data"]),
    "python -m experiments.augwm.table1 --kinds=random --results_dir=runs/table1": ([], []),
    # The walker-walk tiny random dataset (built by the first command that needs it).
    "python -m experiments.vd4rl.offline_dv2": (
        [], ["--tiny", "--kinds=random", "--seeds=2", "--data_root=data"]),
    # The same tiny dataset, rendered at 16 px; one agent (the others' tiny runs are the agent
    # tests' and Offline DV2's command above).
    "python -m experiments.vd4rl.table1": (
        [], ["--tiny", "--agents=bc", "--tasks=walker-walk", "--kinds=random", "--seeds=2",
             "--data_root=data"]),
    # On the tiny SAC replay of the README's first command.
    "python -m experiments.augwm.linear_r2 --datasets=d4rl/halfcheetah/medium,"
    "d4rl/halfcheetah/random": (
        [("d4rl/halfcheetah/medium,d4rl/halfcheetah/random", "/tmp/replay")],
        ["--episodes=2"]),
    # The tiny walker-walk random dataset of the README (it records the physics states).
    "python -m experiments.augwm.oracle --task=HalfCheetah-v5 "
    "--dataset=d4rl/halfcheetah/medium --preset=halfcheetah-medium": (
        [("--task=HalfCheetah-v5 --dataset=d4rl/halfcheetah/medium",
          "--task=walker-walk --dataset=vd4rl/walker_walk/random/state")],
        ["--tiny", "--seeds=1", "--data_root=data", "--workdir=runs/oracle"]),
    # The tiny preset's 2 seeds: the vmapped MOPO and AugWM runs of the commands above reused.
    "python -m experiments.augwm.other_shifts": ([], ["--tiny"]),
    "python -m experiments.augwm.mid_episode": ([], ["--tiny"]),
    "python -m experiments.augwm.run --sizes=paper": ([("paper", "tiny")], []),
    "python -m experiments.replot experiments/demo": (
        [("experiments/demo", "runs/mopo/results/augwm")], []),  # never the committed figures
    "python -m benchmarks.datasets generate walker-walk/cpu --kinds random,medium --pixels 64 "
    "--root ~/data": ([("walker-walk/cpu", "walker-walk/tiny"), ("random,medium", "random"),
                       ("--pixels 64", "--pixels 16")], []),
    "python -m benchmarks.datasets render ~/data/vd4rl/walker_walk/random/state "
    "/tmp/random-84px --size 84": ([], []),
}


def _read(name: str) -> str:
  with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as f:
    return f.read()


def _blocks(text: str, language: str) -> list:
  return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def readme_commands() -> list:
  """README.md's shell commands, in order: the two set-up commands, then "Using the pieces"
  (continuation lines joined, comments dropped, ``.venv/bin/python`` as ``python``)."""
  commands = []
  for block in _blocks(_read("README.md"), "bash"):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.split(" #", 1)[0].strip()
      if line and not line.startswith("#"):
        commands.append(" ".join(line.replace(".venv/bin/python", "python").split()))
  return commands


def workspace_commands() -> list:
  """The code spans of the first column of WORKSPACE.md's command table, in order."""
  table = _read("WORKSPACE.md").split("## Commands", 1)[1]
  commands = []
  for row in table.splitlines():
    if row.startswith("| `"):
      first = row.split(" | ")[0]
      commands += [c.replace("\\|", "|") for c in re.findall(r"`([^`]+)`", first)]
  return commands


def test_every_documented_command_has_a_tiny_version():
  documented = readme_commands() + workspace_commands()
  unknown = [c for c in documented if c not in TINY and c not in NOT_RUN]
  assert not unknown, f"documented commands with no tiny substitution in tests/test_docs.py: {unknown}"
  stale = set(TINY) - set(documented)
  assert not stale, f"substitutions of commands the docs no longer have: {stale}"
  assert readme_commands()[:2] == ["make demo", "make test"]  # the README's two commands


def _tiny(command: str, scratch: str) -> list:
  replacements, extra = TINY[command]
  for old, new in replacements:
    assert old in command, (old, command)
    command = command.replace(old, new)
  command = command.replace("/tmp/", f"{scratch}/tmp/").replace("~/data", f"{scratch}/data")
  words = shlex.split(command) + extra
  assert words[:2] == ["python", "-m"], words
  return [sys.executable] + words[1:]


def _write_halfcheetah_file(path: str) -> None:
  """A small file in the D4RL HalfCheetah layout (17-d observations, 6-d actions)."""
  import h5py  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  n = 60
  with h5py.File(path, "w") as f:
    f.create_dataset("observations", data=rng.normal(size=(n, 17)).astype(np.float32))
    f.create_dataset("next_observations", data=rng.normal(size=(n, 17)).astype(np.float32))
    f.create_dataset("actions", data=rng.uniform(-1, 1, (n, 6)).astype(np.float32))
    f.create_dataset("rewards", data=rng.normal(size=n).astype(np.float32))
    f.create_dataset("terminals", data=np.zeros(n, bool))
    f.create_dataset("timeouts", data=np.isin(np.arange(n), [29, 59]))


def _checks(scratch: str) -> dict:
  """Command -> what its outputs must show (beyond exit status 0 and no traceback)."""
  s = lambda *parts: os.path.join(scratch, *parts)

  def replay(out):
    assert "Return median" in out  # the dataset statistics table
    metadata = read_metadata(s("tmp", "replay"))
    assert metadata["task"] == "cheetah-run" and metadata["num_transitions"] == 200

  def td3bc(out):
    assert "(td3bc, cheetah-run)" in out  # evaluated on the dataset's own task

  def mopo(out):
    assert "(mopo, cheetah-run)" in out and np.isfinite(float(out.split("final evaluation: ")[1]
                                                              .split(" ")[0]))

  def demo(results):
    def check(out):
      assert "| MOPO | 1 |" in out and "| AugWM (DAS, learned context) | 1 |" in out
      text = open(s(results, "RESULTS.md")).read()
      assert "python -m experiments.demo --tiny" in text and "SAC replay" in text
      assert "± " not in text.split("| MOPO | 1 |")[1].split("|")[1]  # no ± over one seed
      for png in ("grid_mopo.png", "overview.png"):
        assert os.path.getsize(s(results, png)) > 5_000
    return check

  def augwm(out):
    assert "| AugWM (DAS, learned context) | 2 |" in out and "| RANS (no context) | 2 |" in out
    text = open(s("runs", "mopo", "results", "augwm", "RESULTS.md")).read()
    assert "MOPO minus" not in text and "AugWM (DAS, learned context) minus MOPO" in text
    assert "one-step-ahead R^2" in text and "two-sided Welch t-test over seeds" in text
    assert "### Aggregates over cells" in text and "| MOPO | " in text.split("Aggregates")[1]
    # The unshifted return of an agent acting with its own policy is the loop's final
    # evaluation: the same episodes.
    # The two seeds trained as one vmapped run.
    summary = json.load(open(s("runs", "mopo", "mopo-seeds0-1", "summary.json")))
    unshifted = json.load(open(s("runs", "mopo", "results", "augwm", "results.json")))[
        "unshifted"]
    assert summary["seeds"] == [0, 1]
    np.testing.assert_allclose(unshifted["MOPO"], summary["final_return_per_seed"], rtol=1e-6)

  def lambda_sweep(out):
    assert "== ensemble" not in out and "== td3bc" in out  # the MOPO experiment's, reused
    text = open(s("runs", "mopo", "results", "lambda_sweep", "cheetah_run_sac_replay", "RESULTS.md")).read()
    assert "| 0 | " in text or "| 0 (chosen) | " in text
    assert "ccepted**" in text and "TD3+BC" in text
    sweep = json.load(open(s("runs", "mopo", "results", "lambda_sweep", "cheetah_run_sac_replay",
                             "results.json")))
    assert sorted(sweep["returns"]) == ["0", "1"] and sweep["choice"]["lambda"] in (0.0, 1.0)

  def linear_r2(out):
    results = json.load(open(s("runs", "linear_r2", "results.json")))["r2"]
    per_features = next(iter(results.values()))
    assert sorted(per_features) == ["[s, 1]", "[s, a, 1]"]
    assert all(len(v) == 2 and all(np.isfinite(v)) for v in per_features.values())
    assert "| [s, a, 1] mean |" in out

  def oracle(out):
    assert "== true z of mass×1.5,damping×1.5: [" in out
    assert "| Oracle (AugWM trained with the true z) | 1 |" in out
    text = open(s("runs", "oracle", "results", "oracle", "RESULTS.md")).read()
    assert "Oracle (AugWM trained with the true z) minus AugWM (DAS, learned context)" in text
    made = json.load(open(glob.glob(s("runs", "oracle", "augwm-das-true-z-*-seed0",
                                      "fingerprint.json"))[0]))
    assert len(made["config"]["agent"]["train_z"]) == 24  # walker-walk's state dimensions

  def table1_run(out):
    assert "| walker-walk random |" in open(s("runs", "table1", "random", "RESULTS.md")).read()

  def table1(out):
    assert "| random | " in out and "(p=" in out

  def other_shifts(out):
    assert "Resuming from checkpoint" in out and "== ensemble" not in out  # agents reused
    assert "one crippled leg" in out
    assert "crippled:front_leg" in open(s("runs", "mopo", "results", "other_shifts",
                                          "RESULTS.md")).read()

  def mid_episode(out):
    assert "| MOPO | 2 |" in out  # 2 seeds x 1 episode
    assert os.path.getsize(s("runs", "mopo", "results", "mid_episode", "mid_episode.png")) > 5_000

  def paper_sizes_as_tiny(out):
    assert "== ensemble" not in out and "Resuming from checkpoint" in out  # all reused
    # A changed grid is evaluated anew, never served from the cache of the first grid.
    again = subprocess.run([sys.executable, "-m", "experiments.augwm.run", "--tiny",
                            "--factors=1.0", "--results_dir=runs/one-cell"], cwd=scratch,
                           env=dict(ENV, PYTHONPATH=REPO_ROOT), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Grid: 1 cells" in open(s("runs", "one-cell", "RESULTS.md")).read()
    caches = [n for n in os.listdir(s("runs", "mopo", "mopo-seeds0-1"))
              if n.startswith("grid-mopo-")]
    assert len(caches) == 4, caches  # per seed: the 3 x 3 grid's and the 1-cell grid's

  def online_offline(out):
    assert "| SAC (online)" in out and "| TD3+BC (offline)" in out
    text = open(s("runs", "online_offline", "results", "RESULTS.md")).read()
    assert "random policy" in text and "git revision" in text

  def vd4rl_table1(out):
    assert "| walker-walk | random | " in out and "(2.0 ± 0.2)" in out  # BC's paper cell
    cell = json.load(open(s("runs", "vd4rl", "table1", "tiny", "walker_walk", "random", "bc",
                            "cell.json")))
    assert cell["status"] == "done" and len(cell["scores"]) == 2
    assert cell["offline_epochs"] == cell["updates"] * cell["transitions_per_update"] / cell[
        "dataset_transitions"]
    assert os.path.getsize(s("runs", "vd4rl", "table1", "results", "tiny", "table1.png")) > 5_000
    # A finished cell is reused, never rerun; a changed configuration is refused.
    command = [sys.executable, "-m", "experiments.vd4rl.table1", "--tiny", "--agents=bc",
               "--tasks=walker-walk", "--kinds=random", "--data_root=data"]
    run = lambda extra: subprocess.run(command + extra, cwd=scratch,
                                       env=dict(ENV, PYTHONPATH=REPO_ROOT), capture_output=True,
                                       text=True, timeout=600)
    again = run(["--seeds=2"])
    assert again.returncode == 0 and "finished before: reused" in again.stdout, again.stderr[-3000:]
    other = run(["--seeds=3"])
    assert other.returncode != 0 and "config.num_seeds: 2 -> 3" in other.stderr
    assert "Traceback" not in other.stderr

  def imported(out):
    del out
    steps, metadata = load_dataset(s("tmp", "hc"))
    assert metadata["task"] == "HalfCheetah-v5" and steps.num_episodes == 2

  return {
      "make demo": demo(os.path.join("runs", "demo", "results", "demo")),
      "python -m experiments.demo": demo(os.path.join("runs", "demo", "results", "demo")),
      "python -m experiments.train --config=experiments/configs/sac.py:demo "
      "--config.env.task=cheetah-run --config.save_replay=/tmp/replay": replay,
      "python -m experiments.train --config=experiments/configs/td3bc.py:demo "
      "--config.dataset.path=/tmp/replay": td3bc,
      "python -m experiments.train --config=experiments/configs/mopo.py:demo "
      "--config.dataset.path=/tmp/replay --config.agent.model_path=/tmp/ensemble": mopo,
      "python -m experiments.mopo.lambda_sweep --task=HalfCheetah-v5 "
      "--dataset=d4rl/halfcheetah/medium --preset=halfcheetah-medium": lambda_sweep,
      "python -m experiments.augwm.run --no_context_augmentations=rad,rans,das": augwm,
      "python -m experiments.augwm.run --dataset=vd4rl/cheetah_run/random/state "
      "--results_dir=runs/table1/random": table1_run,
      "python -m experiments.augwm.table1 --kinds=random --results_dir=runs/table1": table1,
      "python -m experiments.augwm.linear_r2 --datasets=d4rl/halfcheetah/medium,"
      "d4rl/halfcheetah/random": linear_r2,
      "python -m experiments.augwm.oracle --task=HalfCheetah-v5 "
      "--dataset=d4rl/halfcheetah/medium --preset=halfcheetah-medium": oracle,
      "python -m experiments.augwm.other_shifts": other_shifts,
      "python -m experiments.augwm.mid_episode": mid_episode,
      "python -m experiments.augwm.run --sizes=paper": paper_sizes_as_tiny,
      "python -m experiments.online_offline": online_offline,
      "python -m experiments.vd4rl.table1": vd4rl_table1,
      "python -m benchmarks.datasets import d4rl-hdf5 halfcheetah.hdf5 /tmp/hc "
      "--task HalfCheetah-v5": imported,
  }


def _scratch(tmp_path) -> str:
  scratch = str(tmp_path)
  os.symlink(os.path.join(REPO_ROOT, "experiments"), os.path.join(scratch, "experiments"))
  os.makedirs(os.path.join(scratch, "tmp"))
  return scratch


def _run_documented(command: str, scratch: str, checks: dict) -> float:
  """Runs one documented command at tiny size, asserts it succeeded and passes its check;
  returns its seconds."""
  started = time.time()
  out = subprocess.run(_tiny(command, scratch), cwd=scratch, env=dict(ENV, PYTHONPATH=REPO_ROOT),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, (command, out.stdout[-3000:], out.stderr[-3000:])
  assert "Traceback" not in out.stderr, (command, out.stderr[-3000:])
  if command in checks:
    checks[command](out.stdout)
  return time.time() - started


def test_the_documented_commands_and_snippet_run_as_written(tmp_path):
  scratch = _scratch(tmp_path)
  _write_halfcheetah_file(os.path.join(scratch, "halfcheetah.hdf5"))
  checks = _checks(scratch)
  readme = readme_commands()
  snippet_after = readme.index("python -m benchmarks.datasets list --root ~/data")
  done, seconds = set(), {}
  for position, command in enumerate(readme + workspace_commands()):
    if command in NOT_RUN or command in done:
      continue
    done.add(command)
    seconds[command] = _run_documented(command, scratch, checks)
    if position == snippet_after:  # the README's Python snippet, after its replay exists
      _run_snippet(scratch, dict(ENV, PYTHONPATH=REPO_ROOT))
  print("\n".join(f"{t:6.1f} s  {c}" for c, t in sorted(seconds.items(), key=lambda x: -x[1])))


@pytest.mark.slow
def test_the_slow_documented_commands_run_as_written(tmp_path):
  scratch = _scratch(tmp_path)
  checks = _checks(scratch)
  documented = readme_commands() + workspace_commands()
  assert all(command in documented for command in SLOW_CHAIN_SETUP + SLOW_CHAIN)
  for command in SLOW_CHAIN_SETUP + SLOW_CHAIN:
    _run_documented(command, scratch, checks)


def _run_snippet(scratch: str, env: dict) -> None:
  (snippet,) = _blocks(_read("README.md"), "python")
  tiny = snippet
  for old, new in (("config.num_steps = 20_000", "config.num_steps = 100"),
                   ("LoopConfig()", "LoopConfig(steps_per_chunk=50, eval_episodes=1)")):
    assert old in tiny, old
    tiny = tiny.replace(old, new)
  tiny = tiny.replace("/tmp/", f"{scratch}/tmp/")
  out = subprocess.run([sys.executable, "-c", tiny], cwd=scratch, env=env, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert np.isfinite(float(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", ["README.md", "WORKSPACE.md"])
def test_docs_name_no_removed_module(name):
  """Paths the docs name exist (a renamed module shows up here first)."""
  text = _read(name)
  for path in set(re.findall(r"`((?:worldmodels|benchmarks|experiments|tests)/[\w/.]+\.py)`",
                             text)):
    assert os.path.exists(os.path.join(REPO_ROOT, path)), (name, path)
