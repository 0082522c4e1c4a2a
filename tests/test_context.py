"""Context encoders (worldmodels.models.context): tokenizers per embodiment, masks and padding,
the FIFO buffer against recomputation, causality, and CaDM's MLP encoder."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodels.models.context import (ContextBuffer, ContextTransformer, MLPContextEncoder,
                                        TransitionTokenizer)

# The DMC sizes of MrCoM's three embodiments: (observation, action).
EMBODIMENTS = {"hopper": (15, 4), "walker": (24, 6), "cheetah": (17, 6)}
WIDTH, LENGTH = 8, 5


def _transitions(key, batch, steps, embodiment):
  obs_dim, action_dim = EMBODIMENTS[embodiment]
  k1, k2, k3 = jax.random.split(key, 3)
  return (jax.random.normal(k1, (batch, steps, obs_dim)),
          jax.random.uniform(k2, (batch, steps, action_dim), minval=-1, maxval=1),
          jax.random.normal(k3, (batch, steps)))


@pytest.fixture(scope="module")
def encoder():
  """The tokenizer, its parameters, and ``encode(embodiment, buffer, causal)`` (jitted; the
  causal and bidirectional transformers share one parameter tree)."""
  tokenizer = TransitionTokenizer(EMBODIMENTS, width=WIDTH)
  tok_params = jax.jit(lambda k: tokenizer.init(k, method=TransitionTokenizer.init_all))(
      jax.random.PRNGKey(0))
  models = {causal: ContextTransformer(LENGTH, width=WIDTH, layers=2, heads=3, causal=causal)
            for causal in (False, True)}
  params = jax.jit(models[False].init)(jax.random.PRNGKey(1), jnp.zeros((1, LENGTH, WIDTH)),
                                       jnp.ones((1, LENGTH), bool))

  def encode(embodiment, buffer, causal=False):
    tokens = tokenizer.apply(tok_params, embodiment, buffer,
                             method=TransitionTokenizer.tokenize_buffer)
    return models[causal].apply(params, tokens, buffer.mask)

  return tokenizer, tok_params, jax.jit(encode, static_argnums=(0, 2))


def test_tokenizers_per_embodiment_share_one_width(encoder):
  tokenizer, params, _ = encoder
  assert set(params["params"]) == {f"tokenizer_{name}" for name in EMBODIMENTS}
  for name, (obs_dim, action_dim) in EMBODIMENTS.items():
    first = params["params"][f"tokenizer_{name}"]["Dense_0"]["kernel"]
    assert first.shape == (obs_dim + action_dim + 1, WIDTH)  # concat(o, a, r)
    tokens = tokenizer.apply(params, name, *_transitions(jax.random.PRNGKey(2), 3, 4, name))
    chex.assert_shape(tokens, (3, 4, WIDTH))
  with pytest.raises(KeyError, match="unknown embodiment 'humanoid'"):
    tokenizer.apply(params, "humanoid", *_transitions(jax.random.PRNGKey(2), 1, 1, "walker"))
  with pytest.raises(AssertionError):  # walker-sized observations given as the hopper's
    tokenizer.apply(params, "hopper", *_transitions(jax.random.PRNGKey(2), 1, 1, "walker"))


def test_the_fifo_buffer_equals_recomputation_from_scratch(encoder):
  _, _, encode = encoder
  push = jax.jit(lambda buffer, o, a, r: buffer.push(o, a, r))
  for steps in (3, LENGTH, 8):  # shorter than, equal to and longer than the context
    obs, act, rew = _transitions(jax.random.PRNGKey(steps), 2, steps, "walker")
    buffer = ContextBuffer.empty(2, LENGTH, *EMBODIMENTS["walker"])
    for t in range(steps):
      buffer = push(buffer, obs[:, t], act[:, t], rew[:, t])
    scratch = ContextBuffer.from_sequence(obs, act, rew, LENGTH)
    chex.assert_trees_all_close(buffer, scratch)
    assert int(buffer.mask.sum()) == 2 * min(steps, LENGTH)
    np.testing.assert_allclose(buffer.observation[:, -1], obs[:, -1])  # newest in the last slot
    for causal in (False, True):
      chex.assert_trees_all_close(encode("walker", buffer, causal),
                                  encode("walker", scratch, causal), atol=1e-6)


def test_a_push_inside_a_jitted_scan_and_masked_rows():
  obs, act, rew = _transitions(jax.random.PRNGKey(3), 2, 6, "hopper")
  valid = jnp.array([True, False])  # the second row's episode has ended: left unchanged

  def body(buffer, t):
    return buffer.push(obs[:, t], act[:, t], rew[:, t], valid), None

  buffer, _ = jax.lax.scan(body, ContextBuffer.empty(2, LENGTH, *EMBODIMENTS["hopper"]),
                           jnp.arange(6))
  np.testing.assert_array_equal(buffer.mask, [[True] * LENGTH, [False] * LENGTH])
  np.testing.assert_allclose(buffer.reward[0], rew[0, 1:])


def test_a_context_shorter_than_l_is_masked(encoder):
  _, _, encode = encoder
  obs, act, rew = _transitions(jax.random.PRNGKey(4), 2, 3, "walker")
  short = ContextBuffer.from_sequence(obs, act, rew, LENGTH)
  np.testing.assert_array_equal(short.mask, [[False, False, True, True, True]] * 2)
  garbage = short.replace(observation=short.observation.at[:, :2].set(1e3),
                          action=short.action.at[:, :2].set(-7.0),
                          reward=short.reward.at[:, :2].set(50.0))
  for causal in (False, True):
    outputs, context = encode("walker", short, causal)
    chex.assert_shape(outputs, (2, LENGTH, WIDTH))
    chex.assert_shape(context, (2, WIDTH))
    np.testing.assert_array_equal(outputs[:, :2], 0.0)  # padded slots give nothing
    chex.assert_trees_all_close(encode("walker", garbage, causal), (outputs, context), atol=1e-6)
    # ... while a filled slot does change the context.
    changed = short.replace(reward=short.reward.at[:, 2].add(3.0))
    assert float(jnp.abs(encode("walker", changed, causal)[1] - context).max()) > 1e-3
  empty = ContextBuffer.empty(2, LENGTH, *EMBODIMENTS["walker"])
  np.testing.assert_array_equal(encode("walker", empty)[1], 0.0)


def test_causal_slots_see_only_older_slots(encoder):
  _, _, encode = encoder
  obs, act, rew = _transitions(jax.random.PRNGKey(5), 2, LENGTH, "walker")
  full = ContextBuffer.from_sequence(obs, act, rew, LENGTH)
  newer = full.replace(reward=full.reward.at[:, 3].add(5.0))
  before, after = encode("walker", full, True)[0], encode("walker", newer, True)[0]
  np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-6)
  assert float(jnp.abs(before[:, 3:] - after[:, 3:]).max()) > 1e-3
  bidirectional = encode("walker", full, False)[0], encode("walker", newer, False)[0]
  assert float(jnp.abs(bidirectional[0][:, :3] - bidirectional[1][:, :3]).max()) > 1e-3


def test_cadm_mlp_encoder_ignores_empty_slots():
  model = MLPContextEncoder(hidden_sizes=(16,), context_size=4)
  transitions = jax.random.normal(jax.random.PRNGKey(6), (3, 10, 7))
  mask = jnp.arange(10)[None] >= jnp.array([[0], [4], [10]])  # full, 6 filled, empty
  params = jax.jit(model.init)(jax.random.PRNGKey(7), transitions, mask)
  apply = jax.jit(model.apply)
  context = apply(params, transitions, mask)
  chex.assert_shape(context, (3, 4))
  noisy = jnp.where(mask[..., None], transitions, 99.0)
  np.testing.assert_allclose(apply(params, noisy, mask), context, atol=1e-6)
  np.testing.assert_allclose(context[2], apply(params, jnp.zeros_like(transitions), mask)[2])
  assert float(jnp.abs(apply(params, transitions + 1.0, mask)[0] - context[0]).max()) > 1e-3
