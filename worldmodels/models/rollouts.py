"""Branched model rollouts (MBPO / MOPO): ``H`` steps from ``N`` start states in one scan,
generic over the world model's one-step function.

Each step: the policy picks ``a ~ pi(s)``, the model samples ``(s', r)``, the reward is
penalised by ``penalty_coef * u(s, a)`` (an uncertainty penalty of the model's step output), and
a termination function (when the task has one, else the model's own ``terminal`` output) ends
rows; ended rows keep stepping but are masked out.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import flax.struct
import jax
import jax.numpy as jnp

PolicyFn = Callable[[jax.Array, jax.Array], jax.Array]  # (state [N, S], key) -> action [N, A]
TerminationFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (s, a, s') -> [N] bool
ModelStepFn = Callable[[jax.Array, jax.Array, jax.Array], Dict[str, jax.Array]]
"""``(state [N, S], action [N, A], key) -> {"next_state" [N, S], "reward" [N], "terminal" [N],
...}`` (e.g. ``lambda s, a, k: ensemble.step(model, s, a, k)``)."""
PenaltyFn = Callable[[Dict[str, jax.Array]], jax.Array]  # model step output -> u [N]


@flax.struct.dataclass
class Rollout:
  """``H x N`` model transitions (flatten the first two axes for a buffer).

  Attributes:
    state, next_state: ``[H, N, S]``; action: ``[H, N, A]``.
    reward: ``[H, N]`` penalised reward; raw_reward: ``[H, N]``; penalty: ``[H, N]``.
    discount: ``[H, N]``, 0 where the episode terminated.
    valid: ``[H, N]`` bool, False after a row terminated.
  """

  state: jax.Array
  action: jax.Array
  reward: jax.Array
  raw_reward: jax.Array
  penalty: jax.Array
  discount: jax.Array
  next_state: jax.Array
  valid: jax.Array


def rollout(model_step: ModelStepFn, policy: PolicyFn, start: jax.Array, horizon: int,
            key: jax.Array, penalty_fn: Optional[PenaltyFn] = None, penalty_coef: float = 0.0,
            termination_fn: Optional[TerminationFn] = None) -> Rollout:
  """Rolls ``policy`` out through ``model_step`` for ``horizon`` steps from ``start [N, S]``.

  Args:
    model_step: the model's one-step sampler.
    policy: ``(state, key) -> action``.
    start: ``[N, S]`` start states.
    horizon: H.
    key: rollout key (split per step, then into the policy's and the model's keys).
    penalty_fn: uncertainty of a step output (None: no penalty).
    penalty_coef: lambda.
    termination_fn: known termination (wins over the model's ``terminal``).
  """
  n = start.shape[0]

  def body(carry, key):
    state, alive = carry
    act_key, model_key = jax.random.split(key)
    action = policy(state, act_key)
    out = model_step(state, action, model_key)
    u = penalty_fn(out) if penalty_fn is not None else jnp.zeros((n,), jnp.float32)
    done = (termination_fn(state, action, out["next_state"]) if termination_fn is not None
            else out["terminal"])
    step = {"state": state, "action": action, "reward": out["reward"] - penalty_coef * u,
            "raw_reward": out["reward"], "penalty": u,
            "discount": jnp.where(done, 0.0, 1.0), "next_state": out["next_state"],
            "valid": alive}
    return (out["next_state"], alive & ~done), step

  _, steps = jax.lax.scan(body, (start, jnp.ones((n,), bool)), jax.random.split(key, horizon))
  return Rollout(**steps)
