"""Runs and datasets a user can trust: locks, fingerprints, atomic writes that survive a fault
halfway, kill-anywhere resume, and the corrupt-checkpoint fallback.

The wider kill matrix (MOPO, a zero-shot experiment, more kill points) is behind ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import REPO_ROOT, synthetic_steps
from worldmodels import io as wio
from worldmodels.data import DatasetError, EpisodeWriter, load_dataset, write_dataset
from worldmodels.models.artifacts import ModelArtifactError, load_model, save_model
from worldmodels.provenance import FingerprintError, claim, fingerprint
from worldmodels.training.checkpoint import CheckpointError, Checkpointer
from worldmodels.training.logging import MetricsLogger, read_jsonl

ENV = dict(os.environ, MUJOCO_GL="egl", PYTHONHASHSEED="0")


def _python(code: str, *, wait: bool = True, **env):
  command = [sys.executable, "-c", textwrap.dedent(code)]
  if not wait:
    return subprocess.Popen(command, cwd=REPO_ROOT, env=dict(ENV, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return subprocess.run(command, cwd=REPO_ROOT, env=dict(ENV, **env), capture_output=True,
                        text=True, timeout=300)


def _program(*args, fault=None, timeout=300):
  env = dict(ENV, **({wio.FAULT_VARIABLE: fault} if fault else {}))
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _wait_for(path: str, seconds: float = 60.0) -> None:
  deadline = time.time() + seconds
  while not os.path.exists(path):
    assert time.time() < deadline, f"{path} never appeared"
    time.sleep(0.05)


# -- locks --------------------------------------------------------------------------------


def test_a_second_writer_fails_fast_and_names_the_holder(tmp_path):
  """A live process writes a dataset; a second writer (resume, which would clean up the
  first one's unlisted files) and a second training run in a locked workdir are refused."""
  dataset, workdir = tmp_path / "data", tmp_path / "run"
  holder = _python(f"""
      import time, numpy as np
      from worldmodels import io as wio
      from worldmodels.data import EpisodeWriter
      writer = EpisodeWriter({str(dataset)!r}, observation_spec={{"state": ((3,), np.float32)}},
                             action_dim=1, task="t", behaviour_policy="x", action_repeat=1,
                             seed=0)
      open({str(dataset / 'shard-99999.tmp')!r}, "w").write("the first writer's work")
      lock = wio.Lock({str(workdir)!r}, "training")
      lock.acquire()
      print("ready", flush=True)
      time.sleep(60)
      """, wait=False)
  try:
    assert holder.stdout.readline().strip() == "ready"
    with pytest.raises(wio.LockError, match=rf"writing a dataset here \(pid {holder.pid} "):
      EpisodeWriter(dataset, observation_spec={"state": ((3,), np.float32)}, action_dim=1,
                    task="t", behaviour_policy="x", action_repeat=1, seed=0, resume=True)
    assert (dataset / "shard-99999.tmp").exists()  # nothing of the first writer deleted
    from worldmodels.agents import make_agent  # pylint: disable=import-outside-toplevel
    from worldmodels.agents.bc import config as bc_config  # pylint: disable=import-outside-toplevel
    from worldmodels.data.source import DataSource  # pylint: disable=import-outside-toplevel
    from worldmodels.training.loop import LoopConfig, train  # pylint: disable=import-outside-toplevel
    source = DataSource({"d": synthetic_steps((10, 10))})
    with pytest.raises(wio.LockError, match=rf"training here \(pid {holder.pid} "):
      train(make_agent("bc", bc_config.tiny_config(), source.spec()), workdir=str(workdir),
            loop=LoopConfig(eval_episodes=0), data=source)
    assert not (workdir / "checkpoints").exists()
  finally:
    holder.kill()
    holder.wait()


def test_a_stale_lock_of_a_dead_process_is_recovered(tmp_path, capsys):
  target = tmp_path / "work"
  dead = _python(f"""
      import os, signal
      from worldmodels import io as wio
      wio.Lock({str(target)!r}, "training").acquire()
      os.kill(os.getpid(), signal.SIGKILL)
      """)
  assert dead.returncode == -signal.SIGKILL
  assert os.path.exists(str(target) + wio.LOCK_SUFFIX)  # its lock file is left behind
  with wio.Lock(target, "training"):
    assert "recovered the lock" in capsys.readouterr().out
  assert not os.path.exists(str(target) + wio.LOCK_SUFFIX)  # released: no file left


def test_releasing_a_lock_whose_file_was_replaced_leaves_the_new_file(tmp_path):
  """A lock file removed by hand while held, and made anew by another run, stays that run's."""
  target = tmp_path / "work"
  lock_path = str(target) + wio.LOCK_SUFFIX
  with wio.Lock(target, "training"):
    os.unlink(lock_path)
    with open(lock_path, "w") as f:
      f.write("{}")
  assert os.path.exists(lock_path)  # not ours: left in place
  os.unlink(lock_path)
  with wio.Lock(target, "training"):
    os.unlink(lock_path)  # gone by hand: the release does not fail
  assert not os.path.exists(lock_path)


# -- fingerprints -------------------------------------------------------------------------


def test_claim_resumes_the_same_and_refuses_another(tmp_path, capsys):
  asked = fingerprint(config={"lr": 1e-3, "layers": (256, 256)}, dataset={"digest": "aa"})
  (tmp_path / "w").mkdir()
  claim(tmp_path / "w", asked, "run")  # an empty directory takes the fingerprint
  claim(tmp_path / "w", asked, "run")  # the same: reused silently
  other = fingerprint(config={"lr": 3e-4, "layers": (256, 256)}, dataset={"digest": "bb"})
  with pytest.raises(FingerprintError, match=r"config.lr: 0.001 -> 0.0003; dataset.digest: "
                     r"'aa' -> 'bb'"):
    claim(tmp_path / "w", other, "run")
  (tmp_path / "old").mkdir()
  (tmp_path / "old" / "train.jsonl").write_text("{}\n")
  with pytest.raises(FingerprintError, match="without a fingerprint"):
    claim(tmp_path / "old", asked, "run")
  newer = dict(asked, code="0123abc")
  claim(tmp_path / "w", newer, "run")
  assert "was made by code" in capsys.readouterr().out


def test_a_fingerprint_write_killed_halfway_does_not_block_the_rerun(tmp_path):
  """A SIGKILL inside the fingerprint's atomic write leaves ``fingerprint.json.tmp.<pid>``: the
  rerun claims the directory and removes the dead writer's temporary, never a live one's."""
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  dead_pid, live_pid = int(dead.stdout), os.getppid()
  (tmp_path / "w").mkdir()
  (tmp_path / "w" / f"fingerprint.json.tmp.{dead_pid}").write_text('{"conf')
  asked = fingerprint(config={"lr": 1e-3})
  claim(tmp_path / "w", asked, "run")
  assert json.loads((tmp_path / "w" / "fingerprint.json").read_text())["config"] == {"lr": 1e-3}
  assert not (tmp_path / "w" / f"fingerprint.json.tmp.{dead_pid}").exists()
  for pid in (dead_pid, live_pid):
    (tmp_path / "w" / f"summary.json.tmp.{pid}").write_text("{")
  wio.atomic_json(tmp_path / "w" / "summary.json", {"done": True})
  assert not (tmp_path / "w" / f"summary.json.tmp.{dead_pid}").exists()
  assert (tmp_path / "w" / f"summary.json.tmp.{live_pid}").exists()  # a live writer's


def _td3bc_config(workdir, dataset):
  from experiments.configs import td3bc as td3bc_configs  # pylint: disable=import-outside-toplevel
  c = td3bc_configs.get_config("tiny")
  c.workdir, c.dataset.path = (str(workdir) if workdir else None), str(dataset)
  c.agent.num_steps, c.loop.eval_episodes = 60, 0
  return c


def test_a_workdir_of_dataset_a_is_not_resumed_for_dataset_b(tmp_path):
  from experiments import train as train_launcher  # pylint: disable=import-outside-toplevel
  for name, seed in (("a", 0), ("b", 1)):
    write_dataset(tmp_path / name, synthetic_steps((60, 60), obs_dim=24, action_dim=6,
                                                   seed=seed),
                  task="walker-walk", behaviour_policy="synthetic", action_repeat=2, seed=seed)
  train_launcher.run(_td3bc_config(tmp_path / "run", tmp_path / "a"))
  with pytest.raises(FingerprintError, match=r"dataset.digest.*dataset.path"):
    train_launcher.run(_td3bc_config(tmp_path / "run", tmp_path / "b"))
  # Default workdirs are named after what makes the run, so they never collide.
  first, second = (_td3bc_config(None, tmp_path / n) for n in "ab")
  names = {train_launcher.default_workdir(c, train_launcher.run_fingerprint(
      c, train_launcher.load_source(c))) for c in (first, second)}
  assert len(names) == 2 and all(os.path.basename(n).startswith("td3bc-") for n in names)


def test_an_ensemble_trained_on_another_dataset_is_not_reused(tmp_path):
  from experiments import zero_shot  # pylint: disable=import-outside-toplevel
  from experiments.configs import zero_shot as size_configs  # pylint: disable=import-outside-toplevel
  for name, seed in (("a", 0), ("b", 1)):
    write_dataset(tmp_path / name, synthetic_steps((80, 80), obs_dim=5, action_dim=2,
                                                   seed=seed),
                  task="synthetic", behaviour_policy="synthetic", action_repeat=1, seed=seed)
  sizes = size_configs.get_config("tiny")
  workdir = str(tmp_path / "work")
  source = zero_shot.load_source(str(tmp_path / "a"))
  model = zero_shot.ensure_model(str(tmp_path / "a"), workdir, sizes, source)
  assert zero_shot.ensure_model(str(tmp_path / "a"), workdir, sizes, source) == model  # reused
  with pytest.raises(FingerprintError, match=r"world model was made by another.*--workdir"):
    zero_shot.ensure_model(str(tmp_path / "b"), workdir, sizes,
                           zero_shot.load_source(str(tmp_path / "b")))


# -- writes that fail halfway -------------------------------------------------------------


class _Fault(RuntimeError):
  pass


def _raise_on_call(n: int):
  """A function that raises the n-th time it is called (the write halfway)."""
  calls = {"count": 0}

  def maybe_raise(*args, **kwargs):
    del args, kwargs
    calls["count"] += 1
    if calls["count"] == n:
      raise _Fault("the disk went away")

  return maybe_raise


def test_a_replay_export_that_fails_halfway_leaves_no_dataset(tmp_path, monkeypatch):
  steps = synthetic_steps((20, 20, 20, 20), obs_dim=3, action_dim=1)
  fail = _raise_on_call(3)
  original = EpisodeWriter.add_episode

  def add_episode(self, episode):
    fail()
    return original(self, episode)

  monkeypatch.setattr(EpisodeWriter, "add_episode", add_episode)
  kwargs = dict(task="t", behaviour_policy="replay", action_repeat=1, seed=0,
                episodes_per_shard=1)
  with pytest.raises(_Fault):
    write_dataset(tmp_path / "replay", steps, **kwargs)
  assert not (tmp_path / "replay").exists()  # the two written episodes are not a dataset
  with pytest.raises(DatasetError, match="no such dataset"):
    load_dataset(tmp_path / "replay")
  monkeypatch.setattr(EpisodeWriter, "add_episode", original)
  write_dataset(tmp_path / "replay", steps, **kwargs)  # the rerun writes it whole
  assert load_dataset(tmp_path / "replay")[1]["num_episodes"] == 4
  assert not (tmp_path / ("replay" + wio.PARTIAL_SUFFIX)).exists()


def test_a_model_artifact_save_that_fails_halfway_leaves_no_artifact(tmp_path, monkeypatch):
  from tests.conftest import tiny_world_model  # pylint: disable=import-outside-toplevel
  from worldmodels.models import artifacts  # pylint: disable=import-outside-toplevel
  model_def, params = tiny_world_model(3, 2)
  monkeypatch.setattr(artifacts, "atomic_json", lambda *a, **k: _raise_on_call(1)())
  with pytest.raises(_Fault):
    save_model(tmp_path / "m", model_def, params)
  with pytest.raises(ModelArtifactError, match="not a model artifact"):
    load_model(tmp_path / "m")
  monkeypatch.undo()
  save_model(tmp_path / "m", model_def, params)  # the rerun saves it
  assert load_model(tmp_path / "m")[0] == model_def


def test_a_cached_grid_or_summary_that_fails_halfway_is_recomputed(tmp_path, monkeypatch):
  from benchmarks.protocols.zero_shot import GridResult  # pylint: disable=import-outside-toplevel
  from experiments import zero_shot  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "grid-mopo-12345678.json")
  computed = []

  def compute():
    computed.append(1)
    return GridResult(("a",), (None,), np.ones((1, 1, 2)), (0,))

  real_fsync = os.fsync
  monkeypatch.setattr(os, "fsync", _raise_on_call(1))  # the data is written, not yet synced
  with pytest.raises(_Fault):
    zero_shot._cached(path, compute)  # pylint: disable=protected-access
  assert not os.path.exists(path)  # no torn cache file
  monkeypatch.setattr(os, "fsync", real_fsync)
  assert zero_shot._cached(path, compute).returns.shape == (1, 1, 2)  # pylint: disable=protected-access
  assert zero_shot._cached(path, compute).returns.shape == (1, 1, 2)  # pylint: disable=protected-access
  assert computed == [1, 1]  # recomputed once after the fault, then served from the cache
  # A summary is the same atomic write: the old one stays whole when the new one fails.
  summary = tmp_path / "summary.json"
  wio.atomic_json(summary, {"final_return_mean": 1.0})
  monkeypatch.setattr(os, "fsync", _raise_on_call(1))
  with pytest.raises(_Fault):
    wio.atomic_json(summary, {"final_return_mean": 2.0})
  assert json.loads(summary.read_text()) == {"final_return_mean": 1.0}


