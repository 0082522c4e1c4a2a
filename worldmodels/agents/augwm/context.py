"""Test-time context for AugWM (algorithm 2): an online linear model of the state change.

During an evaluation episode the policy records ``(s_t, delta_t = s_{t+1} - s_t)`` and refits a
linear model ``f(s) = [s, 1] W`` by ridge least squares (closed form, running sums: O(S^2) per
step); with ``linear_features = "state_action"`` the model is ``f(s, a) = [s, a, 1] W`` (ours: an
option, the paper's model sees the state alone). From step ``k`` on, the context is
``z_t = clip(f(s_t) / delta_hat(s_t, a), lo, hi)`` with ``delta_hat`` the world model's
elite-mean prediction. Dimensions whose ``|delta_hat| < min_abs_delta`` keep ``z = 1`` (guarded
division). Nothing carries over between episodes, and no reward is used.

``k`` is ``adapt_after`` when set, else ``adapt_after_fraction`` (0.3: the paper's 300 of
1000 steps) of the evaluation episode's length, so the learned context acts for the same share
of an episode whatever its length.

The one-step-ahead R^2 (paper figure 4) scores a pair only once the fit that predicts it is
determined: fitted on at least as many pairs as it has features (``S + 1``, or ``S + A + 1``).
Earlier predictions come from an under-determined ridge fit and would only measure the ridge.

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
from worldmodels.agents.augwm import config as augwm_config


@dataclasses.dataclass(frozen=True)
class OnlineLinearModel:
  """Ridge regression ``delta ~ [s, 1] W`` (or ``[s, a, 1] W``), refit after every observation
  (host, float64).

  Immutable: :meth:`update` returns the refitted model, so it can sit in a policy's carry.
  With ``F`` features (``S + 1``, or ``S + A + 1`` when ``action_dim > 0``):

  Attributes:
    ridge: the ridge coefficient.
    action_dim: ``A``, 0 for the state-only model.
    xtx, xty: running sums ``X^T X`` ``[F, F]`` and ``X^T Y`` ``[F, S]``.
    weights: ``W`` ``[F, S]``.
    count: pairs seen.
    sse: ``[S]`` squared one-step-ahead errors of the scored pairs: each scored before the fit
      saw it, and only once the fit was determined (``count >= F``).
    targets: the deltas of the scored pairs, for the R^2's total sum of squares.
  """

  ridge: float
  action_dim: int
  xtx: np.ndarray
  xty: np.ndarray
  weights: np.ndarray
  count: int
  sse: np.ndarray
  targets: Tuple[np.ndarray, ...]

  @classmethod
  def empty(cls, state_dim: int, ridge: float = 1e-3,
            action_dim: int = 0) -> "OnlineLinearModel":
    """A model that has seen nothing (``action_dim > 0``: the ``[s, a, 1]`` features)."""
    d = state_dim + action_dim + 1
    return cls(ridge, action_dim, np.zeros((d, d)), np.zeros((d, state_dim)),
               np.zeros((d, state_dim)), 0, np.zeros(state_dim), ())

  @property
  def num_features(self) -> int:
    """``F``: ``S + 1``, or ``S + A + 1``."""
    return self.xtx.shape[0]

  def _features(self, state: np.ndarray, action: Optional[np.ndarray]) -> np.ndarray:
    parts = [state]
    if self.action_dim:
      if action is None:
        raise ValueError("this linear model takes [s, a, 1]: give the action too")
      parts.append(action)
    return np.concatenate(parts + [np.ones(state.shape[:-1] + (1,))], -1)

  def predict(self, state: np.ndarray, action: Optional[np.ndarray] = None) -> np.ndarray:
    """``f(s)`` or ``f(s, a)``: ``[S]`` (or ``[B, S]`` for ``[B, S]`` / ``[B, A]`` inputs)."""
    return self._features(state, action) @ self.weights

  def update(self, state: np.ndarray, delta: np.ndarray,
             action: Optional[np.ndarray] = None) -> "OnlineLinearModel":
    """Adds one ``(s[, a], delta)`` pair and refits, first scoring the pair with the fit before
    it, when that fit is determined (``count >= F``)."""
    x = self._features(np.asarray(state, np.float64),
                       None if action is None else np.asarray(action, np.float64))
    sse, targets = self.sse, self.targets
    if self.count >= self.num_features:
      sse = sse + (x @ self.weights - delta) ** 2
      targets = targets + (np.asarray(delta, np.float64),)
    xtx = self.xtx + np.outer(x, x)
    xty = self.xty + np.outer(x, delta)
    weights = np.linalg.solve(xtx + self.ridge * np.eye(x.size), xty)
    return dataclasses.replace(self, xtx=xtx, xty=xty, weights=weights, count=self.count + 1,
                               sse=sse, targets=targets)

  def r2(self) -> float:
    """Mean over dimensions of the one-step-ahead R^2 over the scored pairs of the episode so
    far (paper fig. 4); NaN before two pairs were scored. Dimensions whose scored deltas do
    not vary are left out."""
    if len(self.targets) < 2:
      return float("nan")
    targets = np.asarray(self.targets)
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
    previous_action: ``a_{t-1}`` (None at the first step).
    previous: ``(o_{t-1}, a_{t-1})`` for the oracle (mode "oracle"), else None.
    step: steps taken.
    contexts: the context used at every step.
  """

  linear: OnlineLinearModel
  oracle: Any
  z: np.ndarray
  previous_state: Optional[np.ndarray]
  previous_action: Optional[np.ndarray]
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

  def __init__(self, agent, mode: str | None = None, oracle=None,
               episode_length: Optional[int] = None):
    """Args:
      agent: a trained ``AugWMLearner``; its state is the ``state`` argument of ``policy``.
      mode: "default" (z = 1, or the agent's ``train_z``), "learned" (algorithm 2), "none"
        (agents trained without context) or "oracle" (z from ``oracle``); None: the agent
        config's ``test_context``.
      oracle: for mode "oracle": an object with ``init() -> carry``, ``observe(carry,
        observation, action, next_observation) -> carry`` and ``context(carry) -> z [S]`` that
        knows the true dynamics (e.g. ``benchmarks.shifts.oracle.OracleContext``, which
        compares with the simulator).
      episode_length: agent steps of an evaluation episode, which place ``k`` (mode
        "learned", unless the config sets ``adapt_after``).

    Raises:
      ValueError: an unknown mode, a mode that does not fit the agent or the oracle, or mode
        "learned" with neither ``adapt_after`` nor ``episode_length``.
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
    self.adapt_after = (augwm_config.adapt_after(c, episode_length) if self.mode == "learned"
                        else None)
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
    c = self.agent.config
    action_dim = self.spec.action_dim if c.linear_features == "state_action" else 0
    return ContextCarry(OnlineLinearModel.empty(self.state_dim, c.linear_ridge, action_dim),
                        self.oracle.init() if self.oracle is not None else None,
                        np.asarray(self.agent.default_context(jnp.ones(self.state_dim)),
                                   np.float32), None, None, None, 0, ())

  def _policy_input(self, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    return s if self.mode == "none" else np.asarray(aug.with_context(s, z))

  def policy(self, state, carry: ContextCarry, observation: Dict[str, np.ndarray],
             key: jax.Array, eval_mode: bool) -> Tuple[np.ndarray, ContextCarry]:
    c = self.agent.config
    s = np.asarray(observation[self.key_name], np.float32)
    linear, oracle_carry, z = carry.linear, carry.oracle, carry.z
    if carry.previous_state is not None:
      linear = linear.update(carry.previous_state, s - carry.previous_state,
                             carry.previous_action if linear.action_dim else None)
    if self.oracle is not None and carry.previous is not None:
      oracle_carry = self.oracle.observe(oracle_carry, *carry.previous, observation)
      z = np.asarray(self.oracle.context(oracle_carry), np.float32)
    if self.mode == "learned" and carry.step >= self.adapt_after and linear.count > 0:
      provisional = np.asarray(self._act(state.sac, self._policy_input(s, z), key,
                                         eval_mode=eval_mode))
      delta_hat = np.asarray(self._model_delta(self.agent.model, jnp.asarray(s),
                                               jnp.asarray(provisional)))
      prediction = linear.predict(s, provisional if linear.action_dim else None)
      z = learned_context(prediction, delta_hat, c.context_clip[0], c.context_clip[1],
                          c.min_abs_delta).astype(np.float32)
    action = np.asarray(self._act(state.sac, self._policy_input(s, z), key,
                                  eval_mode=eval_mode))
    previous = (observation, action) if self.oracle is not None else None
    return action, ContextCarry(linear, oracle_carry, z, s, action, previous, carry.step + 1,
                                carry.contexts + (z.copy(),))

  @staticmethod
  def episode_r2(carry: ContextCarry) -> Optional[float]:
    """The online linear model's one-step-ahead R^2 over a finished episode (None when the
    episode was too short to score a determined fit)."""
    r2 = carry.linear.r2()
    return None if np.isnan(r2) else r2
