"""Runs of the loop on several devices and processes, for ``tests/test_devices.py``.

  python tests/multidevice_checks.py forced DIR
      4 forced host devices in one process: the ensemble phase with its members split, 4
      vmapped seeds split, a sharded checkpoint restored, a resumed mesh run, data
      parallelism; each against the one-device run. Prints one JSON line.
  python tests/multidevice_checks.py process ID PORT DIR
      process ID (0 or 1) of a two-process run (``jax.distributed`` on 127.0.0.1:PORT, 2 host
      devices each): the ensemble phase with members split over all 4 devices, checkpointed
      and resumed; process 0 writes the final state to ``DIR/state.npz``.

The device count is fixed before jax starts, hence processes of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")  # the suite's, plus the devices
                           + " --xla_force_host_platform_device_count="
                           + ("4" if sys.argv[1] == "forced" else "2")).strip()

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.conftest import (  # pylint: disable=wrong-import-position
    four_member_ensemble_learner as ensemble_learner, make_source)
from worldmodels import parallel  # pylint: disable=wrong-import-position
from worldmodels.agents import make_agent  # pylint: disable=wrong-import-position
from worldmodels.agents.td3bc import config as td3bc_config  # pylint: disable=wrong-import-position
from worldmodels.data.spec import DataSpec  # pylint: disable=wrong-import-position
from worldmodels.training.checkpoint import Checkpointer  # pylint: disable=wrong-import-position
from worldmodels.training.loop import (  # pylint: disable=wrong-import-position
    LoopConfig, _initial_state, train)
from worldmodels.training.seeds import stack_seeds  # pylint: disable=wrong-import-position

SPEC = DataSpec({"state": ((4,), np.float32)}, 2)
LOOP = dict(eval_every=0, eval_episodes=0, log_every_seconds=60.0)


def _difference(a, b) -> dict:
  """The largest float difference relative to its leaf's scale (``max|x - y| / max|x|``),
  and whether every leaf (ints and keys too) is identical."""
  worst, identical = 0.0, True
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    identical &= bool(np.array_equal(x, y))
    if x.dtype.kind == "f" and x.size:
      worst = max(worst, float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-6)))
  return {"max_relative_difference": worst, "identical": identical}


def _shardings(tree) -> list:
  return [str(leaf.sharding.spec) if hasattr(leaf.sharding, "spec") else "single"
          for leaf in jax.tree_util.tree_leaves(tree)]


ENSEMBLE_LOOP = lambda learner, **kw: LoopConfig(steps_per_chunk=learner.num_batches, **LOOP, **kw)


def forced(directory: str) -> None:
  assert jax.device_count() == 4, jax.devices()
  source = make_source()
  out = {"devices": jax.device_count()}

  # The ensemble phase: members over 4 devices against one device.
  learner = ensemble_learner(source)
  loop = ENSEMBLE_LOOP(learner, checkpoint_every=0)
  single = train(learner, workdir=f"{directory}/ensemble1", loop=loop, data=source).state
  mesh = parallel.make_mesh(members=4)
  sharded = train(ensemble_learner(source), workdir=f"{directory}/ensemble4", loop=loop,
                  data=source, mesh=mesh).state
  kernel = sharded.model.params["params"]["members"]["layer_0"]["kernel"]
  out["ensemble"] = dict(_difference(single, sharded), steps=int(sharded.step),
                        trained=_difference(_initial_state(learner, 0)[0], single),
                         kernel_spec=str(kernel.sharding.spec),
                         kernel_devices=len(kernel.sharding.device_set),
                         shard_shape=list(kernel.addressable_shards[0].data.shape))

  # Two vmapped TD3+BC seeds on a seeds=2 x data=2 mesh (each seed's batches split over two
  # devices), against the same seeds on one device; then the sharded checkpoint restored onto
  # its shardings.
  agent = lambda: make_agent("td3bc", _td3bc_config(40), SPEC)
  loop = LoopConfig(steps_per_chunk=20, checkpoint_every=20, seeds=(0, 1), **LOOP)
  one_device = train(agent(), workdir=f"{directory}/seeds1", loop=loop, data=source).state
  mesh = parallel.make_mesh(seeds=2, data=2)
  on_mesh = train(agent(), workdir=f"{directory}/seeds4", loop=loop, data=source,
                  mesh=mesh).state
  initial = stack_seeds([_initial_state(agent(), seed)[0] for seed in range(2)])
  out["seeds"] = dict(_difference(one_device, on_mesh), specs=sorted(set(_shardings(on_mesh))),
                      trained=_difference(initial, one_device),
                      devices=len(jax.tree_util.tree_leaves(on_mesh)[0].sharding.device_set),
                      split_batch_fields=_split_batch_fields(agent(), mesh, source))
  seed_axis = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds"))
  like = {"agent": on_mesh, "key": parallel.put(np.zeros((2, 2), np.uint32), seed_axis),
          "phase": np.int32(0), "phase_step": np.int32(0), "replay": {}}
  checkpointer = Checkpointer(f"{directory}/seeds4")
  restored = checkpointer.restore(40, like)["agent"]
  checkpointer.close()
  out["checkpoint"] = dict(
      _difference(restored, on_mesh),
      same_shardings=all(a.sharding == b.sharding for a, b in zip(
          jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(on_mesh))),
      specs=sorted(set(_shardings(restored))))

  # A killed mesh run (the checkpoint at 20 kept, the final one removed) resumes to the same
  # numbers as the uninterrupted one.
  shutil.rmtree(f"{directory}/seeds4/checkpoints/40")
  resumed = train(agent(), workdir=f"{directory}/seeds4", loop=loop, data=source,
                  mesh=mesh).state
  out["resume"] = _difference(resumed, on_mesh)

  print(json.dumps(out))


def _split_batch_fields(agent, mesh, source) -> int:
  """How many batch arrays the seeded chunk on ``mesh`` constrains to ``[seeds, data, ...]``
  (the lowered program's sharding constraints)."""
  from worldmodels.training.loop import make_offline_chunk  # pylint: disable=import-outside-toplevel
  phase = agent.phases()[0]
  phase.sampler.prepare(source)
  states = stack_seeds([_initial_state(agent, seed)[0] for seed in range(2)])
  keys = stack_seeds([jax.random.PRNGKey(seed) for seed in range(2)])
  text = make_offline_chunk(phase, True, mesh).lower(states, keys, source.arrays, None,
                                                     np.int32(0), 1).as_text()
  return sum("sharding_constraint" in line and '[{"seeds"}, {"data"}' in line
             for line in text.splitlines())


def _td3bc_config(num_steps: int):
  c = td3bc_config.tiny_config()
  c.num_steps = num_steps
  c.batch_size = 32
  return c


def two_processes(process_id: int, port: int, directory: str) -> None:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
  assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
  data = make_source()
  learner = ensemble_learner(data)
  mesh = parallel.make_mesh(members=4)
  loop = ENSEMBLE_LOOP(learner, checkpoint_every=learner.num_batches)
  workdir = os.path.join(directory, "run")
  first = train(learner, workdir=workdir, loop=loop, data=data, mesh=mesh).state
  if parallel.is_primary():  # a kill after the second epoch: the last checkpoint lost
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(3 * learner.num_batches)))
  parallel.barrier("checkpoint removed")
  state = train(ensemble_learner(data), workdir=workdir, loop=loop, data=data, mesh=mesh).state
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  gathered = [np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
              for leaf in jax.tree_util.tree_leaves((first, state))]
  if parallel.is_primary():
    np.savez(os.path.join(directory, "state.npz"), *gathered)
    print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                      "resumed_equals_first": all(
                          np.array_equal(a, b) for a, b in zip(gathered[:len(gathered) // 2],
                                                               gathered[len(gathered) // 2:]))}))


if __name__ == "__main__":
  if sys.argv[1] == "forced":
    forced(sys.argv[2])
  else:
    two_processes(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
