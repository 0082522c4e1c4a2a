"""MOPO: rollouts into the model buffer, penalised rewards, real/model mixing, termination."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps, tiny_world_model
from worldmodels.agents.mopo import config as mopo_config
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.training.loop import LoopConfig, train

S, A = 4, 2
SPEC = DataSpec({"state": ((S,), np.float32)}, A)


def _world_model():
  return tiny_world_model(S, A)


def test_rollout_penalty_and_termination():
  model_def, model = _world_model()
  policy = lambda s, k: jnp.zeros((s.shape[0], A))
  start = jnp.ones((10, S))
  out = model_def.imagine(model, policy, start, 3, jax.random.PRNGKey(1),
                          penalty="max_aleatoric", penalty_coef=2.0)
  assert out.state.shape == (3, 10, S) and out.reward.shape == (3, 10)
  np.testing.assert_allclose(out.reward, out.raw_reward - 2.0 * out.penalty, rtol=1e-6)
  np.testing.assert_array_equal(out.state[1:], out.next_state[:-1])  # chained steps
  assert bool(out.valid.all())
  # A termination function that fires at once: only the first step is valid, discount 0.
  done = model_def.imagine(model, policy, start, 3, jax.random.PRNGKey(1),
                           termination_fn=lambda s, a, s2: jnp.ones((s.shape[0],), bool))
  np.testing.assert_array_equal(np.asarray(done.valid), [[True] * 10, [False] * 10,
                                                          [False] * 10])
  assert float(done.discount.max()) == 0.0
  with pytest.raises(ValueError, match="unknown penalty"):
    model_def.imagine(model, policy, start, 3, jax.random.PRNGKey(1), penalty="nope")


def test_mopo_trains_on_real_and_model_data(tmp_path):
  config = mopo_config.tiny_config()
  config.num_steps, config.rollout_every, config.rollout_batch_size = 60, 20, 16
  config.horizon, config.model_retain_epochs = 2, 4
  agent = MOPOLearner(config, SPEC, world_model=_world_model())
  assert (agent.num_real, agent.num_model) == (2, 30)  # 5% of 32, at least one real row
  loop = LoopConfig(steps_per_chunk=20, eval_every=0, eval_episodes=0, checkpoint_every=0,
                    log_every_seconds=60.0)
  result = train(agent, workdir=str(tmp_path), loop=loop,
                 data=DataSource({"d": synthetic_steps((30, 30))}))
  state = result.state
  assert int(state.sac.step) == 60 and int(state.step) == 60
  # Three rollouts (steps 0, 20, 40) of 16 starts x 2 steps: 96 rows, all valid (no termination).
  assert int(state.buffer.size) == 96 and int(state.buffer.insert_pos) == 96
  # Rollout starts come from the dataset: the first model states are dataset states.
  data_states = np.asarray(synthetic_steps((30, 30)).observation["state"])
  first = np.asarray(state.buffer.state[:16])
  assert all(np.isclose(data_states, row).all(axis=1).any() for row in first)
  # Model rows carry the penalised reward: r_hat - lambda * u with u > 0.
  assert np.isfinite(np.asarray(state.buffer.reward[:96])).all()


def test_mopo_rejects_mismatched_model():
  with pytest.raises(ValueError, match="world model predicts 4-d states"):
    MOPOLearner(mopo_config.tiny_config(), DataSpec({"state": ((7,), np.float32)}, A),
                world_model=_world_model())
  with pytest.raises(ValueError, match="model_path"):
    MOPOLearner(mopo_config.tiny_config(), SPEC)


def test_the_frozen_model_is_not_in_checkpoints(tmp_path):
  """The ensemble reaches MOPO's update as a read-only input: checkpoints hold the SAC state and
  the model buffer, never the ensemble's parameters; a resume takes the model it is given."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  config = mopo_config.tiny_config()
  config.num_steps, config.rollout_every = 40, 20
  model_def, model = _world_model()
  agent = MOPOLearner(config, SPEC, world_model=(model_def, model))
  loop = LoopConfig(steps_per_chunk=20, eval_every=0, eval_episodes=0, checkpoint_every=20,
                    log_every_seconds=60.0)
  source = DataSource({"d": synthetic_steps((30, 30))})
  result = train(agent, workdir=str(tmp_path), loop=loop, data=source)
  saved = ocp.StandardCheckpointer().restore(str(tmp_path / "checkpoints" / "40" / "default"))
  assert set(saved["agent"]) == {"sac", "buffer", "key", "step"}
  model_shapes = {np.shape(x) for x in jax.tree_util.tree_leaves(model.params)}
  saved_shapes = {np.shape(x) for x in jax.tree_util.tree_leaves(saved)}
  member_kernels = {s for s in model_shapes if len(s) == 3}  # [E, in, out]: ensemble only
  assert member_kernels and not member_kernels & saved_shapes
  # The same run with another model changes the model-buffer rewards: the model is an input.
  other = (model_def, model_def.init(jax.random.PRNGKey(7)))
  changed = train(MOPOLearner(config, SPEC, world_model=other), workdir=str(tmp_path / "b"),
                  loop=loop, data=source).state
  assert not np.array_equal(np.asarray(changed.buffer.reward), np.asarray(result.state.buffer.reward))
