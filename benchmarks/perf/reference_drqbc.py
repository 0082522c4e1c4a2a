"""A deliberately minimal DrQ+BC update in plain JAX, the reference our learner is timed against.

Hand-written parameters (dicts of arrays), DrQ-v2's encoder (4 convolutions of 32 channels, the
first of stride 2), trunks (linear, LayerNorm, tanh), an actor and twin critics of 1024, integer
random shifts, the n-step clipped double-Q critic step on encoder and critics, then the TD3+BC
actor step on detached features, and the slow critic: the smallest faithful update, with no
flax modules and no library structure, so ``ours / reference`` in one process measures what our
structure costs. Convolutions use the same im2col primitive as ours
(``worldmodels.models.conv.conv2d``), so the ratio compares structure, not convolution code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from worldmodels.models.conv import conv2d


def _dense(key, fan_in, fan_out):
  return {"w": jax.random.normal(key, (fan_in, fan_out)) * jnp.sqrt(1.0 / fan_in),
          "b": jnp.zeros((fan_out,))}


def _mlp_params(key, sizes):
  keys = jax.random.split(key, len(sizes) - 1)
  return [_dense(k, i, o) for k, i, o in zip(keys, sizes[:-1], sizes[1:])]


def _mlp(layers, x):
  for layer in layers[:-1]:
    x = jax.nn.relu(x @ layer["w"] + layer["b"])
  return x @ layers[-1]["w"] + layers[-1]["b"]


def _trunk_params(key, fan_in, feature_dim):
  return {**_dense(key, fan_in, feature_dim), "scale": jnp.ones((feature_dim,)),
          "offset": jnp.zeros((feature_dim,))}


def _trunk(p, x):
  h = x @ p["w"] + p["b"]
  mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
  return jnp.tanh((h - mean) * jax.lax.rsqrt(var + 1e-6) * p["scale"] + p["offset"])


def init(key, image_size, channels, action_dim, depth=32, layers=4, feature_dim=50,
         hidden=1024, lr=1e-4):
  keys = jax.random.split(key, layers + 5)
  convs, size, c_in = [], image_size, channels
  for i in range(layers):
    convs.append({"w": jax.random.normal(keys[i], (3, 3, c_in, depth)) * jnp.sqrt(
        1.0 / (9 * c_in)), "b": jnp.zeros((depth,))})
    size = (size - 3) // (2 if i == 0 else 1) + 1
    c_in = depth
  repr_dim = size * size * depth
  critic = {"trunk": _trunk_params(keys[layers], repr_dim, feature_dim),
            "q1": _mlp_params(keys[layers + 1], [feature_dim + action_dim, hidden, hidden, 1]),
            "q2": _mlp_params(keys[layers + 2], [feature_dim + action_dim, hidden, hidden, 1])}
  actor = {"trunk": _trunk_params(keys[layers + 3], repr_dim, feature_dim),
           "pi": _mlp_params(keys[layers + 4], [feature_dim, hidden, hidden, action_dim])}
  opt = optax.adam(lr)
  critic_side = {"encoder": convs, "critic": critic}
  return {"encoder": convs, "critic": critic, "target": critic, "actor": actor,
          "critic_opt": opt.init(critic_side), "actor_opt": opt.init(actor)}


def _encode(convs, frames):
  x = frames.astype(jnp.float32) / 255.0 - 0.5
  for i, layer in enumerate(convs):
    x = jax.nn.relu(conv2d(x, layer["w"], 2 if i == 0 else 1, 0, "im2col") + layer["b"])
  return x.reshape(x.shape[0], -1)


def _shift(key, frames, pad=4):
  n, h, w, c = frames.shape
  padded = jnp.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)
  return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(
      padded, offsets)


def _critic(p, h, action):
  z = jnp.concatenate([_trunk(p["trunk"], h), action], -1)
  return _mlp(p["q1"], z)[:, 0], _mlp(p["q2"], z)[:, 0]


def _actor(p, h):
  return jnp.tanh(_mlp(p["pi"], _trunk(p["trunk"], h)))


def update(state, frames, action, reward, discount, next_frames, key, stddev=0.5, clip=0.3,
           alpha=2.5, tau=0.01, lr=1e-4):
  """One DrQ+BC update on an n-step batch (``discount`` already holds ``gamma ** n``)."""
  opt = optax.adam(lr)
  k1, k2, k3, k4 = jax.random.split(key, 4)
  obs, next_obs = _shift(k1, frames), _shift(k2, next_frames)

  def critic_loss(side):
    h = _encode(side["encoder"], obs)
    next_h = jax.lax.stop_gradient(_encode(side["encoder"], next_obs))
    mean = _actor(state["actor"], next_h)
    noise = jnp.clip(stddev * jax.random.normal(k3, mean.shape), -clip, clip)
    next_action = jnp.clip(mean + noise, -1.0, 1.0)
    t1, t2 = _critic(state["target"], next_h, next_action)
    target = jax.lax.stop_gradient(reward + discount * jnp.minimum(t1, t2))
    q1, q2 = _critic(side["critic"], h, action)
    return jnp.mean((q1 - target) ** 2 + (q2 - target) ** 2), h

  side = {"encoder": state["encoder"], "critic": state["critic"]}
  grads, h = jax.grad(critic_loss, has_aux=True)(side)
  updates, critic_opt = opt.update(grads, state["critic_opt"])
  side = optax.apply_updates(side, updates)
  h = jax.lax.stop_gradient(h)

  def actor_loss(actor):
    mean = _actor(actor, h)
    noise = jnp.clip(stddev * jax.random.normal(k4, mean.shape), -clip, clip)
    pi = jnp.clip(mean + noise, -1.0, 1.0)
    q = jnp.minimum(*_critic(side["critic"], h, pi))
    lmbda = jax.lax.stop_gradient(alpha / jnp.mean(jnp.abs(q)))
    return -lmbda * jnp.mean(q) + jnp.mean((pi - action) ** 2)

  actor_grads = jax.grad(actor_loss)(state["actor"])
  actor_updates, actor_opt = opt.update(actor_grads, state["actor_opt"])
  target = jax.tree_util.tree_map(lambda t, o: (1 - tau) * t + tau * o, state["target"],
                                  side["critic"])
  return {"encoder": side["encoder"], "critic": side["critic"], "target": target,
          "actor": optax.apply_updates(state["actor"], actor_updates),
          "critic_opt": critic_opt, "actor_opt": actor_opt}