def test_metrics_logs_tolerate_a_torn_line_and_hold_each_step_once(tmp_path):
  logger = MetricsLogger(str(tmp_path))
  for step in (10, 20, 30):
    logger.write("train", step, "p", {"loss": step / 10})
  with open(tmp_path / "train.jsonl", "a") as f:
    f.write('{"step": 40, "pha')  # a kill mid-row
  assert [r["step"] for r in read_jsonl(str(tmp_path / "train.jsonl"))] == [10, 20, 30]
  logger = MetricsLogger(str(tmp_path))
  logger.truncate(20)  # resumed from the checkpoint at step 20
  logger.write("train", 30, "p", {"loss": 3.5})
  assert [r["step"] for r in read_jsonl(str(tmp_path / "train.jsonl"))] == [10, 20, 30]
  assert (tmp_path / "train.csv").read_text().splitlines() == [
      "step,phase,loss", "10,p,1.0", "20,p,2.0", "30,p,3.5"]
  (tmp_path / "bad.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
  with pytest.raises(ValueError, match="line 2 is not valid JSON"):
    read_jsonl(str(tmp_path / "bad.jsonl"))


# -- checkpoints --------------------------------------------------------------------------


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
  checkpointer = Checkpointer(str(tmp_path), max_to_keep=2)
  like = {"w": np.zeros(3, np.float32), "step": np.int32(0)}
  for step in (1, 2):
    checkpointer.save(step, {"w": np.full(3, step, np.float32), "step": np.int32(step)})
  assert checkpointer.all_steps() == [1, 2]
  def truncate(step):  # every file of the checkpoint cut to nothing
    for root, _, files in os.walk(tmp_path / "checkpoints" / str(step)):
      for name in files:
        open(os.path.join(root, name), "wb").close()

  truncate(2)
  step, tree = checkpointer.restore_latest(like)
  assert step == 1 and tree["w"].tolist() == [1.0, 1.0, 1.0]
  out = capsys.readouterr().out
  assert "checkpoints/2 cannot be read" in out and "falling back to the previous one" in out
  truncate(1)
  with pytest.raises(CheckpointError, match="no checkpoint can be read"):
    checkpointer.restore_latest(like)


# -- kill anywhere ------------------------------------------------------------------------


def _final_checkpoint(workdir: str) -> dict:
  steps = sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())
  return ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(steps[-1]), "default"))


