"""Seeds vmapped as a leading state axis: the same numbers as the seeds run one by one.

A batched matmul rounds differently from S separate ones (about 1e-7 relative per update, here
measured), so floats are compared to rounding after 20 updates; counters and keys are
identical.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps, tiny_world_model
from worldmodels.agents import make_agent
from worldmodels.agents.mopo import config as mopo_config
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.agents.sac import config as sac_config
from worldmodels.agents.td3bc import config as td3bc_config
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.training.loop import (LoopConfig, NonFiniteLossError, _initial_state,
                                      restore_snapshot, train)
from worldmodels.training.seeds import select_seed, stack_seeds, unstack_seeds

SPEC = DataSpec({"state": ((4,), np.float32)}, 2)
SEEDS = (3, 5)
LOOP = dict(steps_per_chunk=10, eval_every=0, eval_episodes=0, checkpoint_every=0,
            log_every_seconds=60.0)


@pytest.fixture(scope="module")
def source():
  return DataSource({"d": synthetic_steps((30, 40, 25))})


def _td3bc(num_steps=20):
  c = td3bc_config.tiny_config()
  c.num_steps = num_steps
  return make_agent("td3bc", c, SPEC)


def _mopo():
  c = mopo_config.tiny_config()
  c.num_steps, c.rollout_every, c.rollout_batch_size = 20, 10, 16
  c.horizon, c.model_retain_epochs = 2, 4
  return MOPOLearner(c, SPEC, world_model=tiny_world_model(4, 2))


def _assert_rounding_equal(one, vmapped):
  """Integer and key leaves identical; floats within rounding of their leaf's scale."""
  for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(vmapped)):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind == "f":
      np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * max(float(np.abs(a).max()), 1e-6))
    else:
      np.testing.assert_array_equal(b, a)


def test_vmapped_seeds_equal_the_seeds_run_one_by_one(source, tmp_path):
  """MOPO: SAC updates on sampled batches, and rollouts every 10 updates (its periodic work)."""
  make = _mopo
  one_by_one = [train(make(), workdir=str(tmp_path / f"seed{s}"), data=source,
                      loop=LoopConfig(seed=s, **LOOP)).state for s in SEEDS]
  vmapped = train(make(), workdir=str(tmp_path / "vmapped"), data=source,
                  loop=LoopConfig(seeds=SEEDS, **LOOP)).state
  assert jax.tree_util.tree_leaves(vmapped)[0].shape[0] == len(SEEDS)
  for i, state in enumerate(one_by_one):
    _assert_rounding_equal(state, select_seed(vmapped, i))
  # The seeds differ from each other (each got its own keys), and training moved them.
  differs = lambda x, y: sum(not np.allclose(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y)))
  first, second = unstack_seeds(vmapped)
  assert differs(first, second) > 10
  assert differs(_initial_state(make(), SEEDS[0])[0], first) > 10
  # Per-seed rows in the logs, each with its seed.
  rows = [json.loads(line) for line in open(tmp_path / "vmapped" / "train.jsonl")]
  assert [(r["step"], r["seed"]) for r in rows] == [(10, 3), (10, 5), (20, 3), (20, 5)]
  reference = [json.loads(line) for line in open(tmp_path / "seed5" / "train.jsonl")]
  for ours, theirs in zip([r for r in rows if r["seed"] == 5], reference):
    for key in theirs:
      if key not in ("step", "phase"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-3, atol=1e-5)


def test_each_seed_is_evaluated_and_logged(source, tmp_path):
  evaluated = []

  def evaluator(state):  # the seed's own state: no seed axis
    evaluated.append(np.asarray(state.step).shape)
    return {"return_mean": float(state.step), "return_std": 0.0}

  loop = LoopConfig(seeds=SEEDS, **dict(LOOP, eval_every=10))
  result = train(_td3bc(), workdir=str(tmp_path), data=source, loop=loop, evaluator=evaluator)
  assert evaluated == [()] * 4
  assert [(e["step"], e["seed"], e["return_mean"]) for e in result.evaluations] == [
      (10, 3, 10.0), (10, 5, 10.0), (20, 3, 20.0), (20, 5, 20.0)]


def test_a_non_finite_loss_in_one_seed_names_it(source, tmp_path):
  """The loss goes NaN in one seed only (told apart by a parameter its init set), and the
  error names that seed."""
  agent = _td3bc()
  inits = [jax.tree_util.tree_leaves(_initial_state(agent, s)[0]) for s in SEEDS]
  floats = [i for i, x in enumerate(inits[0]) if np.asarray(x).dtype.kind == "f"]
  leaf = max(floats, key=lambda i: float(np.max(np.abs(np.asarray(inits[0][i])
                                                       - np.asarray(inits[1][i])))))
  a, b = (np.asarray(x[leaf], np.float32).ravel() for x in inits)
  where = int(np.argmax(np.abs(a - b)))
  middle = (a[where] + b[where]) / 2
  failing = SEEDS[int(b[where] > middle)]

  def update(state, batch, frozen):
    state, metrics = agent.update(state, batch, frozen)
    value = jax.tree_util.tree_leaves(state)[leaf].ravel()[where]
    bad = (value > middle) & (state.step > 5)
    return state, {k: jnp.where(bad, jnp.nan, v) for k, v in metrics.items()}

  phase = dataclasses.replace(agent.phases()[0], update=update)
  with pytest.raises(NonFiniteLossError, match=rf"phase 'td3bc \(seed {failing}\)'"):
    train(agent, workdir=str(tmp_path), data=source, loop=LoopConfig(seeds=SEEDS, **LOOP),
          phases=[phase])


def test_a_vmapped_run_resumes_bit_identically(source, tmp_path):
  loop = LoopConfig(seeds=SEEDS, **dict(LOOP, checkpoint_every=10, snapshot_every=30))
  reference = train(_td3bc(30), workdir=str(tmp_path / "a"), data=source, loop=loop).state
  snapshot = restore_snapshot(_td3bc(30), str(tmp_path / "a"), 30, num_seeds=len(SEEDS))
  jax.tree_util.tree_map(np.testing.assert_array_equal, snapshot, reference)
  train(_td3bc(30), workdir=str(tmp_path / "b"), data=source, loop=loop)
  shutil.rmtree(tmp_path / "b" / "checkpoints" / "30")  # killed after the checkpoint at 20
  resumed = train(_td3bc(30), workdir=str(tmp_path / "b"), data=source, loop=loop).state
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed, reference)


def test_online_phases_refuse_a_seed_axis(tmp_path):
  agent = make_agent("sac", sac_config.tiny_config(), DataSpec({"state": ((24,), np.float32)},
                                                                6))
  with pytest.raises(ConfigError, match="one seed per run"):
    train(agent, workdir=str(tmp_path), loop=LoopConfig(seeds=SEEDS, **LOOP),
          env_factory=lambda seed: None)
  with pytest.raises(ConfigError, match="distinct seeds"):
    LoopConfig(seeds=(1, 1))


def test_stack_and_select():
  trees = [{"a": jnp.full((2,), float(i)), "b": jnp.asarray(i)} for i in range(3)]
  stacked = stack_seeds(trees)
  assert stacked["a"].shape == (3, 2) and stacked["b"].shape == (3,)
  for i, tree in enumerate(unstack_seeds(stacked)):
    jax.tree_util.tree_map(np.testing.assert_array_equal, tree, trees[i])
