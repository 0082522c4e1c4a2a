"""Training CaDM as a phase of the common loop, and its one-step prediction for rollouts.

Each update is one Adam step on :func:`losses.cadm_loss` of ``batch_size`` windows of
``context_length + 2`` steps (:class:`~worldmodels.data.samplers.SequenceSampler`). The state
standardisation comes from the data spec's statistics and is kept in the trained model.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.agents.cadm import losses
from worldmodels.agents.cadm.networks import CaDMNetworks
from worldmodels.data.samplers import SequenceBatch, SequenceSampler
from worldmodels.data.spec import DataSpec
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class CaDMModel:
  """Parameters and the state standardisation ``mean`` / ``std`` ``[S]``."""

  params: dict
  mean: jax.Array
  std: jax.Array


@flax.struct.dataclass
class CaDMTrainState:
  model: CaDMModel
  opt_state: optax.OptState
  key: jax.Array
  step: jax.Array


class CaDMLearner:
  """Trains :class:`CaDMNetworks` on one dataset's ``"state"`` entry."""

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               dataset: Optional[str] = None):
    if "state" not in spec.observation_shapes:
      raise ValueError("CaDM models the 'state' observation entry; the data has "
                       f"{sorted(spec.observation_shapes)}.")
    self.config, self.spec = config, spec
    self.state_dim, self.action_dim = spec.observation_shapes["state"][0], spec.action_dim
    self.networks = CaDMNetworks(config, self.state_dim)
    stats = spec.observation_mean, spec.observation_std
    self.mean = (np.asarray(stats[0]["state"], np.float32) if stats[0] is not None
                 else np.zeros(self.state_dim, np.float32))
    self.std = (np.maximum(np.asarray(stats[1]["state"], np.float32), 1e-6)
                if stats[1] is not None else np.ones(self.state_dim, np.float32))
    self._optimizer = optax.adam(config.learning_rate)
    self.sampler = SequenceSampler(config.batch_size, config.context_length + 2, dataset=dataset)

  def init(self, key: jax.Array) -> CaDMTrainState:
    init_key, key = jax.random.split(key)
    k, s, a = self.config.context_length, self.state_dim, self.action_dim
    params = self.networks.init(init_key, jnp.zeros((1, k, 2 * s + a)), jnp.ones((1, k), bool),
                                jnp.zeros((1, s)), jnp.zeros((1, a)), jnp.zeros((1, s)))
    model = CaDMModel(params, jnp.asarray(self.mean), jnp.asarray(self.std))
    return CaDMTrainState(model, self._optimizer.init(params), key, jnp.zeros((), jnp.int32))

  def update(self, state: CaDMTrainState, batch: SequenceBatch,
             frozen: None = None) -> Tuple[CaDMTrainState, Dict[str, jax.Array]]:
    """One Adam step on the forward and backward losses of ``batch`` ``[B, K + 2]``."""
    del frozen
    rows = losses.split_window(batch, self.config.context_length, state.model.mean,
                               state.model.std)
    (loss, metrics), grads = jax.value_and_grad(
        lambda p: losses.cadm_loss(self.networks, p, rows, self.config), has_aux=True)(
            state.model.params)
    updates, opt_state = self._optimizer.update(grads, state.opt_state, state.model.params)
    params = optax.apply_updates(state.model.params, updates)
    metrics = {f"cadm_{k}": v for k, v in {**metrics, "loss": loss}.items()}
    return CaDMTrainState(state.model.replace(params=params), opt_state, state.key,
                          state.step + 1), metrics

  def phases(self) -> Sequence[Phase]:
    return [Phase("cadm", "offline", int(self.config.num_steps), self.update, self.sampler)]

  # -- prediction -----------------------------------------------------------------------------

  def step(self, model: CaDMModel, context: jax.Array, mask: jax.Array, state: jax.Array,
           action: jax.Array, key: jax.Array) -> Dict[str, jax.Array]:
    """One sampled step per row from a random member, in raw units.

    Args:
      context: ``[B, K, 2S + A]`` features of raw past transitions
        (:func:`~worldmodels.agents.cadm.networks.context_features`).
      mask: ``[B, K]``; state ``[B, S]``; action ``[B, A]``.

    Returns:
      ``next_state [B, S]``, ``reward [B]`` and the members' ``mean`` / ``logvar``
      ``[E, B, S + 1]`` (standardised units) for uncertainty penalties.
    """
    s, a = self.state_dim, self.action_dim
    std = model.std
    # Context features (s, a, s' - s) as the training windows see them: states standardised,
    # differences scaled by the same std, actions as they are.
    scale = jnp.concatenate([std, jnp.ones(a), std])
    shift = jnp.concatenate([model.mean, jnp.zeros(a), jnp.zeros(s)])
    normalised = (context - shift) / scale
    state_n = (state - model.mean) / std
    code = self.networks.apply(model.params, normalised, mask, method=CaDMNetworks.encode)
    mean, logvar = self.networks.apply(model.params, state_n, action, code,
                                       method=CaDMNetworks.predict_forward)
    member_key, noise_key = jax.random.split(key)
    rows = jnp.arange(state.shape[0])
    member = jax.random.randint(member_key, (state.shape[0],), 0, self.config.num_members)
    mu, lv = mean[member, rows], logvar[member, rows]
    sample = mu + jnp.exp(0.5 * lv) * jax.random.normal(noise_key, mu.shape)
    return {"next_state": state + sample[:, :s] * std, "reward": sample[:, s], "mean": mean,
            "logvar": logvar}
