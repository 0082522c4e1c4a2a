"""Test-time context for AugWM (algorithm 2): an online linear model of the state change.

During an evaluation episode the policy records ``(s_t, delta_t = s_{t+1} - s_t)`` and refits a
linear model ``f(s) = [s, 1] W`` by ridge least squares (closed form, running sums: O(S^2) per
step). From step ``k`` on, the context is ``z_t = clip(f(s_t) / delta_hat(s_t, a), lo, hi)``
with ``delta_hat`` the world model's elite-mean prediction. Dimensions whose
``|delta_hat| < min_abs_delta`` keep ``z = 1`` (guarded division). Nothing carries over between
episodes, and no reward is used.

``a`` in ``delta_hat(s_t, a)`` is the action the policy would take with the previous context
**(ours: the paper's algorithm needs an action before it has the context for the step)**.
"""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.agents.augwm import augmentations as aug


class OnlineLinearModel:
  """Ridge regression ``delta ~ [s, 1] W`` refit after every observation."""

  def __init__(self, state_dim: int, ridge: float = 1e-3):
    self.state_dim, self.ridge = state_dim, ridge
    self.reset()

  def reset(self) -> None:
    d = self.state_dim + 1
    self._xtx = np.zeros((d, d))
    self._xty = np.zeros((d, self.state_dim))
    self.weights = np.zeros((d, self.state_dim))
    self.count = 0
    self._sse = np.zeros(self.state_dim)  # one-step-ahead errors, for R^2
    self._targets = []

  def predict(self, state: np.ndarray) -> np.ndarray:
    """``f(s)``: ``[S]`` (or ``[B, S]`` for ``[B, S]`` inputs)."""
    return np.concatenate([state, np.ones(state.shape[:-1] + (1,))], -1) @ self.weights

  def update(self, state: np.ndarray, delta: np.ndarray) -> None:
    """Adds one ``(s, delta)`` pair and refits (scoring the fit before it saw the pair)."""
    if self.count > 0:
      self._sse += (self.predict(state) - delta) ** 2
    self._targets.append(np.asarray(delta, np.float64))
    x = np.append(state, 1.0)
    self._xtx += np.outer(x, x)
    self._xty += np.outer(x, delta)
    self.count += 1
    self.weights = np.linalg.solve(self._xtx + self.ridge * np.eye(x.size), self._xty)

  def r2(self) -> float:
    """Mean over dimensions of the one-step-ahead R^2 over the episode so far (paper fig. 4)."""
    if self.count < 3:
      return float("nan")
    targets = np.asarray(self._targets[1:])
    sst = ((targets - targets.mean(0)) ** 2).sum(0)
    valid = sst > 1e-12
    return float(np.mean(1.0 - self._sse[valid] / sst[valid])) if valid.any() else float("nan")


def learned_context(linear_prediction: np.ndarray, model_delta: np.ndarray, low: float,
                    high: float, min_abs_delta: float) -> np.ndarray:
  """``clip(f(s) / delta_hat, low, high)``, with ``z = 1`` where ``|delta_hat|`` is tiny."""
  safe = np.abs(model_delta) >= min_abs_delta
  ratio = np.where(safe, linear_prediction / np.where(safe, model_delta, 1.0), 1.0)
  return np.clip(ratio, low, high)


class AugWMPolicy:
  """An AugWM agent acting zero-shot with the default or the learned context.

  Implements the evaluation protocol's policy interface: ``reset(seed)`` then
  ``act(observation) -> action`` once per step (see ``benchmarks.protocols.zero_shot``).
  After an episode, ``r2()`` gives the linear model's one-step-ahead R^2 and ``contexts`` the
  context used at every step; ``episode_r2`` keeps the R^2 of every finished episode (recorded
  at the next ``reset``; see :meth:`all_r2`).
  """

  def __init__(self, agent, state, mode: str | None = None, oracle=None):
    """Args:
      agent: a trained ``AugWMLearner``.
      state: its final state.
      mode: "default" (z = 1), "learned" (algorithm 2), "none" (agents trained without
        context) or "oracle" (z from ``oracle``); None: the agent config's ``test_context``.
      oracle: for mode "oracle": an object with ``reset()``, ``observe(observation, action,
        next_observation)`` and ``context() -> z [S]`` that knows the true dynamics (e.g.
        ``benchmarks.shifts.oracle.OracleContext``, which compares with the simulator).
    """
    c = agent.config
    self.agent, self.state = agent, state
    self.mode = mode or c.test_context
    if self.mode not in ("default", "learned", "none", "oracle"):
      raise ValueError(f"unknown test context {self.mode!r}; choose default, learned, none or "
                       "oracle")
    if self.mode != "none" and not c.use_context:
      raise ValueError("this agent was trained without context; use mode='none'")
    if (self.mode == "oracle") != (oracle is not None):
      raise ValueError("mode='oracle' needs an oracle, and only that mode takes one")
    self.oracle = oracle
    self.key_name = c.observation_key
    self.state_dim = agent.state_dim
    self.linear = OnlineLinearModel(self.state_dim, c.linear_ridge)
    ensemble = agent.ensemble

    @jax.jit
    def act(agent_state, obs):
      return agent.sac.act(agent_state, {self.key_name: obs[None]}, jax.random.PRNGKey(0),
                           True)[0]

    @jax.jit
    def model_delta(model, s, a):
      mean, _ = ensemble.apply_all(model, s[None], a[None])
      return mean[model.elites, 0, :-1].mean(axis=0)  # elite-mean predicted delta, [S]

    self._act, self._model_delta = act, model_delta
    self.episode_r2 = []
    self.reset(0)

  def reset(self, seed: int) -> None:
    del seed  # deterministic policy
    if getattr(self, "step", 0) > 2:
      self.episode_r2.append(self.linear.r2())
    self.linear.reset()
    if self.oracle is not None:
      self.oracle.reset()
    self._previous_state = None
    self._previous = None  # (observation, action) of the last step
    self._z = np.ones(self.state_dim, np.float32)
    self.step = 0
    self.contexts = []

  def _policy_input(self, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    return s if self.mode == "none" else np.asarray(aug.with_context(s, z))

  def act(self, observation: Dict[str, np.ndarray]) -> np.ndarray:
    c = self.agent.config
    s = np.asarray(observation[self.key_name], np.float32)
    if self._previous_state is not None:
      self.linear.update(self._previous_state, s - self._previous_state)
    if self.oracle is not None and self._previous is not None:
      self.oracle.observe(*self._previous, observation)
      self._z = np.asarray(self.oracle.context(), np.float32)
    if self.mode == "learned" and self.step >= c.adapt_after and self.linear.count > 0:
      provisional = np.asarray(self._act(self.state.sac, self._policy_input(s, self._z)))
      delta_hat = np.asarray(self._model_delta(self.state.model, jnp.asarray(s),
                                               jnp.asarray(provisional)))
      self._z = learned_context(self.linear.predict(s), delta_hat, c.context_clip[0],
                                c.context_clip[1], c.min_abs_delta).astype(np.float32)
    self.contexts.append(self._z.copy())
    action = np.asarray(self._act(self.state.sac, self._policy_input(s, self._z)))
    self._previous_state = s
    if self.oracle is not None:
      self._previous = (observation, action)
    self.step += 1
    return action

  def r2(self) -> float:
    return self.linear.r2()

  def all_r2(self) -> list:
    """R^2 of every episode run so far, the current one included."""
    return self.episode_r2 + ([self.r2()] if self.step > 2 else [])
