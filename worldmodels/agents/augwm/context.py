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
  With ``F`` features (``S + 1``, or ``S + A + 1`` when ``action_dim > 0``); a batch of ``B``
  models fitted side by side (one per environment, :meth:`empty` with ``batch=(B,)``) has a
  leading ``B`` axis on every array and shares ``count``:

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
  def empty(cls, state_dim: int, ridge: float = 1e-3, action_dim: int = 0,
            batch: Tuple[int, ...] = ()) -> "OnlineLinearModel":
    """A model that has seen nothing (``action_dim > 0``: the ``[s, a, 1]`` features;
    ``batch``: that many models side by side)."""
    d = state_dim + action_dim + 1
    zeros = lambda *shape: np.zeros(tuple(batch) + shape)
    return cls(ridge, action_dim, zeros(d, d), zeros(d, state_dim), zeros(d, state_dim), 0,
               zeros(state_dim), ())

  @property
  def num_features(self) -> int:
    """``F``: ``S + 1``, or ``S + A + 1``."""
    return self.xtx.shape[-1]

  def _features(self, state: np.ndarray, action: Optional[np.ndarray]) -> np.ndarray:
    parts = [state]
    if self.action_dim:
      if action is None:
        raise ValueError("this linear model takes [s, a, 1]: give the action too")
      parts.append(action)
    return np.concatenate(parts + [np.ones(state.shape[:-1] + (1,))], -1)

  def predict(self, state: np.ndarray, action: Optional[np.ndarray] = None) -> np.ndarray:
    """``f(s)`` or ``f(s, a)``: ``[S]`` (or ``[B, S]`` for ``[B, S]`` / ``[B, A]`` inputs, with
    one model or a batch of ``B``)."""
    x = self._features(state, action)
    return np.matmul(x[..., None, :], self.weights)[..., 0, :]

  def update(self, state: np.ndarray, delta: np.ndarray,
             action: Optional[np.ndarray] = None) -> "OnlineLinearModel":
    """Adds one ``(s[, a], delta)`` pair and refits, first scoring the pair with the fit before
    it, when that fit is determined (``count >= F``)."""
    x = self._features(np.asarray(state, np.float64),
                       None if action is None else np.asarray(action, np.float64))
    delta = np.asarray(delta, np.float64)
    sse, targets = self.sse, self.targets
    if self.count >= self.num_features:
      sse = sse + (np.matmul(x[..., None, :], self.weights)[..., 0, :] - delta) ** 2
      targets = targets + (delta,)
    xtx = self.xtx + x[..., :, None] * x[..., None, :]
    xty = self.xty + x[..., :, None] * delta[..., None, :]
    weights = np.linalg.solve(xtx + self.ridge * np.eye(x.shape[-1]), xty)
    return dataclasses.replace(self, xtx=xtx, xty=xty, weights=weights, count=self.count + 1,
                               sse=sse, targets=targets)

  def r2(self) -> float | np.ndarray:
    """Mean over dimensions of the one-step-ahead R^2 over the scored pairs of the episode so
    far (paper fig. 4); NaN before two pairs were scored. Dimensions whose scored deltas do
    not vary are left out. A batch of models gives ``[B]``."""
    if len(self.targets) < 2:
      return np.full(self.sse.shape[:-1], np.nan) if self.sse.ndim > 1 else float("nan")
    targets = np.asarray(self.targets)  # [N, ..., S]
    sst = ((targets - targets.mean(0)) ** 2).sum(0)
    valid = sst > 1e-12
    per_dim = np.where(valid, 1.0 - self.sse / np.where(valid, sst, 1.0), 0.0)
    counted = valid.sum(-1)
    r2 = np.where(counted > 0, per_dim.sum(-1) / np.maximum(counted, 1), np.nan)
    return float(r2) if r2.ndim == 0 else r2

  def item(self, i: int) -> "OnlineLinearModel":
    """Model ``i`` of a batch."""
    return dataclasses.replace(self, xtx=self.xtx[i], xty=self.xty[i], weights=self.weights[i],
                               sse=self.sse[i], targets=tuple(t[i] for t in self.targets))


def learned_context(linear_prediction: np.ndarray, model_delta: np.ndarray, low: float,
                    high: float, min_abs_delta: float) -> np.ndarray:
  """``clip(f(s) / delta_hat, low, high)``, with ``z = 1`` where ``|delta_hat|`` is tiny."""
  safe = np.abs(model_delta) >= min_abs_delta
  ratio = np.where(safe, linear_prediction / np.where(safe, model_delta, 1.0), 1.0)
  return np.clip(ratio, low, high)