def _assert_same(a, b) -> None:
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _steps_once(workdir: str) -> None:
  for stream in ("train", "eval"):
    path = os.path.join(workdir, f"{stream}.jsonl")
    if os.path.exists(path):
      steps = [(r["phase"], r["step"]) for r in read_jsonl(path)]
      assert len(steps) == len(set(steps)), (stream, steps)


def _killed_then_resumed(args, fault: str, workdir: str):
  killed = _program(*args, fault=fault)
  assert killed.returncode == -signal.SIGKILL, (fault, killed.stdout[-2000:], killed.stderr[-2000:])
  resumed = _program(*args)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _steps_once(workdir)
  return resumed


SAC_TINY = ("experiments.train", "--config=experiments/configs/sac.py:tiny")


@pytest.fixture(scope="module")
def sac_reference(tmp_path_factory):
  """An uninterrupted tiny online SAC run and its exported replay."""
  root = tmp_path_factory.mktemp("sac")
  out = _program(*SAC_TINY, f"--config.workdir={root / 'straight'}",
                 f"--config.save_replay={root / 'straight-replay'}")
  assert out.returncode == 0, out.stderr[-2000:]
  return root


@pytest.mark.parametrize("fault", [pytest.param("checkpoint.written:2", marks=pytest.mark.slow),
                                   pytest.param("metrics.row:3", marks=pytest.mark.slow),
                                   pytest.param("atomic_directory.rename:1",
                                                marks=pytest.mark.slow)])
