"""Agents driven directly (no launcher): init / update / act, and analytic checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps, tiny_rssm, tiny_world_model
from worldmodels.agents import REGISTRY, make_agent
from worldmodels.agents.augwm import config as augwm_config
from worldmodels.agents.augwm.learner import AugWMLearner
from worldmodels.agents.bc import config as bc_config
from worldmodels.agents.cql import config as cql_config
from worldmodels.agents.drqbc import config as drqbc_config
from worldmodels.agents.mopo import config as mopo_config
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.agents.offline_dv2 import config as dv2_config
from worldmodels.agents.offline_dv2.learner import OfflineDV2Learner
from worldmodels.agents.pixel_bc import config as pixel_bc_config
from worldmodels.agents.sac import config as sac_config
from worldmodels.agents.td3bc import config as td3bc_config
from worldmodels.agents.td3bc import losses as td3bc_losses
from worldmodels.data import samplers
from worldmodels.data.samplers import Transition
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.rl.networks import Critics, TanhGaussianActor
from worldmodels.rl.updates import polyak
from worldmodels.training.replay import init_replay, add_steps

SPEC = DataSpec({"state": ((4,), np.float32)}, 2)
CONFIGS = {"sac": sac_config.tiny_config, "td3bc": td3bc_config.tiny_config,
           "bc": bc_config.tiny_config, "mopo": mopo_config.tiny_config,
           "augwm": augwm_config.tiny_config, "offline_dv2": dv2_config.tiny_config,
           "drqbc": drqbc_config.tiny_config, "cql": cql_config.tiny_config,
           "pixel_bc": pixel_bc_config.tiny_config}
PIXEL_AGENTS = ("drqbc", "cql", "pixel_bc")
FRAME = (16, 16, 3)  # tiny frames, 3 stacked
PIXEL_SPEC = DataSpec({"state": ((4,), np.float32), "pixels": (FRAME, np.uint8)}, 2,
                      {"pixels": 3})
MODEL_BASED = {"mopo": (MOPOLearner, tiny_world_model), "augwm": (AugWMLearner, tiny_world_model),
               "offline_dv2": (OfflineDV2Learner, tiny_rssm)}


def _build(name):
  if name in MODEL_BASED:  # built around an in-memory world model instead of an artifact
    learner, world_model = MODEL_BASED[name]
    return learner(CONFIGS[name](), SPEC, world_model=world_model(4, 2))
  return make_agent(name, CONFIGS[name](), PIXEL_SPEC if name in PIXEL_AGENTS else SPEC)


def _batch(key, size=32):
  k1, k2, k3 = jax.random.split(key, 3)
  return Transition({"state": jax.random.normal(k1, (size, 4))},
                    jax.random.uniform(k2, (size, 2), minval=-1, maxval=1),
                    jax.random.normal(k3, (size,)), jnp.ones((size,)),
                    {"state": jax.random.normal(k1, (size, 4)) + 0.1})


def test_every_registered_agent_is_covered():
  assert set(REGISTRY) == set(CONFIGS)


def _phase_inputs(phase, steps):
  """One batch of ``phase``'s sampler and its frozen inputs, as the loop builds them."""
  if phase.kind == "online":
    replay = add_steps(init_replay(100, {"state": (4,)}, {"state": np.float32}, 2),
                       jax.device_put(steps), steps.num_steps)
    return phase.sampler(replay, jax.random.PRNGKey(1)), None
  source = DataSource({"synthetic": steps})
  phase.sampler.prepare(source)
  frozen = phase.frozen(source) if phase.frozen is not None else None
  return phase.sampler(source.arrays, jax.random.PRNGKey(1)), frozen


def _parameter_leaves(state) -> list:
  """The leaves whose path names parameters (params, targets, optimiser moments of them)."""
  return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(state)
          if "param" in jax.tree_util.keystr(path)]


# Slow tier: Offline DV2 (its own tests are in tests/test_offline_dv2.py), CQL and pixel BC,
# whose update is DrQ+BC's with another loss (those losses: tests/test_pixel_agents.py), and
# AugWM, MOPO's learner through its hooks (MOPO's contract stays in the default run; AugWM's own
# tests are in tests/test_augwm.py).
SLOW_CONTRACTS = ("offline_dv2", "cql", "pixel_bc", "augwm")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in SLOW_CONTRACTS else n for n in sorted(REGISTRY)])
def test_agent_contract(name):
  agent = _build(name)
  phase = agent.phases()[0]
  steps = synthetic_steps((20, 20), obs_dim=4, action_dim=2,
                          frame=FRAME if name in PIXEL_AGENTS else None)
  batch, frozen = _phase_inputs(phase, steps)
  state = agent.init(jax.random.PRNGKey(0))
  update = jax.jit(phase.update)
  new_state, metrics = update(state, batch, frozen)
  assert int(new_state.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
  # The update learns: parameters and optimiser states change (not only the step counter).
  before, after = _parameter_leaves(state), _parameter_leaves(new_state)
  changed = sum(not np.array_equal(x, y) for x, y in zip(before, after))
  assert before and changed >= len(before) // 2, (name, changed, len(before))
  # Pure: the same inputs give the same outputs; the input state is untouched.
  again, _ = update(state, batch, frozen)
  jax.tree_util.tree_map(np.testing.assert_array_equal, new_state, again)
  # Acting: the policy interface on one observation, its carry passed through.
  carry = agent.policy_init(jax.random.PRNGKey(3))
  action, carry = jax.jit(agent.policy, static_argnames="eval_mode")(
      new_state, carry, {"state": jnp.ones((4,)), "pixels": jnp.full((16, 16, 9), 7, jnp.uint8)},
      jax.random.PRNGKey(2), eval_mode=True)
  assert action.shape == (2,)
  assert float(jnp.abs(action).max()) <= 1.0
  assert len(agent.phases()) == 1


def test_unknown_agent():
  with pytest.raises(ValueError, match="unknown agent 'nope'"):
    make_agent("nope", sac_config.tiny_config(), SPEC)


def test_polyak():
  out = polyak({"w": jnp.zeros(3)}, {"w": jnp.ones(3)}, 0.25)
  np.testing.assert_allclose(out["w"], 0.25)


def test_critics_are_independent_and_shaped():
  critics = Critics((8,), num_critics=3)
  params = critics.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)), jnp.zeros((1, 2)))
  q = critics.apply(params, jnp.ones((7, 4)), jnp.ones((7, 2)))
  assert q.shape == (3, 7)
  assert len(np.unique(np.asarray(q[:, 0]))) == 3


