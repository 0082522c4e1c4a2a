"""The DrQ-v2 pixel parts and the pixel agents (DrQ+BC, CQL, BC) on tiny known inputs."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodels.agents.cql import config as cql_config
from worldmodels.agents.cql import losses as cql_losses
from worldmodels.agents.drqbc import config as drqbc_config
from worldmodels.agents.drqbc.learner import DrQBCLearner
from worldmodels.agents.td3bc import losses as td3bc_losses
from worldmodels.data.samplers import Transition
from worldmodels.data.spec import DataSpec
from worldmodels.rl import pixels
from worldmodels.rl.policy_losses import bc_regularised_objective


def _crops(image: np.ndarray, pad: int) -> list:
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  size = image.shape[0]
  return [padded[i:i + size, j:j + size] for i in range(2 * pad + 1)
          for j in range(2 * pad + 1)]


def test_random_shift_is_an_edge_padded_crop_and_bilinear_agrees():
  image = np.arange(5 * 5 * 2, dtype=np.uint8).reshape(5, 5, 2)
  images = np.broadcast_to(image, (200, 5, 5, 2))
  shifted = np.asarray(pixels.random_shift(jax.random.PRNGKey(0), images, pad=1))
  crops = _crops(image, 1)
  seen = set()
  for out in shifted:
    matches = [k for k, crop in enumerate(crops) if np.array_equal(out, crop)]
    assert len(matches) == 1
    seen.add(matches[0])
  assert seen == set(range(9))  # every offset in {0, 1, 2}^2 is drawn
  assert shifted.dtype == np.uint8
  bilinear = pixels.random_shift(jax.random.PRNGKey(0), images, pad=1, method="bilinear")
  np.testing.assert_allclose(np.asarray(bilinear), shifted.astype(np.float32), atol=1e-4)
  with pytest.raises(ValueError, match="unknown shift method 'nearest'"):
    pixels.random_shift(jax.random.PRNGKey(0), images, method="nearest")


def test_bilinear_sampling_interpolates_between_pixels():
  image = jnp.asarray([[0.0, 10.0], [20.0, 30.0]])[:, :, None]
  out = pixels._bilinear_crop(image, jnp.asarray([0.5, 0.25]), 1, 1)  # pylint: disable=protected-access
  # rows 0 / 1 mixed half and half, columns 0 / 1 at 3:1.
  np.testing.assert_allclose(float(out[0, 0, 0]), 0.5 * 2.5 + 0.5 * 22.5)


def test_stddev_schedule():
  schedule = "linear(1.0, 0.1, 500000)"
  values = [float(pixels.scheduled_stddev(schedule, s)) for s in (0, 250_000, 500_000, 10**7)]
  np.testing.assert_allclose(values, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
  assert pixels.parse_schedule(" linear( 0.5,0.2, 1e3 ) ") == (0.5, 0.2, 1000)
  with pytest.raises(ValueError, match="expected 'linear"):
    pixels.parse_schedule("exp(1.0, 0.1)")


def test_clipped_noise_is_bounded():
  noise = pixels.clipped_noise(jax.random.PRNGKey(0), (1000,), jnp.asarray(5.0), 0.3)
  assert float(jnp.abs(noise).max()) == pytest.approx(0.3)


def test_bc_weight_is_alpha_over_mean_abs_q():
  q = jnp.asarray([2.0, -4.0, 6.0])  # mean |Q| = 4
  pi = jnp.asarray([[0.5], [0.0], [-0.5]])
  data = jnp.asarray([[0.0], [0.0], [0.5]])
  loss, metrics = bc_regularised_objective(q, pi, data, alpha=2.5)
  assert float(metrics["lambda"]) == pytest.approx(2.5 / 4)
  assert float(metrics["bc_loss"]) == pytest.approx((0.25 + 0 + 1.0) / 3)
  assert float(loss) == pytest.approx(-2.5 / 4 * 4 / 3 + 1.25 / 3)
  # lambda is detached: the gradient through q is -lambda / B per element.
  grad = jax.grad(lambda q: bc_regularised_objective(q, pi, data, 2.5)[0])(q)
  np.testing.assert_allclose(np.asarray(grad), -2.5 / 4 / 3, rtol=1e-6)
  # The state TD3+BC loss is this objective (its code, not a copy of it).
  assert td3bc_losses.bc_regularised_objective is bc_regularised_objective


def _stub_critic(fn, num_critics=2, action_dim=2):
  """A stand-in for PixelNetworks whose critic is ``fn(features, actions) -> [B]``."""
  critic = types.SimpleNamespace(
      apply=lambda params, h, a: jnp.stack([fn(h, a) * (i + 1) for i in range(num_critics)]))
  return types.SimpleNamespace(critic=critic,
                               actor=types.SimpleNamespace(action_dim=action_dim))


def test_cql_regulariser_is_log_mean_exp_of_uniform_q_minus_data_q():
  features = jnp.asarray([[1.0], [2.0], [3.0]])
  networks = _stub_critic(lambda h, a: h[:, 0] + a[:, 0])
  key = jax.random.PRNGKey(3)
  q_data = jnp.asarray([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
  value, metrics = cql_losses.cql_regulariser(None, networks, features, q_data, key, 4, 2.0)
  actions = np.asarray(jax.random.uniform(key, (4, 3, 2), minval=-1.0, maxval=1.0))
  h = np.asarray(features)[:, 0]
  gap = 0.0
  for scale, data in zip((1, 2), np.asarray(q_data)):
    sampled = scale * (h[None, :] + actions[:, :, 0])  # [N, B]
    gap += np.mean(np.log(np.mean(np.exp(sampled), axis=0)) - data)
  assert float(metrics["cql_gap"]) == pytest.approx(gap, rel=1e-5)
  assert float(value) == pytest.approx(2.0 * gap, rel=1e-5)
  # A critic that is constant in the action has a zero gap at the data.
  flat = _stub_critic(lambda h, a: h[:, 0])
  zero, _ = cql_losses.cql_regulariser(None, flat, features, jnp.stack([h, 2 * h]), key, 4, 1.0)
  assert abs(float(zero)) < 1e-5


def test_cql_table10_weights():
  assert cql_config.table10_weight("walker-walk", "medexp") == 2.0
  assert cql_config.table10_weight("cheetah-run", "expert") == 20.0
  with pytest.raises(ValueError, match="no CQL weight for humanoid-walk medium"):
    cql_config.table10_weight("humanoid-walk", "medium")


def test_a_state_dataset_is_refused_with_the_entry_named():
  with pytest.raises(ValueError, match="reads observation entry 'pixels'"):
    DrQBCLearner(drqbc_config.tiny_config(), DataSpec({"state": ((4,), np.float32)}, 2))


def _pixel_batch(discount: float, size: int = 8):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  frames = jax.random.randint(k1, (size, 16, 16, 9), 0, 256).astype(jnp.uint8)
  return Transition({"pixels": frames}, jax.random.uniform(k2, (size, 2), minval=-1, maxval=1),
                    jax.random.normal(k3, (size,)), jnp.full((size,), discount),
                    {"pixels": frames[::-1]})


@pytest.fixture(scope="module")
def drqbc():
  spec = DataSpec({"pixels": ((16, 16, 3), np.uint8)}, 2, {"pixels": 3})
  agent = DrQBCLearner(drqbc_config.tiny_config(), spec)
  return agent, jax.jit(agent.init)(jax.random.PRNGKey(1)), jax.jit(agent.update)


def _moved(a, b) -> bool:
  return any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                       jax.tree_util.tree_leaves(b)))


def test_drq_update_targets_and_slow_critic(drqbc):
  agent, state, update = drqbc
  # A terminal (discount 0): the target is the n-step reward alone.
  terminal = _pixel_batch(0.0)
  new_state, metrics = update(state, terminal)
  assert float(metrics["target_mean"]) == pytest.approx(float(terminal.reward.mean()), rel=1e-5)
  assert float(metrics["stddev"]) == pytest.approx(1.0)
  # The encoder moved (the critic trains it), the slow critic moved by tau only.
  assert _moved(state.encoder_params, new_state.encoder_params)
  assert _moved(state.actor_params, new_state.actor_params)
  tau = agent.config.tau
  for target, before, after in zip(*(jax.tree_util.tree_leaves(t) for t in (
      new_state.target_critic_params, state.target_critic_params, new_state.critic_params))):
    np.testing.assert_allclose(target, (1 - tau) * before + tau * after, rtol=1e-5, atol=1e-7)
  # Bootstrapping (discount > 0) changes the target.
  _, bootstrapped = update(state, _pixel_batch(0.97))
  assert float(bootstrapped["target_mean"]) != pytest.approx(float(metrics["target_mean"]))


@pytest.mark.slow
def test_the_encoder_is_trained_by_the_critic_only(drqbc):
  """Another actor loss (the opposite direction) leaves the encoder's update unchanged."""
  agent, state, update = drqbc

  class Reversed(DrQBCLearner):
    def actor_loss(self, *args):
      loss, metrics = super().actor_loss(*args)
      return -loss, metrics

  batch = _pixel_batch(0.0)
  new_state, _ = update(state, batch)
  reversed_state, _ = jax.jit(Reversed(agent.config, agent.spec).update)(state, batch)
  jax.tree_util.tree_map(np.testing.assert_array_equal, reversed_state.encoder_params,
                         new_state.encoder_params)
  assert _moved(reversed_state.actor_params, new_state.actor_params)
