"""AugWM: augmentation algebra, the online linear context learner, clipping, the k-step switch,
and the learner's augmented, context-widened batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps, tiny_world_model
from worldmodels.agents import make_agent
from worldmodels.agents.augwm import augmentations as aug
from worldmodels.agents.augwm import config as augwm_config
from worldmodels.agents.augwm.context import (AugWMPolicy, OnlineLinearModel,
                                              learned_context)
from worldmodels.agents.augwm.learner import AugWMLearner
from worldmodels.data.samplers import Transition
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.training.loop import LoopConfig, train

S, A = 4, 2
SPEC = DataSpec({"state": ((S,), np.float32)}, A)


def test_augmentation_algebra():
  s, s2 = jnp.asarray([1.0, 2.0]), jnp.asarray([3.0, 1.0])
  z = jnp.asarray([2.0, 0.5])
  np.testing.assert_allclose(aug.rad(s, s2, z), ([2.0, 1.0], [6.0, 0.5]))
  np.testing.assert_allclose(aug.rans(s, s2, z), ([1.0, 2.0], [6.0, 0.5]))
  # DAS scales delta = s' - s = (2, -1): s + z * delta = (1 + 4, 2 - 0.5).
  np.testing.assert_allclose(aug.das(s, s2, z), ([1.0, 2.0], [5.0, 1.5]))
  np.testing.assert_allclose(aug.no_augmentation(s, s2, z), (s, s2))
  with pytest.raises(ValueError, match="unknown augmentation"):
    aug.get_augmentation("cutout")
  zs = aug.sample_z(jax.random.PRNGKey(0), (1000, 3), 0.5, 1.5)
  assert 0.5 <= float(zs.min()) and float(zs.max()) <= 1.5 and abs(float(zs.mean()) - 1) < 0.05


def test_linear_model_recovers_a_planted_scale():
  """True dynamics delta = z* . (s M); the world model predicts s M; the learned context
  recovers z* per dimension."""
  rng = np.random.default_rng(0)
  m = rng.normal(size=(S, S)) * 0.3
  z_true = np.array([1.05, 0.95, 1.0, 1.06])
  linear = OnlineLinearModel.empty(S, ridge=1e-6)
  for _ in range(200):
    s = rng.normal(size=S)
    linear = linear.update(s, z_true * (s @ m))
  s = rng.normal(size=(50, S))
  z = learned_context(linear.predict(s), s @ m, 0.5, 1.5, 1e-6)
  ok = np.abs(s @ m) > 0.05  # well-conditioned ratios
  np.testing.assert_allclose(z[ok], np.broadcast_to(z_true, z.shape)[ok], atol=1e-3)
  assert linear.r2() > 0.99


def test_linear_r2_scores_only_determined_fits_and_the_action_features_help_when_they_matter():
  """R^2 counts a pair only once the fit predicting it has seen as many pairs as features; a
  delta that depends on the action is fitted by [s, a, 1] and not by [s, 1]."""
  rng = np.random.default_rng(1)
  m, b = rng.normal(size=(S, S)) * 0.3, rng.normal(size=(A, S))
  state_only = OnlineLinearModel.empty(S, ridge=1e-6)
  with_action = OnlineLinearModel.empty(S, ridge=1e-6, action_dim=A)
  assert (state_only.num_features, with_action.num_features) == (S + 1, S + A + 1)
  for step in range(200):
    s, a = rng.normal(size=S), rng.uniform(-1, 1, A)
    delta = s @ m + a @ b
    state_only = state_only.update(s, delta)
    with_action = with_action.update(s, delta, a)
    if step == S:  # S + 1 pairs seen, none scored: the fit was under-determined before
      assert len(state_only.targets) == 0 and np.isnan(state_only.r2())
  assert len(state_only.targets) == 200 - (S + 1)
  assert len(with_action.targets) == 200 - (S + A + 1)
  assert with_action.r2() > 0.999 and state_only.r2() < 0.9
  with pytest.raises(ValueError, match="give the action"):
    with_action.update(np.zeros(S), np.zeros(S))


def test_k_is_a_fraction_of_the_episode_unless_set():
  c = augwm_config.default_config()
  assert augwm_config.adapt_after(c, 1000) == 300  # the paper's k for 1000-step episodes
  assert augwm_config.adapt_after(c, 500) == 150  # dm_control at action repeat 2
  with pytest.raises(ValueError, match="episode length"):
    augwm_config.adapt_after(c, None)
  c.adapt_after = 42
  assert augwm_config.adapt_after(c, None) == 42 == augwm_config.adapt_after(c, 1000)
  c.linear_features = "state_and_more"
  with pytest.raises(ValueError, match="linear_features"):
    augwm_config.adapt_after(c, 1000)


def test_context_clipping_and_guarded_division():
  z = learned_context(np.array([2.0, 0.1, 1.0, 5.0]), np.array([1.0, 1.0, 1e-6, -1.0]),
                      0.93, 1.07, 1e-3)
  np.testing.assert_allclose(z, [1.07, 0.93, 1.0, 0.93])


def _world_model():
  return tiny_world_model(S, A)


def test_learner_augments_and_appends_context():
  config = augwm_config.tiny_config()
  agent = AugWMLearner(config, SPEC, world_model=_world_model())
  assert agent.sac.spec.observation_shapes["state"] == (2 * S,)
  s = jnp.ones((64, S))
  s2 = 2.0 * jnp.ones((64, S))
  batch = Transition({"state": s}, jnp.zeros((64, A)), jnp.zeros(64), jnp.ones(64),
                     {"state": s2})
  out = agent.transform_batch(batch, jax.random.PRNGKey(0))
  obs, next_obs = out.observation["state"], out.next_observation["state"]
  z = obs[:, S:]
  np.testing.assert_array_equal(next_obs[:, S:], z)  # the same context for s and s'
  np.testing.assert_array_equal(obs[:, :S], s)  # DAS leaves s alone
  np.testing.assert_allclose(next_obs[:, :S], s + z * (s2 - s), rtol=1e-6)  # delta = 1
  assert float(z.min()) >= 0.5 and float(z.max()) <= 1.5 and float(z.std()) > 0.1
  # Without context and without augmentation, AugWM is MOPO.
  config.augmentation, config.use_context = "none", False
  plain = AugWMLearner(config, SPEC, world_model=_world_model())
  same = plain.transform_batch(batch, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(same.next_observation["state"], s2)


def test_train_z_replaces_the_sampled_z_and_is_the_default_context():
  """The oracle experiment's agent: one z on every transition, and that z as its context."""
  config = augwm_config.tiny_config()
  config.train_z = (0.8, 0.9, 1.1, 1.2)
  agent = AugWMLearner(config, SPEC, world_model=_world_model())
  s, s2 = jnp.ones((8, S)), 3.0 * jnp.ones((8, S))
  batch = Transition({"state": s}, jnp.zeros((8, A)), jnp.zeros(8), jnp.ones(8), {"state": s2})
  out = agent.transform_batch(batch, jax.random.PRNGKey(0))
  z = np.asarray(config.train_z, np.float32)
  np.testing.assert_allclose(out.observation["state"][:, S:], np.broadcast_to(z, (8, S)))
  np.testing.assert_allclose(out.next_observation["state"][:, :S], 1.0 + 2.0 * z[None].repeat(8, 0),
                             rtol=1e-6)  # DAS: s + z * delta
  np.testing.assert_allclose(agent.policy_observation(s)["state"][:, S:],
                             np.broadcast_to(z, (8, S)))
  carry = AugWMPolicy(agent, mode="default").policy_init(jax.random.PRNGKey(0))
  np.testing.assert_allclose(carry.z, z)
  config.train_z = (1.0, 1.0)
  with pytest.raises(ValueError, match="train_z must hold 4"):
    AugWMLearner(config, SPEC, world_model=_world_model())


