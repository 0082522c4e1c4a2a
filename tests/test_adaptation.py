"""Scenario adaptation (worldmodels.agents.adaptation) with CaDM as its contextual model: the
contexts its rollouts read, the online loop's periodic rollouts, the artifact path, errors."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.envs import make_env_factory
from tests.conftest import synthetic_steps
from worldmodels.agents.adaptation import config as adaptation_config
from worldmodels.agents.adaptation.learner import AdaptationLearner
from worldmodels.agents.cadm import config as cadm_config
from worldmodels.agents.cadm.model import CaDM
from worldmodels.agents.cadm.networks import context_features
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.models.artifacts import ModelArtifactError, load_model, save_model
from worldmodels.training import replay as replay_lib
from worldmodels.training.agent import Periodic
from worldmodels.training.loop import LoopConfig, train

WALKER = DataSpec({"state": ((24,), np.float32)}, 6)


def _cadm(state_dim: int, action_dim: int, seed: int = 0):
  model = CaDM(state_dim, action_dim, cadm_config.tiny_config())
  return model, model.init(jax.random.PRNGKey(seed))


def _replay(steps, capacity=64):
  replay = replay_lib.init_replay(capacity, {"state": (4,)}, {"state": np.float32}, 2)
  return replay_lib.add_steps(replay, steps, np.int32(steps.num_steps))


def test_rollout_starts_carry_the_real_transitions_that_led_to_them():
  steps = synthetic_steps((5, 2, 7))
  replay = _replay(steps)
  learner = AdaptationLearner(adaptation_config.tiny_config(), DataSpec(
      {"state": ((4,), np.float32)}, 2), world_model=_cadm(4, 2))
  starts, context, mask = jax.jit(learner.rollout_starts)(replay, jax.random.PRNGKey(0))
  k = learner.model.context_length
  assert starts.shape == (16, 4) and context.shape == (16, k, 2 * 4 + 2) and mask.shape == (16, k)
  state, action = np.asarray(steps.observation["state"]), np.asarray(steps.action)
  for row in range(16):
    gid = int(starts[row, 2])  # the synthetic global step id
    held = int(mask[row].sum())
    assert held == min(k, int(starts[row, 1]))  # the steps before it in its episode
    ids = np.arange(gid - held, gid)
    expected = context_features(state[ids], action[ids], state[ids + 1])
    np.testing.assert_allclose(context[row, k - held:], expected, rtol=1e-6)
  assert 0 < float(mask.mean()) < 1


def test_the_cadm_rollout_reads_its_context():
  model, params = _cadm(4, 2)
  k = model.context_length
  start = jnp.ones((3, 4))
  policy = lambda s, key: jnp.zeros((s.shape[0], 2))
  mask = jnp.ones((3, k), bool)
  run = lambda context: model.imagine(params, policy, start, 2, jax.random.PRNGKey(1),
                                      context=context, mask=mask)
  a, b = run(jnp.zeros((3, k, 10))), run(jnp.ones((3, k, 10)))
  assert a.next_state.shape == (2, 3, 4) and bool(a.valid.all())
  assert float(jnp.abs(a.next_state - b.next_state).max()) > 1e-4
  # Masked-out slots do not matter.
  c = model.imagine(params, policy, start, 2, jax.random.PRNGKey(1),
                    context=jnp.full((3, k, 10), 7.0), mask=jnp.zeros((3, k), bool))
  d = model.imagine(params, policy, start, 2, jax.random.PRNGKey(1),
                    context=jnp.zeros((3, k, 10)), mask=jnp.zeros((3, k), bool))
  np.testing.assert_allclose(c.next_state, d.next_state)


def test_adaptation_runs_online_with_periodic_rollouts_before_updates(tmp_path):
  """An artifact-loaded CaDM, 120 walker steps: rollouts before updates 0, 10, 20, ... (their
  logged step is the update count they saw), a full model ring, and no model in checkpoints."""
  model, params = _cadm(24, 6)
  path = str(tmp_path / "cadm")
  save_model(path, model, params, report={"steps": 0})
  loaded, loaded_params, meta = load_model(path, kind="cadm")
  assert meta["kind"] == "cadm" and loaded.state_dim == 24
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded_params, params)

  config = adaptation_config.tiny_config()
  config.model_path = path
  learner = AdaptationLearner(config, WALKER)
  phase = learner.phases()[0]
  rollout = phase.periodic.update

  def logged_rollout(state, frozen, replay):
    state, metrics = rollout(state, frozen, replay)
    return state, {**metrics, "rollout_at_update": state.step.astype(jnp.float32)}

  phase = dataclasses.replace(phase, periodic=Periodic(phase.periodic.every, logged_rollout))
  loop = LoopConfig(steps_per_chunk=20, eval_every=0, eval_episodes=0, checkpoint_every=60,
                    replay_capacity=500, log_every_seconds=60.0)
  result = train(learner, workdir=str(tmp_path / "run"), loop=loop,
                 env_factory=make_env_factory("walker-walk", episode_length=30), phases=[phase])
  state = result.state
  assert int(state.step) == int(state.sac.step) == 120 - 40
  assert int(state.buffer.size) == learner.capacity  # 8 rollouts of 16 x 2 into a ring of 64
  rows = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().split("\n")
          if line]
  with_rollouts = [r for r in rows if "rollout_at_update" in r]
  # Chunks of 20 env steps from step 40: updates 0..19, 20..39, ...; two rollouts each.
  assert [r["rollout_at_update"] for r in with_rollouts] == [5.0, 25.0, 45.0, 65.0]
  assert all(0 < r["context_fill"] <= 1 and np.isfinite(r["model_reward"]) for r in with_rollouts)
  # The model is the frozen input: not in the agent state, so never in a checkpoint.
  names = {str(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]}
  assert not any("forward_model" in n or "encoder" in n for n in names)


def test_adaptation_refuses_a_model_of_other_sizes_and_a_missing_one(tmp_path):
  path = str(tmp_path / "cadm")
  save_model(path, *_cadm(5, 6))
  config = adaptation_config.tiny_config()
  config.model_path = path
  with pytest.raises(ModelArtifactError, match=r"cadm: the model predicts 5-d states.*24-d"):
    AdaptationLearner(config, WALKER)
  config.model_path = None
  with pytest.raises(ConfigError, match="model_path"):
    AdaptationLearner(config, WALKER)