@dataclasses.dataclass(frozen=True)
class ContextCarry:
  """What :class:`AugWMPolicy` carries from step to step of an episode (of ``B`` episodes side
  by side from :meth:`AugWMPolicy.policy_init_batch`: a leading ``B`` axis on every array).

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

  ``policy`` takes one observation ``[S]`` and key, or ``B`` of them (``[B, S]``, keys
  ``[B, 2]``) with a carry of :meth:`policy_init_batch` (``can_batch``), so
  ``worldmodels.training.acting.run_episodes`` evaluates many episodes with one actor call per
  step. The oracle's carry is then one per episode (its simulator twin replays one transition
  at a time).
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

    def one_act(sac_state, obs, key, eval_mode):  # obs [S], key [2] -> [A]
      return agent.sac.act(sac_state, {key_name: obs[None]}, key, eval_mode)[0]

    @functools.partial(jax.jit, static_argnames="eval_mode")
    def act(sac_state, obs, keys, eval_mode):  # [B, S], [B, 2] -> [B, A]
      return jax.vmap(lambda o, k: one_act(sac_state, o, k, eval_mode))(obs, keys)

    @jax.jit
    def model_delta(model, s, a):  # [B, S], [B, A] -> [B, S]
      mean, _ = ensemble.apply_all(model, s, a)
      return mean[model.elites, :, :-1].mean(axis=0)  # elite-mean predicted delta

    self._act, self._model_delta = act, model_delta

  can_batch = True  # policy() takes [B, S] observations with a policy_init_batch carry

  def _init(self, batch: Tuple[int, ...]) -> ContextCarry:
    c = self.agent.config
    action_dim = self.spec.action_dim if c.linear_features == "state_action" else 0
    z = np.asarray(self.agent.default_context(jnp.ones(self.state_dim)), np.float32)
    oracle = None
    if self.oracle is not None:
      oracle = tuple(self.oracle.init() for _ in range(batch[0])) if batch else self.oracle.init()
    return ContextCarry(
        OnlineLinearModel.empty(self.state_dim, c.linear_ridge, action_dim, batch), oracle,
        np.array(np.broadcast_to(z, tuple(batch) + z.shape)), None, None, None, 0, ())

  def policy_init(self, key: jax.Array) -> ContextCarry:
    del key
    return self._init(())

  def policy_init_batch(self, keys: jax.Array) -> ContextCarry:
    """The carry of ``B = len(keys)`` episodes side by side."""
    return self._init((len(keys),))

  @staticmethod
  def carry_item(carry: ContextCarry, i: int) -> ContextCarry:
    """Episode ``i``'s carry of a batched one, as the one-episode policy would have it."""
    pick = lambda x: None if x is None else x[i]
    return ContextCarry(carry.linear.item(i), pick(carry.oracle), carry.z[i],
                        pick(carry.previous_state), pick(carry.previous_action), None,
                        carry.step, tuple(z[i] for z in carry.contexts))

  def _policy_input(self, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    return s if self.mode == "none" else np.asarray(aug.with_context(s, z))

  def policy(self, state, carry: ContextCarry, observation: Dict[str, np.ndarray],
             key: jax.Array, eval_mode: bool) -> Tuple[np.ndarray, ContextCarry]:
    c = self.agent.config
    s = np.asarray(observation[self.key_name], np.float32)
    single = s.ndim == 1
    if single:  # the jitted actor and model delta take batches
      act = lambda s_, z_: np.asarray(self._act(state.sac, self._policy_input(s_, z_)[None],
                                                jnp.asarray(key)[None], eval_mode=eval_mode))[0]
      model_delta = lambda s_, a_: np.asarray(self._model_delta(
          self.agent.model, jnp.asarray(s_)[None], jnp.asarray(a_)[None]))[0]
    else:
      act = lambda s_, z_: np.asarray(self._act(state.sac, self._policy_input(s_, z_), key,
                                                eval_mode=eval_mode))
      model_delta = lambda s_, a_: np.asarray(self._model_delta(
          self.agent.model, jnp.asarray(s_), jnp.asarray(a_)))
    linear, oracle_carry, z = carry.linear, carry.oracle, carry.z
    if carry.previous_state is not None:
      linear = linear.update(carry.previous_state, s - carry.previous_state,
                             carry.previous_action if linear.action_dim else None)
    if self.oracle is not None and carry.previous is not None:
      if single:
        oracle_carry = self.oracle.observe(oracle_carry, *carry.previous, observation)
        z = np.asarray(self.oracle.context(oracle_carry), np.float32)
      else:  # one oracle carry per episode
        (previous_observation, previous_action), pick = carry.previous, (
            lambda entries, i: {name: value[i] for name, value in entries.items()})
        oracle_carry = tuple(
            self.oracle.observe(one, pick(previous_observation, i), previous_action[i],
                                pick(observation, i)) for i, one in enumerate(oracle_carry))
        z = np.stack([np.asarray(self.oracle.context(one), np.float32) for one in oracle_carry])
    if self.mode == "learned" and carry.step >= self.adapt_after and linear.count > 0:
      provisional = act(s, z)
      delta_hat = model_delta(s, provisional)
      prediction = linear.predict(s, provisional if linear.action_dim else None)
      z = learned_context(prediction, delta_hat, c.context_clip[0], c.context_clip[1],
                          c.min_abs_delta).astype(np.float32)
    action = act(s, z)
    previous = (observation, action) if self.oracle is not None else None
    return action, ContextCarry(linear, oracle_carry, z, s, action, previous, carry.step + 1,
                                carry.contexts + (z.copy(),))

  @staticmethod
  def episode_r2(carry: ContextCarry) -> Optional[float]:
    """The online linear model's one-step-ahead R^2 over a finished episode (None when the
    episode was too short to score a determined fit)."""
    r2 = carry.linear.r2()
    return None if np.isnan(r2) else float(r2)