def test_online_sac_killed_anywhere_ends_bit_identical(sac_reference, tmp_path, fault):
  """Killed during its second checkpoint save, mid-way through a log row, or as its replay
  is renamed into place (all slow; tests/test_loop.py resumes an online run in the default
  suite): the rerun ends with the same parameters and the same
  exported replay as an uninterrupted run."""
  def args(name):
    return (*SAC_TINY, f"--config.workdir={tmp_path / name}",
            f"--config.save_replay={tmp_path / (name + '-replay')}")

  _killed_then_resumed(args("killed"), fault, str(tmp_path / "killed"))
  _assert_same(_final_checkpoint(str(tmp_path / "killed"))["agent"],
               _final_checkpoint(str(sac_reference / "straight"))["agent"])
  _assert_same(load_dataset(tmp_path / "killed-replay")[0],
               load_dataset(sac_reference / "straight-replay")[0])


@pytest.mark.slow  # moved out of the default run to keep it under 15 minutes (the loop-level
# kill and resume of the ensemble phase stays there: tests/test_ensemble.py)
def test_train_model_killed_before_its_artifact_is_complete_ends_bit_identical(tmp_path):
  write_dataset(tmp_path / "data", synthetic_steps((80, 80, 80), obs_dim=5, action_dim=2),
                task="synthetic", behaviour_policy="synthetic", action_repeat=1, seed=0)

  def args(name):
    return ("experiments.train_model", "--config=experiments/configs/ensemble.py:tiny",
            f"--config.dataset.path={tmp_path / 'data'}", f"--config.output={tmp_path / name}")

  assert _program(*args("straight")).returncode == 0
  _killed_then_resumed(args("killed"), "artifact.params:1", str(tmp_path / "killed.train"))
  _assert_same(load_model(tmp_path / "killed")[1], load_model(tmp_path / "straight")[1])


