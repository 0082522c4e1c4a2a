"""Offline DV2: penalised imagination, the actor-critic update, the slow critic, the Lagrangian,
acting with the RSSM's carry, and a model that does not fit the data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps, tiny_rssm
from worldmodels.agents.offline_dv2 import config as dv2_config
from worldmodels.agents.offline_dv2 import losses
from worldmodels.agents.offline_dv2.learner import OfflineDV2Learner
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec

SPEC = DataSpec({"state": ((4,), np.float32)}, 2)


@pytest.fixture(scope="module")
def setup():
  """An agent on a tiny RSSM, one batch and its jitted update (compiled once for the module)."""
  config = dv2_config.tiny_config()
  config.slow_critic_every = 3
  config.critic_lr = config.actor_lr = 1e-3
  agent = OfflineDV2Learner(config, SPEC, world_model=tiny_rssm(4, 2))
  phase = agent.phases()[0]
  source = DataSource({"d": synthetic_steps((20, 20), obs_dim=4, action_dim=2)})
  phase.sampler.prepare(source)
  batch = phase.sampler(source.arrays, jax.random.PRNGKey(1))
  return agent, batch, phase.frozen(source), jax.jit(agent.update)


def test_rewards_are_penalised_by_the_heads_disagreement(setup):
  agent, _, params, _ = setup
  state = agent.init(jax.random.PRNGKey(0))
  start = agent.model.initial(6)
  start = start.replace(deter=jax.random.normal(jax.random.PRNGKey(3), start.deter.shape))
  trajectory = losses.imagine(agent.model, params, agent.networks.actor, state.actor_params,
                              start, 3, jax.random.PRNGKey(4))
  terms = {coef: losses.penalised_returns(agent.model, params, agent.networks.critic,
                                          state.slow_critic_params, trajectory, agent.config,
                                          jnp.asarray(coef))
           for coef in (0.0, 10.0)}
  assert float(terms[0.0]["penalty"].min()) > 0
  # The return is linear in lambda: R(10) = R(0) - 10 * (the lambda-return of the penalties
  # with zero values).
  from worldmodels.rl.returns import lambda_returns  # pylint: disable=import-outside-toplevel
  penalty_return = lambda_returns(terms[0.0]["penalty"], jnp.zeros((4, 6)),
                                  terms[0.0]["continues"], agent.config.return_lambda)
  np.testing.assert_allclose(terms[10.0]["returns"], terms[0.0]["returns"] - 10 * penalty_return,
                             rtol=1e-4, atol=1e-4)


def test_the_update_trains_actor_and_critic_and_refreshes_the_slow_critic(setup):
  agent, batch, frozen, update = setup
  state = initial = agent.init(jax.random.PRNGKey(0))
  first = None
  slow_changes = []
  for i in range(12):
    new, metrics = update(state, batch, frozen)
    first = first or metrics
    slow_changed = not all(np.array_equal(a, b) for a, b in zip(
        jax.tree_util.tree_leaves(state.slow_critic_params),
        jax.tree_util.tree_leaves(new.slow_critic_params)))
    slow_changes.append(slow_changed)
    state = new
  assert slow_changes == [(i + 1) % 3 == 0 for i in range(12)]  # every slow_critic_every
  # The critic fits the (fixed-batch) returns: its loss falls.
  assert float(metrics["critic_loss"]) < 0.5 * float(first["critic_loss"])
  # The actor moves towards a higher penalised imagined return (measured from this batch's
  # posterior states with the initial slow critic and fixed keys).
  model = agent.model
  observed = model.observe(frozen, model.embed(frozen, batch.observation), batch.action,
                           batch.is_first, jax.random.PRNGKey(7))
  start = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), observed.posterior)

  @jax.jit
  def objective(actor_params):
    def one(key):
      trajectory = losses.imagine(model, frozen, agent.networks.actor, actor_params, start,
                                  agent.config.horizon, key)
      return losses.penalised_returns(model, frozen, agent.networks.critic,
                                      initial.slow_critic_params, trajectory, agent.config,
                                      initial.penalty_coef)["returns"][0].mean()
    return jax.vmap(one)(jax.random.split(jax.random.PRNGKey(8), 8)).mean()

  assert float(objective(state.actor_params)) > float(objective(initial.actor_params))
  assert float(metrics["penalty_coef"]) == agent.config.penalty_coef  # fixed without Lagrangian


def test_the_lagrangian_moves_lambda_towards_the_target_penalty():
  config = dv2_config.tiny_config()
  config.lagrangian = True
  for target, direction in ((0.0, 1), (100.0, -1)):
    config.target_penalty = target
    coef = losses.lagrange_step(jnp.asarray(10.0), jnp.asarray(0.05), config)
    assert np.sign(float(coef) - 10.0) == direction
  config.target_penalty = 1e9
  assert float(losses.lagrange_step(jnp.asarray(1.0), jnp.asarray(0.05), config)) == 0.0


def test_acting_carries_the_rssm_state(setup):
  agent, _, _, _ = setup
  state = agent.init(jax.random.PRNGKey(0))
  carry = agent.policy_init(jax.random.PRNGKey(1))
  assert not np.any(np.asarray(carry[0].deter)) and not np.any(np.asarray(carry[1]))
  obs = {"state": np.ones((4,), np.float32), "pixels": np.zeros((2, 2, 3), np.uint8)}
  key = jax.random.PRNGKey(2)
  action, carry1 = agent.policy(state, carry, obs, key, eval_mode=True)
  assert action.shape == (2,) and float(jnp.abs(action).max()) <= 1.0
  # The carry holds the posterior sample of the observation and the action taken.
  np.testing.assert_allclose(np.asarray(carry1[0].stoch).sum(-1), 1.0, atol=1e-6)
  assert np.array_equal(carry1[1][0], action)
  # From the carried state, the GRU moves (from the zero start it cannot: zero in, zero out).
  _, carry2 = agent.policy(state, carry1, obs, key, eval_mode=True)
  assert not np.allclose(carry2[0].deter, carry1[0].deter)
  again, _ = agent.policy(state, carry, obs, key, eval_mode=True)
  np.testing.assert_array_equal(again, action)  # deterministic in eval mode


def test_a_model_that_does_not_fit_the_data_is_refused(tmp_path):
  from worldmodels.models.artifacts import ModelArtifactError, save_model  # pylint: disable=import-outside-toplevel
  from worldmodels.errors import ConfigError  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "rssm")
  save_model(path, *tiny_rssm(4, 2))
  config = dv2_config.tiny_config()
  config.model_path = path
  OfflineDV2Learner(config, SPEC)  # fits
  with pytest.raises(ModelArtifactError, match=rf"{path}: the RSSM does not fit the data: "
                     r"observation 'state' is float32\[4\] in the model and float32\[6\]"):
    OfflineDV2Learner(config, DataSpec({"state": ((6,), np.float32)}, 2))
  with pytest.raises(ModelArtifactError, match="actions are 2-d in the model and 1-d"):
    OfflineDV2Learner(config, DataSpec({"state": ((4,), np.float32)}, 1))
  config.model_path = None
  with pytest.raises(ConfigError, match="--config.agent.model_path"):
    OfflineDV2Learner(config, SPEC)
