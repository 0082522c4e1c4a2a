"""MOPO learner: SAC on a mix of real and penalised model transitions, rollouts inside jit.

Every ``rollout_every`` updates (the phase's periodic work, :meth:`MOPOLearner.rollout`),
``rollout_batch_size`` start states drawn from the dataset are rolled out for ``horizon`` steps
in the ensemble with the current policy; the transitions go to an on-device ring buffer holding
``model_retain_epochs`` rollout batches. Each SAC batch takes
``real_ratio`` of its rows from the dataset and the rest from the model buffer.

The ensemble is a read-only artifact: its parameters and the dataset's states (the rollout
starts) reach ``update`` as its ``frozen`` argument (:class:`MOPOInputs`), so checkpoints hold
the SAC state and the model buffer only.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.agents.sac.learner import SACLearner, SACState
from worldmodels.data.samplers import Transition, TransitionSampler
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.models.artifacts import ModelArtifactError, load_model
from worldmodels.models.ensemble import Ensemble, EnsembleModel
from worldmodels.models.termination import termination_for
from worldmodels.rl.model_buffer import (ModelBuffer, add_rollout, empty_model_buffer,
                                         mix_sizes, mix_with_model_rows)
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Periodic, Phase


@flax.struct.dataclass
class MOPOState:
  sac: SACState
  buffer: ModelBuffer
  key: jax.Array
  step: jax.Array


@flax.struct.dataclass
class MOPOInputs:
  """MOPO's read-only inputs (the ``frozen`` argument of ``update``).

  Attributes:
    model: the ensemble's parameters (the artifact's, never trained here).
    states: ``[N, S]`` the dataset's observations (its device array, not a copy).
    start_ids: ``[M]`` ids of the steps that start a transition: the rollout starts.
  """

  model: EnsembleModel
  states: jax.Array
  start_ids: jax.Array


class MOPOLearner(MemorylessPolicy):
  """MOPO (Yu et al. 2020) with our SAC learner and a probabilistic-ensemble artifact."""

  phase_name = "mopo"

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               world_model: Optional[Tuple[Ensemble, EnsembleModel]] = None):
    """Args:
      config: see ``worldmodels.agents.mopo.config``.
      spec: data spec (``observation_shapes[observation_key]`` is ``(S,)``).
      world_model: ``(Ensemble, EnsembleModel)``; default: loaded read-only from
        ``config.model_path``.
    """
    self.config, self.spec = config, spec
    if world_model is None:
      if not config.model_path:
        raise ConfigError("MOPO needs a world model: set --config.agent.model_path to an "
                          "ensemble artifact (python -m experiments.train_model).")
      ensemble, model, _ = load_model(config.model_path, kind=Ensemble.kind)
      world_model = (ensemble, model)
    self.ensemble, self.model = world_model
    state_dim = spec.observation_shapes[config.observation_key][0]
    if (self.ensemble.state_dim, self.ensemble.action_dim) != (state_dim, spec.action_dim):
      where = config.model_path or "the given world model"
      raise ModelArtifactError(
          f"{where}: the world model predicts {self.ensemble.state_dim}-d states and takes "
          f"{self.ensemble.action_dim}-d actions, the data has {state_dim}-d states and "
          f"{spec.action_dim}-d actions (train a model on this dataset: python -m "
          "experiments.train_model).")
    sizes = mix_sizes(config)
    sac_config = config.sac.copy_and_resolve_references()
    sac_config.observation_key = config.observation_key
    self.sac = SACLearner(sac_config, self.policy_spec(spec))
    self.num_real, self.num_model, self.capacity = (sizes.num_real, sizes.num_model,
                                                     sizes.capacity)
    self.termination_fn = termination_for(config.termination)

  def policy_spec(self, spec: DataSpec) -> DataSpec:
    """The spec of the SAC learner's inputs (AugWM widens the observation by the context)."""
    return spec

  def init(self, key: jax.Array) -> MOPOState:
    key, sac_key = jax.random.split(key)
    buffer = empty_model_buffer(self.capacity, self.ensemble.state_dim, self.ensemble.action_dim)
    return MOPOState(self.sac.init(sac_key), buffer, key, jnp.zeros((), jnp.int32))

  # -- model rollouts ---------------------------------------------------------------------

  def _rollout_into_buffer(self, state: MOPOState, inputs: MOPOInputs,
                           key: jax.Array) -> Tuple[ModelBuffer, Dict[str, jax.Array]]:
    c = self.config
    start_key, rollout_key = jax.random.split(key)
    pick = jax.random.randint(start_key, (c.rollout_batch_size,), 0, inputs.start_ids.shape[0])
    starts = inputs.states[inputs.start_ids[pick]]
    policy = lambda s, k: self.sac.act(state.sac, self.policy_observation(s), k, False)
    out = self.ensemble.imagine(inputs.model, policy, starts, c.horizon, rollout_key,
                                penalty=c.penalty, penalty_coef=c.penalty_coef,
                                termination_fn=self.termination_fn)
    return add_rollout(state.buffer, out)

  # -- update -----------------------------------------------------------------------------

  def policy_observation(self, state: jax.Array) -> Dict[str, jax.Array]:
    """The SAC observation for model states ``[N, S]`` (AugWM appends a context here)."""
    return {self.config.observation_key: state}

  def transform_batch(self, batch: Transition, key: jax.Array) -> Transition:
    """Hook applied to every mixed real + model batch before the SAC update (AugWM augments
    dynamics and appends the context here); MOPO leaves it unchanged."""
    del key
    return batch

  def rollout(self, state: MOPOState, frozen: MOPOInputs,
              data=None) -> Tuple[MOPOState, Dict[str, jax.Array]]:
    """Refills the model buffer with rollouts of the current policy from dataset states (the
    phase's periodic work, every ``rollout_every`` updates from the first); its key is the
    one the next update sets aside for rollouts, so the update's own keys are unchanged
    (``data``, the source's arrays, is unused: the starts are in ``frozen``)."""
    del data
    rollout_key = jax.random.split(state.key, 4)[1]
    buffer, metrics = self._rollout_into_buffer(state, frozen, rollout_key)
    return state.replace(buffer=buffer), metrics

  def update(self, state: MOPOState, batch: Transition,
             frozen: MOPOInputs) -> Tuple[MOPOState, Dict[str, jax.Array]]:
    """One SAC update on ``batch`` (``num_real`` dataset transitions) plus ``num_model`` rows
    of the model buffer (refilled by :meth:`rollout` on rollout steps)."""
    c = self.config
    key, _, model_key, transform_key = jax.random.split(state.key, 4)  # [1]: rollout's
    buffer = state.buffer

    # SAC on real + model rows.
    mixed = mix_with_model_rows(batch, buffer, self.num_model, model_key, c.observation_key)
    sac_state, sac_metrics = self.sac.update(state.sac, self.transform_batch(mixed, transform_key))
    metrics = {**sac_metrics, "model_buffer_size": buffer.size.astype(jnp.float32)}
    return MOPOState(sac_state, buffer, key, state.step + 1), metrics

  def act(self, state: MOPOState, observation, key, eval_mode: bool):
    return self.sac.act(state.sac, observation, key, eval_mode)

  def inputs(self, source) -> MOPOInputs:
    """The read-only inputs: the ensemble and the data source's states (no copies)."""
    data = source.arrays[source.resolve(None)]
    return MOPOInputs(self.model, data.steps.observation[self.config.observation_key],
                      data.index.transition_ids)

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase(self.phase_name, "offline", c.num_steps, self.update,
                  TransitionSampler(self.num_real), frozen=self.inputs,
                  periodic=Periodic(c.rollout_every, self.rollout))]