@pytest.mark.slow  # moved out of the default run to keep it under 15 minutes
def test_dataset_generation_killed_mid_shard_ends_bit_identical(tmp_path):
  def args(name):
    return ("benchmarks.datasets", "generate", "walker-walk/tiny", "--kinds", "random",
            "--root", str(tmp_path / name), "--set", "sizes.random=100",
            "--set", "episodes_per_shard=2")

  assert _program(*args("straight")).returncode == 0
  killed = _program(*args("killed"), fault="dataset.shard:2")
  assert killed.returncode == -signal.SIGKILL
  assert _program(*args("killed")).returncode == 0
  path = lambda name: tmp_path / name / "vd4rl" / "walker_walk" / "random" / "state"
  _assert_same(load_dataset(path("killed"))[0], load_dataset(path("straight"))[0])


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["checkpoint.written:1", "atomic_write:2", "metrics.row:2"])
def test_mopo_killed_anywhere_ends_bit_identical(tmp_path, fault):
  write_dataset(tmp_path / "data", synthetic_steps((60, 60, 60), obs_dim=24, action_dim=6),
                task="walker-walk", behaviour_policy="synthetic", action_repeat=2, seed=0)
  assert _program("experiments.train_model", "--config=experiments/configs/ensemble.py:tiny",
                  f"--config.dataset.path={tmp_path / 'data'}",
                  f"--config.output={tmp_path / 'model'}").returncode == 0

  def args(name):
    return ("experiments.train", "--config=experiments/configs/mopo.py:tiny",
            f"--config.workdir={tmp_path / name}", f"--config.dataset.path={tmp_path / 'data'}",
            f"--config.agent.model_path={tmp_path / 'model'}")

  assert _program(*args("straight")).returncode == 0
  _killed_then_resumed(args("killed"), fault, str(tmp_path / "killed"))
  _assert_same(_final_checkpoint(str(tmp_path / "killed"))["agent"],
               _final_checkpoint(str(tmp_path / "straight"))["agent"])


