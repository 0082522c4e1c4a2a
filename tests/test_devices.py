"""The loop on a mesh: 4 forced host devices, and two processes on the loopback interface.

Each check runs in processes of its own (``tests/multidevice_checks.py``): the device count is
fixed when jax starts. Numbers are compared with the one-device run; a partitioned sum adds in
another order, so "equal" is to float rounding (relative 1e-4 after 30-40 updates), while a
checkpoint restored, and a resumed run, are bit-identical.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.conftest import four_member_ensemble_learner, make_source
from worldmodels.training.loop import LoopConfig, _initial_state, train

# Subprocesses on 4 forced devices and on two processes: about 55 s, so in the slow tier.
pytestmark = pytest.mark.slow

SCRIPT = os.path.join(os.path.dirname(__file__), "multidevice_checks.py")
ROUNDING = 1e-4


def _environment():
  env = dict(os.environ)  # the script adds its device count to the suite's XLA flags
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "device_count" not in f)
  return env


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def started(tmp_path_factory):
  """The 4-device checks and the two processes, started together (they are independent)."""
  launch = lambda *args: subprocess.Popen([sys.executable, SCRIPT, *args],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=_environment())
  port, two = str(_free_port()), tmp_path_factory.mktemp("two_processes")
  processes = {"forced": [launch("forced", str(tmp_path_factory.mktemp("mesh")))],
               "two": [launch("process", str(i), port, str(two)) for i in (0, 1)],
               "two_dir": two}
  yield processes
  for process in processes["forced"] + processes["two"]:
    process.kill()


def _finish(processes) -> list:
  """Each process's stdout, after asserting it succeeded."""
  outputs = [process.communicate(timeout=600) for process in processes]
  for process, (_, err) in zip(processes, outputs):
    assert process.returncode == 0, err[-3000:]
  return [out for out, _ in outputs]


@pytest.fixture(scope="module")
def forced(started):
  """What the 4-device checks measured."""
  (out,) = _finish(started["forced"])
  return json.loads(out.strip().splitlines()[-1])


def test_the_ensemble_phase_on_4_devices_equals_one_device(forced):
  result = forced["ensemble"]
  assert forced["devices"] == 4 and result["steps"] == 30
  assert result["kernel_spec"] == "P('members',)" and result["kernel_devices"] == 4
  assert result["shard_shape"][0] == 1  # one member per device
  assert result["trained"]["max_relative_difference"] > 1e-2  # training moved the state
  assert result["max_relative_difference"] < ROUNDING


def test_vmapped_seeds_split_over_devices_equal_one_device(forced):
  """Two seeds x batches split in two, on 4 devices, against one device."""
  result = forced["seeds"]
  assert result["specs"] == ["P('seeds',)"]
  assert result["trained"]["max_relative_difference"] > 1e-2
  assert result["max_relative_difference"] < ROUNDING


def test_a_sharded_state_is_checkpointed_and_restored_with_its_sharding(forced):
  result = forced["checkpoint"]
  assert result["same_shardings"] and result["specs"] == ["P('seeds',)"]
  assert result["identical"]


def test_a_mesh_run_resumes_bit_identically(forced):
  assert forced["resume"]["identical"]


def test_batches_split_over_the_data_axis(forced):
  """On the seeds x data mesh, every field of a TD3+BC batch (observation, action, reward,
  discount, next observation) is constrained to ``[seeds, data]``; the numbers above are that
  mesh's."""
  assert forced["seeds"]["split_batch_fields"] == 5 and forced["seeds"]["devices"] == 4


def test_two_processes_on_the_loopback_interface(started, tmp_path):
  """``jax.distributed`` with 2 processes x 2 host devices: the ensemble phase with members on
  all 4 devices, checkpointed by both processes, resumed; equal to a one-device run here."""
  first, _ = _finish(started["two"])
  summary = json.loads(first.strip().splitlines()[-1])
  assert summary == {"processes": 2, "devices": 4, "resumed_equals_first": True}

  source = make_source()
  learner = four_member_ensemble_learner(source)
  loop = LoopConfig(steps_per_chunk=learner.num_batches, eval_every=0, eval_episodes=0,
                    checkpoint_every=0, log_every_seconds=60.0)
  reference = jax.tree_util.tree_leaves(
      train(learner, workdir=str(tmp_path / "one"), loop=loop, data=source).state)
  with np.load(started["two_dir"] / "state.npz") as saved:
    distributed = [saved[f"arr_{i}"] for i in range(len(reference))]
  initial = jax.tree_util.tree_leaves(_initial_state(four_member_ensemble_learner(source), 0)[0])
  moved = sum(not np.allclose(a, b) for a, b in zip(initial, distributed))
  assert moved > 10, moved  # the two processes trained (parameters, moments, errors moved)
  for ours, theirs in zip(reference, distributed):
    ours = np.asarray(ours)
    if ours.dtype.kind == "f":
      np.testing.assert_allclose(theirs, ours, rtol=0,
                                 atol=ROUNDING * max(float(np.abs(ours).max()), 1e-6))
    else:
      np.testing.assert_array_equal(theirs, ours)
