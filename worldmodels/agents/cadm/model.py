"""CaDM as a world model (:mod:`worldmodels.models.base`) and an artifact kind (``"cadm"``).

:class:`CaDM` is the static definition (state and action sizes, the config); its parameters are
a :class:`CaDMModel` (network parameters and the state standardisation). It is trained by
:class:`~worldmodels.agents.cadm.learner.CaDMLearner`, saved once by
``experiments.train_model`` and loaded read-only by the scenario adaptation learner
(:mod:`worldmodels.agents.adaptation`), which rolls it out branched from real target states,
each rollout conditioned on the real transitions that led to its start (held fixed over the
rollout's ``H`` steps, as CaDM's planner holds its context over its horizon).

Shapes: ``B`` rows, ``K`` context transitions, ``S`` / ``A`` state / action sizes, ``E`` members.
Contexts are in raw units, as :meth:`CaDM.context_tokens` builds them from real transitions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.agents.cadm import losses
from worldmodels.agents.cadm.networks import CaDMNetworks, context_features
from worldmodels.models.base import config_from_metadata
from worldmodels.models.ensemble import PENALTIES
from worldmodels.models.rollouts import Rollout, rollout


@flax.struct.dataclass
class CaDMModel:
  """Parameters and the state standardisation ``mean`` / ``std`` ``[S]``."""

  params: dict
  mean: jax.Array
  std: jax.Array


@dataclasses.dataclass(frozen=True)
class CaDM:
  """CaDM's definition and pure functions over a :class:`CaDMModel`."""

  state_dim: int
  action_dim: int
  config: ml_collections.ConfigDict

  kind = "cadm"

  @property
  def networks(self) -> CaDMNetworks:
    return CaDMNetworks(self.config, self.state_dim)

  @property
  def context_length(self) -> int:
    return int(self.config.context_length)

  @property
  def token_dim(self) -> int:
    """Width of one context transition: ``(s, a, s' - s)``."""
    return 2 * self.state_dim + self.action_dim

  def metadata(self) -> Dict[str, Any]:
    """The static definition, as stored in an artifact's ``model.json``."""
    return {"state_dim": self.state_dim, "action_dim": self.action_dim,
            "config": self.config.to_dict()}

  @classmethod
  def from_metadata(cls, meta: Dict[str, Any]) -> "CaDM":
    return cls(int(meta["state_dim"]), int(meta["action_dim"]),
               config_from_metadata(meta["config"]))

  def init(self, key: jax.Array, mean: Optional[jax.Array] = None,
           std: Optional[jax.Array] = None) -> CaDMModel:
    """Fresh parameters, with the state standardisation ``mean`` / ``std`` (default 0 / 1)."""
    k, s, a = self.context_length, self.state_dim, self.action_dim
    params = self.networks.init(key, jnp.zeros((1, k, self.token_dim)), jnp.ones((1, k), bool),
                                jnp.zeros((1, s)), jnp.zeros((1, a)), jnp.zeros((1, s)))
    mean = jnp.zeros((s,)) if mean is None else jnp.asarray(mean, jnp.float32)
    std = jnp.ones((s,)) if std is None else jnp.asarray(std, jnp.float32)
    return CaDMModel(params, mean, std)

  def loss(self, model: CaDMModel, batch: losses.CaDMBatch,
           key: jax.Array | None = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """:func:`losses.cadm_loss` of standardised rows (:func:`losses.split_window`)."""
    del key
    return losses.cadm_loss(self.networks, model.params, batch, self.config)

  # -- prediction ---------------------------------------------------------------------------

  def context_tokens(self, state: jax.Array, action: jax.Array, reward: jax.Array,
                     next_state: jax.Array) -> jax.Array:
    """Context features ``[..., 2S + A]`` of raw transitions (CaDM ignores the reward)."""
    del reward
    return context_features(state, action, next_state)

  def step(self, model: CaDMModel, context: jax.Array, mask: jax.Array, state: jax.Array,
           action: jax.Array, key: jax.Array) -> Dict[str, jax.Array]:
    """One sampled step per row from a random member, in raw units.

    Args:
      model: the parameters.
      context: ``[B, K, 2S + A]`` raw context features (:meth:`context_tokens`).
      mask: ``[B, K]``, True where a context slot holds a transition.
      state: ``[B, S]``; action: ``[B, A]``.
      key: the member choice and the Gaussian noise.

    Returns:
      ``next_state [B, S]``, ``reward [B]``, ``terminal [B]`` (always False: CaDM predicts no
      termination) and the members' ``mean`` / ``logvar`` ``[E, B, S + 1]`` (standardised
      units) for uncertainty penalties.
    """
    s, a = self.state_dim, self.action_dim
    chex.assert_shape(context, (state.shape[0], self.context_length, self.token_dim))
    chex.assert_shape(action, (state.shape[0], a))
    std = model.std
    # Context features (s, a, s' - s) as the training windows see them: states standardised,
    # differences scaled by the same std, actions as they are.
    scale = jnp.concatenate([std, jnp.ones(a), std])
    shift = jnp.concatenate([model.mean, jnp.zeros(a), jnp.zeros(s)])
    normalised = (context - shift) / scale
    state_n = (state - model.mean) / std
    networks = self.networks
    code = networks.apply(model.params, normalised, mask, method=CaDMNetworks.encode)
    mean, logvar = networks.apply(model.params, state_n, action, code,
                                  method=CaDMNetworks.predict_forward)
    member_key, noise_key = jax.random.split(key)
    rows = jnp.arange(state.shape[0])
    member = jax.random.randint(member_key, (state.shape[0],), 0, self.config.num_members)
    mu, lv = mean[member, rows], logvar[member, rows]
    sample = mu + jnp.exp(0.5 * lv) * jax.random.normal(noise_key, mu.shape)
    return {"next_state": state + sample[:, :s] * std, "reward": sample[:, s],
            "terminal": jnp.zeros((state.shape[0],), bool), "mean": mean, "logvar": logvar}

  def penalty(self, name: str) -> Callable[[Dict[str, jax.Array]], jax.Array]:
    """The ensemble uncertainty ``name`` (``worldmodels.models.ensemble.PENALTIES``) of a
    :meth:`step` output: ``[B]``."""
    if name not in PENALTIES:
      raise ValueError(f"unknown penalty {name!r}; choose one of {sorted(PENALTIES)}")
    return lambda out: PENALTIES[name](out["mean"], out["logvar"])

  def imagine(self, model: CaDMModel, policy, start: jax.Array, horizon: int, key: jax.Array, *,
              context: jax.Array, mask: jax.Array, penalty: Optional[str] = None,
              penalty_coef: float = 0.0, termination_fn=None) -> Rollout:
    """Branched rollouts of ``policy`` from ``start [N, S]``, every step conditioned on the
    row's ``context [N, K, 2S + A]`` / ``mask [N, K]`` (:func:`rollouts.rollout`)."""
    step = lambda s, a, k: self.step(model, context, mask, s, a, k)
    return rollout(step, policy, start, horizon, key,
                   self.penalty(penalty) if penalty else None, penalty_coef, termination_fn)
