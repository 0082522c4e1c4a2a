"""Test-time context for AugWM (algorithm 2): an online linear model of the state change.

During an evaluation episode the policy records ``(s_t, delta_t = s_{t+1} - s_t)`` and refits a
linear model ``f(s) = [s, 1] W`` by ridge least squares (closed form, running sums: O(S^2) per
step). From step ``k`` on, the context is ``z_t = clip(f(s_t) / delta_hat(s_t, a), lo, hi)``
with ``delta_hat`` the world model's elite-mean prediction. Dimensions whose
``|delta_hat| < min_abs_delta`` keep ``z = 1`` (guarded division). Nothing carries over between
episodes, and no reward is used.

``a`` in ``delta_hat(s_t, a)`` is the action the policy would take with the previous context
**(ours: the paper's algorithm needs an action before it has the context for the step)**.

The policy is a stateful policy of :mod:`worldmodels.training.acting`: the linear model, the
context and the last step live in its carry, which the episode runner resets at every episode.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.agents.augwm import augmentations as aug


@dataclasses.dataclass(frozen=True)
class OnlineLinearModel:
  """Ridge regression ``delta ~ [s, 1] W``, refit after every observation (host, float64).

  Immutable: :meth:`update` returns the refitted model, so it can sit in a policy's carry.

  Attributes:
    ridge: the ridge coefficient.
    xtx, xty: running sums ``X^T X`` ``[S + 1, S + 1]`` and ``X^T Y`` ``[S + 1, S]``.
    weights: ``W`` ``[S + 1, S]``.
    count: pairs seen.
    sse: ``[S]`` squared one-step-ahead errors (each pair scored before the fit saw it).
    targets: the deltas seen, for the R^2's total sum of squares.
  """

  ridge: float
  xtx: np.ndarray
  xty: np.ndarray
  weights: np.ndarray
  count: int
  sse: np.ndarray
  targets: Tuple[np.ndarray, ...]

  @classmethod
  def empty(cls, state_dim: int, ridge: float = 1e-3) -> "OnlineLinearModel":
    d = state_dim + 1
    return cls(ridge, np.zeros((d, d)), np.zeros((d, state_dim)), np.zeros((d, state_dim)), 0,
               np.zeros(state_dim), ())

  def predict(self, state: np.ndarray) -> np.ndarray:
    """``f(s)``: ``[S]`` (or ``[B, S]`` for ``[B, S]`` inputs)."""
    return np.concatenate([state, np.ones(state.shape[:-1] + (1,))], -1) @ self.weights

  def update(self, state: np.ndarray, delta: np.ndarray) -> "OnlineLinearModel":
    """Adds one ``(s, delta)`` pair and refits (scoring the fit before it saw the pair)."""
    sse = self.sse + (self.predict(state) - delta) ** 2 if self.count > 0 else self.sse
    x = np.append(state, 1.0)
    xtx = self.xtx + np.outer(x, x)
    xty = self.xty + np.outer(x, delta)
    weights = np.linalg.solve(xtx + self.ridge * np.eye(x.size), xty)
    return dataclasses.replace(self, xtx=xtx, xty=xty, weights=weights, count=self.count + 1,
                               sse=sse, targets=self.targets + (np.asarray(delta, np.float64),))

  def r2(self) -> float:
    """Mean over dimensions of the one-step-ahead R^2 over the episode so far (paper fig. 4)."""
    if self.count < 3:
      return float("nan")
    targets = np.asarray(self.targets[1:])
    sst = ((targets - targets.mean(0)) ** 2).sum(0)
    valid = sst > 1e-12
    return float(np.mean(1.0 - self.sse[valid] / sst[valid])) if valid.any() else float("nan")


def learned_context(linear_prediction: np.ndarray, model_delta: np.ndarray, low: float,
                    high: float, min_abs_delta: float) -> np.ndarray:
  """``clip(f(s) / delta_hat, low, high)``, with ``z = 1`` where ``|delta_hat|`` is tiny."""
  safe = np.abs(model_delta) >= min_abs_delta
  ratio = np.where(safe, linear_prediction / np.where(safe, model_delta, 1.0), 1.0)
  return np.clip(ratio, low, high)


@dataclasses.dataclass(frozen=True)
class ContextCarry:
  """What :class:`AugWMPolicy` carries from step to step of an episode.

  Attributes:
    linear: the online linear model fitted on the episode so far.
    oracle: the oracle's own carry (mode "oracle"), else None.
    z: ``[S]`` float32 the context in use.
    previous_state: ``s_{t-1}`` (None at the first step).
    previous: ``(o_{t-1}, a_{t-1})`` for the oracle (mode "oracle"), else None.
    step: steps taken.
    contexts: the context used at every step.
  """

  linear: OnlineLinearModel
  oracle: Any
  z: np.ndarray
  previous_state: Optional[np.ndarray]
  previous: Optional[tuple]
  step: int
  contexts: Tuple[np.ndarray, ...]


class AugWMPolicy:
  """An AugWM agent acting zero-shot with the default, learned, oracle or no context.

  A stateful policy (``policy_init`` / ``policy`` of :mod:`worldmodels.training.acting`) whose
  carry (:class:`ContextCarry`) lives on the host: the ridge fit runs in float64 numpy, so
  ``runs_on_host`` is True and the runner does not jit it (the actor and the model's delta
  are jitted inside). The episode's R^2 is ``episode_r2(final carry)``.
  """

  runs_on_host = True

  def __init__(self, agent, mode: str | None = None, oracle=None):
    """Args:
      agent: a trained ``AugWMLearner``; its state is the ``state`` argument of ``policy``.
      mode: "default" (z = 1), "learned" (algorithm 2), "none" (agents trained without
        context) or "oracle" (z from ``oracle``); None: the agent config's ``test_context``.
      oracle: for mode "oracle": an object with ``init() -> carry``, ``observe(carry,
        observation, action, next_observation) -> carry`` and ``context(carry) -> z [S]`` that
        knows the true dynamics (e.g. ``benchmarks.shifts.oracle.OracleContext``, which
        compares with the simulator).
    """
    c = agent.config
    self.agent = agent
    self.spec = agent.spec
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
    ensemble, key_name = agent.ensemble, self.key_name

    @functools.partial(jax.jit, static_argnames="eval_mode")
    def act(sac_state, obs, key, eval_mode):
      return agent.sac.act(sac_state, {key_name: obs[None]}, key, eval_mode)[0]

    @jax.jit
    def model_delta(model, s, a):
      mean, _ = ensemble.apply_all(model, s[None], a[None])
      return mean[model.elites, 0, :-1].mean(axis=0)  # elite-mean predicted delta, [S]

    self._act, self._model_delta = act, model_delta

  def policy_init(self, key: jax.Array) -> ContextCarry:
    del key
    return ContextCarry(OnlineLinearModel.empty(self.state_dim, self.agent.config.linear_ridge),
                        self.oracle.init() if self.oracle is not None else None,
                        np.ones(self.state_dim, np.float32), None, None, 0, ())

  def _policy_input(self, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    return s if self.mode == "none" else np.asarray(aug.with_context(s, z))

  def policy(self, state, carry: ContextCarry, observation: Dict[str, np.ndarray],
             key: jax.Array, eval_mode: bool) -> Tuple[np.ndarray, ContextCarry]:
    c = self.agent.config
    s = np.asarray(observation[self.key_name], np.float32)
    linear, oracle_carry, z = carry.linear, carry.oracle, carry.z
    if carry.previous_state is not None:
      linear = linear.update(carry.previous_state, s - carry.previous_state)
    if self.oracle is not None and carry.previous is not None:
      oracle_carry = self.oracle.observe(oracle_carry, *carry.previous, observation)
      z = np.asarray(self.oracle.context(oracle_carry), np.float32)
    if self.mode == "learned" and carry.step >= c.adapt_after and linear.count > 0:
      provisional = np.asarray(self._act(state.sac, self._policy_input(s, z), key,
                                         eval_mode=eval_mode))
      delta_hat = np.asarray(self._model_delta(self.agent.model, jnp.asarray(s),
                                               jnp.asarray(provisional)))
      z = learned_context(linear.predict(s), delta_hat, c.context_clip[0], c.context_clip[1],
                          c.min_abs_delta).astype(np.float32)
    action = np.asarray(self._act(state.sac, self._policy_input(s, z), key,
                                  eval_mode=eval_mode))
    previous = (observation, action) if self.oracle is not None else None
    return action, ContextCarry(linear, oracle_carry, z, s, previous, carry.step + 1,
                                carry.contexts + (z.copy(),))

  @staticmethod
  def episode_r2(carry: ContextCarry) -> Optional[float]:
    """The online linear model's one-step-ahead R^2 over a finished episode (None when the
    episode was too short to score)."""
    return carry.linear.r2() if carry.step > 2 else None
