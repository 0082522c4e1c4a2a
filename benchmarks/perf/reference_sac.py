"""A deliberately minimal SAC update in plain JAX, the reference our learner is timed against.

Hand-written MLP parameters (lists of ``(W, b)``), two separate critics, the tanh-Gaussian
log-probability written out, optax Adam: the smallest faithful SAC update, with no library
abstractions, so ``ours / reference`` in one process measures what our structure costs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _init_mlp(key, sizes):
  params = []
  for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    params.append((jax.random.normal(sub, (fan_in, fan_out)) * jnp.sqrt(1.0 / fan_in),
                   jnp.zeros((fan_out,))))
  return params


def _mlp(params, x):
  for w, b in params[:-1]:
    x = jax.nn.relu(x @ w + b)
  w, b = params[-1]
  return x @ w + b


def init(key, obs_dim, action_dim, hidden=256):
  k1, k2, k3 = jax.random.split(key, 3)
  actor = _init_mlp(k1, [obs_dim, hidden, hidden, 2 * action_dim])
  critics = (_init_mlp(k2, [obs_dim + action_dim, hidden, hidden, 1]),
             _init_mlp(k3, [obs_dim + action_dim, hidden, hidden, 1]))
  opt = optax.adam(3e-4)
  return {"actor": actor, "critics": critics, "target": critics, "log_alpha": jnp.zeros(()),
          "actor_opt": opt.init(actor), "critic_opt": opt.init(critics),
          "alpha_opt": opt.init(jnp.zeros(()))}


def _sample(actor, obs, key):
  out = _mlp(actor, obs)
  mean, log_std = jnp.split(out, 2, axis=-1)
  log_std = jnp.clip(log_std, -5.0, 2.0)
  eps = jax.random.normal(key, mean.shape)
  pre = mean + jnp.exp(log_std) * eps
  action = jnp.tanh(pre)
  log_prob = (-0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
  log_prob -= (2 * (jnp.log(2.0) - pre - jax.nn.softplus(-2 * pre))).sum(-1)
  return action, log_prob


def _q(critics, obs, action):
  x = jnp.concatenate([obs, action], -1)
  return _mlp(critics[0], x)[:, 0], _mlp(critics[1], x)[:, 0]


def update(state, batch, key, action_dim, gamma=0.99, tau=0.005):
  opt = optax.adam(3e-4)
  obs, action, reward, discount, next_obs = batch
  k1, k2 = jax.random.split(key)
  alpha = jnp.exp(state["log_alpha"])

  def critic_loss(critics):
    next_action, next_log_prob = _sample(state["actor"], next_obs, k1)
    t1, t2 = _q(state["target"], next_obs, next_action)
    target = reward + gamma * discount * (jnp.minimum(t1, t2) - alpha * next_log_prob)
    q1, q2 = _q(critics, obs, action)
    target = jax.lax.stop_gradient(target)
    return 0.5 * (((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean())

  grads = jax.grad(critic_loss)(state["critics"])
  updates, critic_opt = opt.update(grads, state["critic_opt"])
  critics = optax.apply_updates(state["critics"], updates)

  def actor_loss(actor):
    new_action, log_prob = _sample(actor, obs, k2)
    q1, q2 = _q(critics, obs, new_action)
    return (alpha * log_prob - jnp.minimum(q1, q2)).mean(), log_prob

  grads, log_prob = jax.grad(actor_loss, has_aux=True)(state["actor"])
  updates, actor_opt = opt.update(grads, state["actor_opt"])
  actor = optax.apply_updates(state["actor"], updates)

  entropy = jax.lax.stop_gradient(-log_prob.mean())
  alpha_grad = entropy - (-float(action_dim))
  updates, alpha_opt = opt.update(alpha_grad, state["alpha_opt"])
  log_alpha = optax.apply_updates(state["log_alpha"], updates)
  target = jax.tree_util.tree_map(lambda t, o: (1 - tau) * t + tau * o, state["target"], critics)
  return {"actor": actor, "critics": critics, "target": target, "log_alpha": log_alpha,
          "actor_opt": actor_opt, "critic_opt": critic_opt, "alpha_opt": alpha_opt}
