"""The common training loop: resume equals uninterrupted, NaN guard, online phases, logs."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from benchmarks.envs import make_env_factory
from tests.conftest import synthetic_steps
from worldmodels.agents import make_agent
from worldmodels.agents.sac import config as sac_config
from worldmodels.agents.td3bc import config as td3bc_config
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.training.checkpoint import Checkpointer
from worldmodels.training.loop import (DivergenceError, LoopConfig, NonFiniteLossError,
                                      restore_snapshot, snapshot_steps, train)

SPEC = DataSpec({"state": ((4,), np.float32)}, 2, {}, {"state": np.zeros(4)},
                {"state": np.ones(4)})
WALKER = DataSpec({"state": ((24,), np.float32)}, 6)
LOOP = LoopConfig(steps_per_chunk=25, eval_every=0, eval_episodes=0, checkpoint_every=50,
                  log_every_seconds=60.0)


def _agent(num_steps=150):
  config = td3bc_config.tiny_config()
  config.num_steps = num_steps
  return make_agent("td3bc", config, SPEC)


def _assert_same(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_resume_equals_uninterrupted(tmp_path):
  source = DataSource({"synthetic": synthetic_steps((30, 40, 25))})
  reference = train(_agent(), workdir=str(tmp_path / "a"), loop=LOOP, data=source).state

  # Interrupted run: its update raises after 75 steps (a checkpoint exists at 50).
  agent = _agent()

  def failing_update(state, batch, frozen):
    state, metrics = agent.update(state, batch, frozen)
    bad = state.step > 75
    return state, {k: jax.numpy.where(bad, np.nan, v) for k, v in metrics.items()}

  interrupted = dataclasses.replace(agent.phases()[0], update=failing_update)
  with pytest.raises(NonFiniteLossError, match=r"critic_loss.*phase 'td3bc', steps 75..100.*"
                     r"last good checkpoint \(step 50\)"):
    train(agent, workdir=str(tmp_path / "b"), loop=LOOP, data=source, phases=[interrupted])
  assert Checkpointer(str(tmp_path / "b")).latest_step() == 50  # nothing saved after the NaN

  resumed = train(_agent(), workdir=str(tmp_path / "b"), loop=LOOP, data=source).state
  _assert_same(resumed, reference)
  rows = [json.loads(l) for l in open(tmp_path / "b" / "train.jsonl")]
  assert [r["step"] for r in rows][-4:] == [75, 100, 125, 150]


def test_nan_in_data_stops_the_run(tmp_path):
  steps = synthetic_steps((20, 20))
  steps = steps.replace(reward=np.where(np.arange(steps.num_steps) == 3, np.nan, steps.reward))
  with pytest.raises(NonFiniteLossError, match="no checkpoint was saved yet"):
    train(_agent(), workdir=str(tmp_path), loop=LOOP, data=DataSource({"nan": steps}))


def test_offline_phase_needs_a_dataset(tmp_path):
  with pytest.raises(ValueError, match="no data source was given"):
    train(_agent(), workdir=str(tmp_path), loop=LOOP)


def test_online_sac_collects_evaluates_and_exports(tmp_path):
  factory = make_env_factory("walker-walk", episode_length=20)
  config = sac_config.tiny_config()
  config.num_steps, config.random_steps, config.learning_starts = 100, 30, 30
  agent = make_agent("sac", config, WALKER)
  loop = LoopConfig(steps_per_chunk=25, eval_every=50, eval_episodes=1, checkpoint_every=50,
                    replay_capacity=1000, log_every_seconds=60.0)
  result = train(agent, workdir=str(tmp_path), loop=loop, env_factory=factory)
  assert int(result.state.step) == 100 - 30  # one update per env step after learning_starts
  assert [e["step"] for e in result.evaluations] == [50, 100]
  replay = result.replay
  assert replay.num_episodes == 5 and replay.num_transitions == 100
  assert np.asarray(replay.is_first)[::21].all() and np.asarray(replay.is_last)[20::21].all()
  for name in ("train.jsonl", "train.csv", "eval.jsonl", "eval.csv"):
    assert os.path.getsize(tmp_path / name) > 0
  # A finished run resumes to the same state without training again: no new log rows, no new
  # checkpoint, and the environment is never stepped.
  logs = (tmp_path / "train.jsonl").read_text()
  steps = Checkpointer(str(tmp_path)).all_steps()
  never = lambda seed: (_ for _ in ()).throw(AssertionError("the finished run made an env"))
  again = train(agent, workdir=str(tmp_path), loop=dataclasses.replace(loop, eval_episodes=0),
                env_factory=never)
  _assert_same(again.state, result.state)
  assert (tmp_path / "train.jsonl").read_text() == logs
  assert Checkpointer(str(tmp_path)).all_steps() == steps


@pytest.mark.slow  # moved out of the default run to keep it under 15 minutes
def test_online_resume_at_an_episode_boundary_equals_uninterrupted(tmp_path):
  """Chunks of one episode: the resumed run replays the environment resets and the random
  actions' generator, so its replay, snapshots and final state match an uninterrupted run."""
  factory = make_env_factory("walker-walk", episode_length=20)
  config = sac_config.tiny_config()
  config.num_steps, config.random_steps, config.learning_starts = 100, 50, 30
  loop = LoopConfig(steps_per_chunk=20, eval_every=0, eval_episodes=0, checkpoint_every=40,
                    snapshot_every=40, replay_capacity=1000, log_every_seconds=60.0)
  agent = make_agent("sac", config, WALKER)
  reference = train(agent, workdir=str(tmp_path / "a"), loop=loop, env_factory=factory)

  phase = agent.phases()[0]

  def failing_update(state, batch, frozen):  # NaN from the 26th update (env step 56)
    state, metrics = agent.update(state, batch, frozen)
    return state, {k: jax.numpy.where(state.step > 25, np.nan, v) for k, v in metrics.items()}

  interrupted = dataclasses.replace(phase, update=failing_update)
  with pytest.raises(NonFiniteLossError):
    train(agent, workdir=str(tmp_path / "b"), loop=loop, env_factory=factory,
          phases=[interrupted])
  assert Checkpointer(str(tmp_path / "b")).latest_step() == 40  # inside the random steps
  resumed = train(agent, workdir=str(tmp_path / "b"), loop=loop, env_factory=factory)
  _assert_same(resumed.state, reference.state)
  _assert_same(resumed.replay, reference.replay)
  assert snapshot_steps(str(tmp_path / "b")) == [40, 80, 100]
  _assert_same(restore_snapshot(agent, str(tmp_path / "b"), 80),
               restore_snapshot(agent, str(tmp_path / "a"), 80))
  with pytest.raises(FileNotFoundError, match=r"no snapshot at step 60.*\[40, 80, 100\]"):
    restore_snapshot(agent, str(tmp_path / "b"), 60)


def test_the_divergence_guard_warns_or_stops_on_a_planted_exploding_loss(tmp_path, capsys):
  source = DataSource({"synthetic": synthetic_steps((30, 40, 25))})
  agent = _agent()

  def exploding(state, batch, frozen):
    state, metrics = agent.update(state, batch, frozen)
    return state, dict(metrics, critic_loss=jax.numpy.where(state.step > 50, 3e17,
                                                            metrics["critic_loss"]))

  phases = [dataclasses.replace(agent.phases()[0], update=exploding)]
  train(agent, workdir=str(tmp_path / "warn"), loop=LOOP, data=source, phases=phases)
  out = capsys.readouterr().out
  assert out.count("may be diverging") == 1 and "critic_loss=3e+17" in out  # once, not per chunk
  stop = dataclasses.replace(LOOP, on_divergence="stop")
  with pytest.raises(DivergenceError, match=r"critic_loss=3e\+17.*threshold 1e\+08.*checkpoint "
                     r"\(step 50\)"):
    train(_agent(), workdir=str(tmp_path / "stop"), loop=stop, data=source, phases=phases)
  with pytest.raises(ValueError, match="on_divergence must be 'warn' or 'stop'"):
    LoopConfig(on_divergence="panic")