def _act(policy, state, carry, observation):
  return policy.policy(state, carry, observation, jax.random.PRNGKey(0), eval_mode=True)


def test_learner_trains_and_policy_switches_at_k(tmp_path):
  config = augwm_config.tiny_config()
  config.num_steps, config.adapt_after = 40, 10
  agent = AugWMLearner(config, SPEC, world_model=_world_model())
  loop = LoopConfig(steps_per_chunk=20, eval_every=0, eval_episodes=0, checkpoint_every=0,
                    log_every_seconds=60.0)
  result = train(agent, workdir=str(tmp_path), loop=loop,
                 data=DataSource({"d": synthetic_steps((30, 30))}))
  assert int(result.state.sac.step) == 40
  # The loop's own evaluation acts with the default context on plain observations.
  assert agent.act(result.state, {"state": jnp.ones((3, S))}, jax.random.PRNGKey(0),
                   True).shape == (3, A)
  policy = AugWMPolicy(agent, mode="learned")
  carry = policy.policy_init(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  state = rng.normal(size=S).astype(np.float32)
  for _ in range(30):  # a "shifted" environment: delta = 1.5 * s M
    action, carry = _act(policy, result.state, carry, {"state": state})
    assert action.shape == (A,) and np.all(np.abs(action) <= 1)
    state = (state + 1.5 * 0.1 * state).astype(np.float32)
  contexts = np.asarray(carry.contexts)
  np.testing.assert_array_equal(contexts[:10], 1.0)  # default context before k steps
  assert np.any(contexts[10:] != 1.0)
  assert contexts.min() >= 0.93 and contexts.max() <= 1.07
  assert carry.linear.count == 29 and np.isfinite(policy.episode_r2(carry))
  fresh = policy.policy_init(jax.random.PRNGKey(1))  # a new episode starts from nothing
  assert fresh.linear.count == 0 and fresh.contexts == () and fresh.step == 0
  # The [s, a, 1] model is fed the actions taken, and k can come from the episode length.
  config.linear_features, config.adapt_after = "state_action", None
  with pytest.raises(ValueError, match="episode length"):
    AugWMPolicy(agent, mode="learned")
  policy = AugWMPolicy(agent, mode="learned", episode_length=40)
  assert policy.adapt_after == 12
  carry = policy.policy_init(jax.random.PRNGKey(0))
  for _ in range(30):
    action, carry = _act(policy, result.state, carry, {"state": state})
    state = (state + 0.1 * state + 0.05 * np.pad(action, (0, S - A))).astype(np.float32)
  assert carry.linear.action_dim == A and carry.linear.count == 29
  np.testing.assert_array_equal(np.asarray(carry.contexts)[:12], 1.0)
  assert np.isfinite(policy.episode_r2(carry))
  default = AugWMPolicy(agent, mode="default")
  carry = default.policy_init(jax.random.PRNGKey(0))
  for _ in range(15):
    _, carry = _act(default, result.state, carry, {"state": state})
  np.testing.assert_array_equal(np.asarray(carry.contexts), 1.0)


def test_batched_context_policy_matches_one_episode_at_a_time():
  """Three episodes side by side (learned context, [s, a, 1]) give each episode's actions,
  contexts and R^2 of that episode alone; the oracle context batches too."""
  config = augwm_config.tiny_config()
  config.adapt_after, config.linear_features = 6, "state_action"
  agent = AugWMLearner(config, SPEC, world_model=_world_model())
  state = agent.init(jax.random.PRNGKey(0))
  policy = AugWMPolicy(agent, mode="learned")
  assert policy.can_batch
  growth = np.asarray([1.05, 1.15, 0.9], np.float32)
  starts = np.random.default_rng(1).normal(size=(3, S)).astype(np.float32)
  keys = jnp.stack([jax.random.PRNGKey(i) for i in range(3)])
  carry, s = policy.policy_init_batch(keys), starts.copy()
  singles = [policy.policy_init(keys[i]) for i in range(3)]
  alone = starts.copy()
  for _ in range(20):
    actions, carry = policy.policy(state, carry, {"state": s}, keys, eval_mode=True)
    assert actions.shape == (3, A)
    for i in range(3):
      action, singles[i] = _act_with(policy, state, singles[i], alone[i], keys[i])
      np.testing.assert_allclose(actions[i], action, atol=1e-5)
      alone[i] = alone[i] * growth[i] + 0.05 * np.pad(action, (0, S - A))
    s = (s * growth[:, None] + 0.05 * np.pad(actions, ((0, 0), (0, S - A)))).astype(np.float32)
  for i in range(3):
    item = policy.carry_item(carry, i)
    np.testing.assert_allclose(np.asarray(item.contexts), np.asarray(singles[i].contexts),
                               atol=1e-4)
    assert item.linear.count == singles[i].linear.count == 19
    np.testing.assert_allclose(policy.episode_r2(item), policy.episode_r2(singles[i]),
                               atol=1e-6)
  assert np.any(np.asarray(carry.contexts)[6:] != 1.0)  # the learned context acts after k
  # The oracle keeps one carry per episode and sees each episode's own transitions.
  planted = np.asarray([0.6, 1.4, 1.0, 1.2], np.float32)
  oracle = _PlantedOracle(planted)
  oracle_policy = AugWMPolicy(agent, mode="oracle", oracle=oracle)
  carry, s = oracle_policy.policy_init_batch(keys), starts.copy()
  for t in range(3):
    _, carry = oracle_policy.policy(state, carry, {"state": s + t}, keys, eval_mode=True)
  assert carry.oracle == (2, 2, 2) and len(oracle.seen) == 6
  np.testing.assert_array_equal(oracle.seen[1][0], starts[1])  # t = 0 of episode 1
  np.testing.assert_array_equal(oracle.seen[1][2], starts[1] + 1)
  item = oracle_policy.carry_item(carry, 2)
  assert item.oracle == 2
  np.testing.assert_array_equal(np.asarray(item.contexts), [np.ones(S), planted, planted])


def _act_with(policy, state, carry, s, key):
  return policy.policy(state, carry, {"state": s.astype(np.float32)}, key, eval_mode=True)


class _PlantedOracle:
  """Knows the true z; records what the policy shows it (its carry counts transitions)."""

  def __init__(self, z):
    self.z, self.seen = z, []

  def init(self):
    return 0

  def observe(self, count, observation, action, next_observation):
    self.seen.append((observation["state"].copy(), action.copy(), next_observation["state"]))
    return count + 1

  def context(self, count):
    assert count > 0
    return self.z


def test_policy_with_an_oracle_context():
  config = augwm_config.tiny_config()
  agent = AugWMLearner(config, SPEC, world_model=_world_model())
  state = agent.init(jax.random.PRNGKey(0))
  planted = np.asarray([0.6, 1.4, 1.0, 1.2], np.float32)
  oracle = _PlantedOracle(planted)
  policy = AugWMPolicy(agent, mode="oracle", oracle=oracle)
  carry = policy.policy_init(jax.random.PRNGKey(0))
  observations = [{"state": np.full(S, float(t), np.float32)} for t in range(4)]
  actions = []
  for observation in observations:
    action, carry = _act(policy, state, carry, observation)
    actions.append(action)
  contexts = np.asarray(carry.contexts)
  np.testing.assert_array_equal(contexts[0], 1.0)  # nothing observed yet
  np.testing.assert_array_equal(contexts[1:], np.broadcast_to(planted, (3, S)))
  assert len(oracle.seen) == 3 and carry.oracle == 3  # (o_t, a_t, o_t+1) for t = 0, 1, 2
  np.testing.assert_array_equal(oracle.seen[1][0], observations[1]["state"])
  np.testing.assert_array_equal(oracle.seen[1][1], actions[1])
  np.testing.assert_array_equal(oracle.seen[1][2], observations[2]["state"])
  fresh = policy.policy_init(jax.random.PRNGKey(1))
  assert fresh.oracle == 0 and fresh.contexts == ()
  with pytest.raises(ValueError, match="needs an oracle"):
    AugWMPolicy(agent, mode="oracle")
  with pytest.raises(ValueError, match="only that mode takes one"):
    AugWMPolicy(agent, mode="default", oracle=oracle)


def test_registry_builds_augwm(tmp_path):
  from worldmodels.models.artifacts import save_model  # pylint: disable=g-import-not-at-top
  model_def, model = _world_model()
  save_model(str(tmp_path / "m"), model_def, model)
  config = augwm_config.tiny_config()
  config.model_path = str(tmp_path / "m")
  agent = make_agent("augwm", config, SPEC)
  assert agent.phases()[0].kind == "offline"
