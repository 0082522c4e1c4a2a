"""A minimal plain-JAX RSSM training step (no flax, no library code): the reference that
``benchmarks.perf rssm`` times beside ours, with the same sizes and the same work per step.

Vector observations only: an MLP encoder and decoder, a layer-norm GRU, categorical latents
with straight-through samples, K prior heads (each trained towards the posterior with a
balanced KL), reward and continuation heads, Adam with gradient clipping.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _dense_init(key, n_in, n_out):
  return {"w": jax.random.normal(key, (n_in, n_out)) / jnp.sqrt(n_in), "b": jnp.zeros(n_out)}


def _mlp_init(key, sizes):
  keys = jax.random.split(key, len(sizes) - 1)
  return [_dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp(layers, x):
  for layer in layers[:-1]:
    x = jax.nn.elu(x @ layer["w"] + layer["b"])
  return x @ layers[-1]["w"] + layers[-1]["b"]


def init(key, obs_dim, action_dim, deter, hidden, stoch, classes, heads, layers):
  k = jax.random.split(key, 9)
  z = stoch * classes
  return {
      "encoder": _mlp_init(k[0], [obs_dim] + list(layers)),
      "decoder": _mlp_init(k[1], [deter + z] + list(layers) + [obs_dim]),
      "img_in": _dense_init(k[2], z + action_dim, hidden),
      "gru": _dense_init(k[3], hidden + deter, 3 * deter),
      "gru_scale": jnp.ones(3 * deter),
      "prior": jax.vmap(lambda kk: _mlp_init(kk, [deter, hidden, z]))(jax.random.split(k[4],
                                                                                       heads)),
      "post": _mlp_init(k[5], [deter + layers[-1], hidden, z]),
      "reward": _mlp_init(k[6], [deter + z] + list(layers) + [1]),
      "cont": _mlp_init(k[7], [deter + z] + list(layers) + [1]),
  }


def loss(params, obs, action, reward, key, stoch, classes):
  """``obs [B, T, D]``, ``action [B, T, A]``, ``reward [B, T]``."""
  b, t, _ = obs.shape
  embed = jax.nn.elu(_mlp(params["encoder"], obs))
  deter_size = params["gru"]["w"].shape[1] // 3
  prev = jnp.concatenate([jnp.zeros_like(action[:, :1]), action[:, :-1]], 1)

  def step(carry, inputs):
    h, z = carry
    e, a, k = inputs
    x = jax.nn.elu(jnp.concatenate([z, a], -1) @ params["img_in"]["w"] + params["img_in"]["b"])
    parts = jnp.concatenate([x, h], -1) @ params["gru"]["w"]
    parts = (parts - parts.mean(-1, keepdims=True)) / jnp.sqrt(parts.var(-1, keepdims=True)
                                                               + 1e-6) * params["gru_scale"]
    r, c, u = jnp.split(parts, 3, -1)
    c = jnp.tanh(jax.nn.sigmoid(r) * c)
    u = jax.nn.sigmoid(u - 1)
    h = u * c + (1 - u) * h
    prior = jax.vmap(_mlp, (0, None))(params["prior"], h).reshape(-1, b, stoch, classes)
    post = _mlp(params["post"], jnp.concatenate([h, e], -1)).reshape(b, stoch, classes)
    probs = jax.nn.softmax(post, -1)
    sample = jax.nn.one_hot(jax.random.categorical(k, post, -1), classes)
    sample = sample + probs - jax.lax.stop_gradient(probs)
    return (h, sample.reshape(b, -1)), (h, sample.reshape(b, -1), prior, post)

  keys = jax.random.split(key, t)
  sw = lambda x: jnp.swapaxes(x, 0, 1)
  init_carry = (jnp.zeros((b, deter_size)), jnp.zeros((b, stoch * classes)))
  _, (h, z, prior, post) = jax.lax.scan(step, init_carry, (sw(embed), sw(prev), keys))
  feat = jnp.concatenate([h, z], -1)  # [T, B, F]
  recon = ((_mlp(params["decoder"], feat) - sw(obs)) ** 2).sum(-1).mean()
  reward_loss = ((_mlp(params["reward"], feat[1:])[..., 0] - sw(reward)[:-1]) ** 2).mean()
  cont_loss = optax.sigmoid_binary_cross_entropy(_mlp(params["cont"], feat[1:])[..., 0],
                                                 jnp.ones((t - 1, b))).mean()

  def kl(p, q):
    lp, lq = jax.nn.log_softmax(p, -1), jax.nn.log_softmax(q, -1)
    return (jnp.exp(lp) * (lp - lq)).sum((-2, -1))

  sg = jax.lax.stop_gradient
  prior = jnp.moveaxis(prior, 1, 0)  # [K, T, B, V, C]
  kl_term = 0.8 * kl(sg(post)[None], prior) + 0.2 * kl(post[None], sg(prior))
  return recon + reward_loss + cont_loss + jnp.maximum(kl_term.mean(), 1.0)


def optimizer(learning_rate=3e-4):
  return optax.chain(optax.clip_by_global_norm(100.0), optax.adam(learning_rate, eps=1e-5))