def test_tanh_gaussian_log_prob_matches_change_of_variables():
  actor = TanhGaussianActor((8,), 2)
  params = actor.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  dist = actor.apply(params, jnp.ones((1, 4)))
  action, log_prob = dist.sample_and_log_prob(seed=jax.random.PRNGKey(1))
  base = dist.distribution
  pre = jnp.arctanh(jnp.clip(action, -1 + 1e-6, 1 - 1e-6))
  expected = base.log_prob(pre) - jnp.sum(jnp.log(1 - action**2), axis=-1)
  np.testing.assert_allclose(log_prob, expected, rtol=1e-3, atol=1e-3)


def test_td3bc_lambda_normalises_q():
  """lambda = alpha / mean|Q|: scaling the critic leaves the actor's Q term unchanged."""
  agent = make_agent("td3bc", td3bc_config.tiny_config(), SPEC)
  state = agent.init(jax.random.PRNGKey(0))
  obs, action = jnp.ones((16, 4)), jnp.zeros((16, 2))
  scaled = jax.tree_util.tree_map(lambda x: x, state.critic_params)
  last = max(k for k in scaled["params"]["VmapMLP_0"] if k.startswith("Dense"))
  layer = scaled["params"]["VmapMLP_0"][last]
  scaled["params"]["VmapMLP_0"][last] = {"kernel": layer["kernel"] * 10, "bias": layer["bias"] * 10}
  _, m1 = td3bc_losses.actor_loss(state.actor_params, agent.networks, state.critic_params, obs,
                                  action, 2.5)
  _, m2 = td3bc_losses.actor_loss(state.actor_params, agent.networks, scaled, obs, action, 2.5)
  np.testing.assert_allclose(m1["actor_loss"] - m1["bc_loss"],
                             m2["actor_loss"] - m2["bc_loss"], rtol=1e-4)


def test_bc_recovers_a_linear_policy():
  """Actions a = tanh(W s): BC's loss drops by two orders of magnitude."""
  steps = synthetic_steps((200,) * 4, obs_dim=4, action_dim=2)
  w = np.array([[0.5, -0.3], [0.2, 0.4], [0.0, 0.1], [-0.2, 0.3]], np.float32)
  state = np.asarray(steps.observation["state"]).copy()
  state[:, :3] = np.random.default_rng(0).normal(size=(state.shape[0], 3))
  steps = steps.replace(observation={"state": state}, action=np.tanh(state @ w))
  config = bc_config.tiny_config()
  config.normalize_observations = False
  config.lr = 3e-3
  agent = make_agent("bc", config, SPEC)
  source = DataSource({"linear": steps})
  sampler = samplers.TransitionSampler(64)

  @jax.jit
  def train(s, key, arrays):
    def body(s, k):
      return agent.update(s, sampler(arrays, k))
    return jax.lax.scan(body, s, jax.random.split(key, 1500))

  s0 = agent.init(jax.random.PRNGKey(0))
  s1, metrics = train(s0, jax.random.PRNGKey(1), source.arrays)
  first, last = float(metrics["bc_loss"][:20].mean()), float(metrics["bc_loss"][-50:].mean())
  assert last < first / 100, (first, last)


def test_sac_critic_fits_constant_reward():
  """With reward 1 everywhere and no bootstrap (discount 0), Q -> 1."""
  agent = make_agent("sac", sac_config.tiny_config(), SPEC)
  state = agent.init(jax.random.PRNGKey(0))
  batch = _batch(jax.random.PRNGKey(1), 64)
  batch = batch.replace(reward=jnp.ones(64), discount=jnp.zeros(64))

  @jax.jit
  def train(s):
    return jax.lax.scan(lambda s, _: agent.update(s, batch), s, None, length=400)

  state, metrics = train(state)
  np.testing.assert_allclose(float(metrics["q_mean"][-1]), 1.0, atol=0.05)
  assert float(metrics["alpha"][-1]) < 1.0  # temperature moves
