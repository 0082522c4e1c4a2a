"""Branched model rollouts (MBPO / MOPO): ``H`` steps from ``N`` start states in one scan.

Each step: the policy picks ``a ~ pi(s)``, one elite per row samples ``(s', r)``, the reward is
penalised by ``lambda * u(s, a)`` (an uncertainty penalty of the ensemble), and a termination
function (when the task has one, else the ensemble's learned termination head when it has one)
ends rows; ended rows keep stepping but are masked out.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import flax.struct
import jax
import jax.numpy as jnp

from worldmodels.models.ensemble import PENALTIES, Ensemble, EnsembleModel

PolicyFn = Callable[[jax.Array, jax.Array], jax.Array]  # (state [N, S], key) -> action [N, A]
TerminationFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (s, a, s') -> [N] bool


@flax.struct.dataclass
class Rollout:
  """``H x N`` model transitions (flatten the first two axes for a buffer).

  Attributes:
    state, next_state: ``[H, N, S]``; action: ``[H, N, A]``.
    reward: ``[H, N]`` penalised reward; raw_reward: ``[H, N]``; penalty: ``[H, N]``.
    discount: ``[H, N]``, 0 where the termination function fired.
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


def rollout(ensemble: Ensemble, model: EnsembleModel, policy: PolicyFn, start: jax.Array,
            horizon: int, key: jax.Array, penalty: str = "max_aleatoric",
            penalty_coef: float = 0.0, termination_fn: Optional[TerminationFn] = None
            ) -> Rollout:
  """Rolls the policy out in the model for ``horizon`` steps from ``start`` ``[N, S]``."""
  if penalty not in PENALTIES:
    raise ValueError(f"unknown penalty {penalty!r}; choose one of {sorted(PENALTIES)}")
  penalty_fn = PENALTIES[penalty]
  n = start.shape[0]

  def body(carry, key):
    state, alive = carry
    act_key, model_key = jax.random.split(key)
    action = policy(state, act_key)
    out = ensemble.step(model, state, action, model_key)
    u = penalty_fn(out["mean"], out["logvar"])
    # A known termination function wins; otherwise the ensemble's learned head (if any; without
    # one, `terminal` is always False).
    done = (termination_fn(state, action, out["next_state"]) if termination_fn is not None
            else out["terminal"])
    step = {"state": state, "action": action, "reward": out["reward"] - penalty_coef * u,
            "raw_reward": out["reward"], "penalty": u,
            "discount": jnp.where(done, 0.0, 1.0), "next_state": out["next_state"],
            "valid": alive}
    return (out["next_state"], alive & ~done), step

  _, steps = jax.lax.scan(body, (start, jnp.ones((n,), bool)), jax.random.split(key, horizon))
  return Rollout(**steps)