@pytest.fixture(scope="module")
def zero_shot_reference(tmp_path_factory):
  """An uninterrupted tiny ``experiments.mopo.run`` (dataset, ensemble, three agents, grid)."""
  workdir = tmp_path_factory.mktemp("zero_shot") / "straight"
  out = _program("experiments.mopo.run", "--tiny", f"--workdir={workdir}", timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["checkpoint.written:3", "dataset.shard:1",
                                   "artifact.params:1", "atomic_write:5"])
def test_a_zero_shot_experiment_killed_anywhere_ends_with_the_same_results(
    zero_shot_reference, tmp_path, fault):
  """Killed while writing its dataset, its ensemble, an agent checkpoint or a cached stage:
  the rerun of the same command ends with the same dataset and the same results."""
  args = ("experiments.mopo.run", "--tiny", f"--workdir={tmp_path / 'killed'}")
  killed = _program(*args, fault=fault, timeout=900)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert _program(*args, timeout=900).returncode == 0
  results = lambda workdir: json.loads((workdir / "results" / "mopo" / "results.json").read_text())
  assert results(tmp_path / "killed") == results(zero_shot_reference)
  _assert_same(load_dataset(tmp_path / "killed" / "dataset")[0],
               load_dataset(zero_shot_reference / "dataset")[0])


def _interruptible_popen(command, **kwargs) -> subprocess.Popen:
  """A child with Ctrl-C as in a terminal, even when the tests run as a background job: its
  children inherit an ignored SIGINT (which Python then leaves ignored), while a handled one
  is reset to the default at exec."""
  inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    return subprocess.Popen(command, **kwargs)
  finally:
    signal.signal(signal.SIGINT, inherited)


def test_an_interrupt_inside_a_deferred_block_lands_after_it():
  """Ctrl-C during a checkpoint save is held until the save ends, also when the kernel hands
  the signal to another of the process's threads (as it may for a process-wide signal)."""
  import threading  # pylint: disable=import-outside-toplevel
  # Ctrl-C's own handler, whatever this process inherited (a background job ignores SIGINT).
  inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
  worker = threading.Thread(target=time.sleep, args=(1.0,))
  worker.start()
  for deliver in (lambda: os.kill(os.getpid(), signal.SIGINT),
                  lambda: signal.pthread_kill(worker.ident, signal.SIGINT)):
    reached = []
    with pytest.raises(KeyboardInterrupt):
      with wio.deferred_interrupts():
        deliver()
        time.sleep(0.2)  # an undeferred handler raises here
        reached.append(True)
    assert reached == [True]
  worker.join()
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
  signal.signal(signal.SIGINT, inherited)


def test_an_interrupt_gives_one_line_and_the_same_command_resumes(tmp_path):
  """Ctrl-C (SIGINT) and SIGTERM end a run with one line naming the step and the checkpoint;
  the same command resumes from it."""
  write_dataset(tmp_path / "data", synthetic_steps((60, 60), obs_dim=24, action_dim=6),
                task="walker-walk", behaviour_policy="synthetic", action_repeat=2, seed=0)
  command = [sys.executable, "-m", "experiments.train", "--config=experiments/configs/td3bc.py:tiny",
             f"--config.workdir={tmp_path / 'run'}", f"--config.dataset.path={tmp_path / 'data'}",
             "--config.agent.num_steps=1000000", "--config.loop.steps_per_chunk=100",
             "--config.loop.checkpoint_every=200", "--config.loop.eval_every=0",
             "--config.loop.eval_episodes=0"]
  for sig in (signal.SIGINT, signal.SIGTERM):
    process = _interruptible_popen(command, cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    seen = Checkpointer(str(tmp_path / "run")).latest_step()
    deadline = time.time() + 120
    while Checkpointer(str(tmp_path / "run")).latest_step() == seen:
      assert time.time() < deadline and process.poll() is None
      time.sleep(0.1)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "interrupted at step" in stderr and "rerun the same command to resume (from the " \
        "checkpoint at step" in stderr
    if sig == signal.SIGTERM:  # the second run resumed where the first one stopped
      assert f"Resuming from checkpoint" in stdout
