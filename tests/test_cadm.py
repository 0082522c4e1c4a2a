"""CaDM (worldmodels.agents.cadm): windows, the forward / backward targets on a planted linear
system, and a tiny learner that fits one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.agents.cadm import config as cadm_config
from worldmodels.agents.cadm import losses
from worldmodels.agents.cadm.learner import CaDMLearner
from worldmodels.agents.cadm.networks import context_features
from worldmodels.data.samplers import SequenceBatch
from worldmodels.data.source import DataSource
from worldmodels.data.types import Steps

S, A = 3, 2
RNG = np.random.default_rng(0)
A_MATRIX = np.eye(S) * 0.9 + 0.05 * RNG.normal(size=(S, S))  # invertible
B_MATRIX = RNG.normal(size=(S, A)) * 0.3
W = RNG.normal(size=S)


def _linear_episodes(episodes: int, length: int, seed: int = 1) -> Steps:
  """``s' = A s + B a``, ``r = w . s``; ``length + 1`` steps per episode (RLDS steps)."""
  rng = np.random.default_rng(seed)
  states, actions, rewards, first, last = [], [], [], [], []
  for _ in range(episodes):
    s = rng.normal(size=S)
    for t in range(length + 1):
      a = rng.uniform(-1, 1, A) if t < length else np.zeros(A)
      states.append(s), actions.append(a), rewards.append(W @ s if t < length else 0.0)
      first.append(t == 0), last.append(t == length)
      s = A_MATRIX @ s + B_MATRIX @ a
  f32 = lambda x: np.asarray(x, np.float32)
  last = np.asarray(last)
  return Steps({"state": f32(states)}, f32(actions), f32(rewards), f32(~last),
               np.asarray(first), last, np.zeros_like(last))


def _window(k: int, batch: int = 4) -> SequenceBatch:
  steps = _linear_episodes(batch, k + 1)  # exactly one window of k + 2 steps per episode
  shape = lambda x: jnp.asarray(x).reshape((batch, k + 2) + x.shape[1:])
  return SequenceBatch({"state": shape(steps.observation["state"])}, shape(steps.action),
                       shape(steps.reward), shape(steps.discount), shape(steps.is_first),
                       shape(steps.is_last), shape(steps.is_terminal))


def test_windows_split_into_context_and_target():
  k = 3
  window = _window(k)
  rows = losses.split_window(window, k, jnp.zeros(S), jnp.ones(S))
  states = window.observation["state"]
  np.testing.assert_allclose(rows.context, context_features(states[:, :k], window.action[:, :k],
                                                            states[:, 1:k + 1]))
  np.testing.assert_allclose(rows.state, states[:, k])
  np.testing.assert_allclose(rows.next_state, states[:, k + 1])
  assert rows.context.shape == (4, k, 2 * S + A) and bool(rows.mask.all())


def test_backward_loss_is_zero_on_a_planted_invertible_linear_system():
  rows = losses.split_window(_window(3), 3, jnp.zeros(S), jnp.ones(S))
  inverse = np.linalg.inv(A_MATRIX)
  # The exact models of the planted system, as one-member predictions with unit variance.
  s, a, s_next = (np.asarray(x, np.float64) for x in (rows.state, rows.action, rows.next_state))
  previous = (s_next - a @ B_MATRIX.T) @ inverse.T  # A^-1 (s' - B a) recovers s
  forward_mean = np.concatenate([s_next - s, (s @ W)[:, None]], axis=1)[None]
  backward_mean = (previous - s_next)[None]
  zeros = lambda x: jnp.zeros_like(jnp.asarray(x))
  terms = losses.prediction_terms((jnp.asarray(forward_mean), zeros(forward_mean)),
                                  (jnp.asarray(backward_mean), zeros(backward_mean)), rows)
  np.testing.assert_allclose(terms["backward_mse"], 0.0, atol=1e-9)
  np.testing.assert_allclose(terms["backward_nll"], [0.0], atol=1e-9)
  np.testing.assert_allclose(terms["forward_mse"], 0.0, atol=1e-9)
  # The forward model's answer in the backward slot (the wrong direction) is penalised.
  wrong = losses.prediction_terms((jnp.asarray(forward_mean), zeros(forward_mean)),
                                  (jnp.asarray(forward_mean[..., :S]), zeros(backward_mean)), rows)
  assert float(wrong["backward_mse"]) > 0.01


def test_a_tiny_cadm_learns_a_linear_system_and_steps():
  source = DataSource({"linear": _linear_episodes(16, 20)})
  config = cadm_config.tiny_config()
  learner = CaDMLearner(config, source.spec())
  learner.sampler.prepare(source)
  arrays = source.arrays

  @jax.jit
  def train(state, key):
    def body(state, key):
      state, metrics = learner.update(state, learner.sampler(arrays, key))
      return state, metrics["cadm_loss"]
    return jax.lax.scan(body, state, jax.random.split(key, 150))

  state, loss = train(learner.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
  assert int(state.step) == 150
  assert float(loss[-10:].mean()) < float(loss[:10].mean()) - 1.0, (loss[:10], loss[-10:])
  k = config.context_length
  out = jax.jit(learner.model.step)(state.model, jnp.zeros((5, k, 2 * S + A)),
                                    jnp.zeros((5, k), bool), jnp.ones((5, S)), jnp.zeros((5, A)),
                                    jax.random.PRNGKey(2))
  assert out["next_state"].shape == (5, S) and out["reward"].shape == (5,)
  assert out["mean"].shape == (config.num_members, 5, S + 1)
  assert bool(jnp.isfinite(out["next_state"]).all())
