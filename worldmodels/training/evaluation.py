"""Evaluation of an agent's policy in a real environment."""

from __future__ import annotations

from typing import Callable, Dict

import dm_env
import jax
import jax.numpy as jnp
import numpy as np

EnvFactory = Callable[[int], dm_env.Environment]


def make_policy(agent, eval_mode: bool = True):
  """A jitted ``(state, observation, key, i) -> action`` for single (unbatched) observations,
  acting with ``fold_in(key, i)`` (folding on the device saves a host dispatch per step)."""

  @jax.jit
  def policy(state, observation, key, i=0):
    batched = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], observation)
    return agent.act(state, batched, jax.random.fold_in(key, i), eval_mode)[0]

  return policy


def run_episode(policy, state, env: dm_env.Environment, key: jax.Array) -> float:
  """Return of one episode of ``policy`` (deterministic unless the policy samples)."""
  timestep = env.reset()
  total = 0.0
  while not timestep.last():
    key, act_key = jax.random.split(key)
    action = np.asarray(policy(state, timestep.observation, act_key))
    timestep = env.step(action)
    total += float(timestep.reward or 0.0)
  return total


def evaluate(agent, state, env_factory: EnvFactory, num_episodes: int, seed: int,
             policy=None) -> Dict[str, float]:
  """Mean and std of the return over ``num_episodes`` episodes with env seeds
  ``seed, seed + 1, ...`` (evaluation never touches the training rng)."""
  policy = policy or make_policy(agent)
  returns = []
  for episode in range(num_episodes):
    env = env_factory(seed + episode)
    returns.append(run_episode(policy, state, env, jax.random.PRNGKey(seed + episode)))
    env.close()
  returns = np.asarray(returns)
  return {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
          "return_min": float(returns.min()), "return_max": float(returns.max()),
          "episodes": float(num_episodes)}
