"""Scenario adaptation: MBPO-style SAC in a target scenario with a frozen contextual model.

One online phase of the common loop. The loop collects the target scenario's transitions into
its replay and runs one update per environment step; before every ``rollout_every``-th update
(the phase's periodic work, :meth:`AdaptationLearner.rollout`), ``rollout_batch_size`` states
are drawn from the replay, each with the ``K`` real transitions that led to it in its episode
(:func:`~worldmodels.training.replay.history_ids`; fewer at an episode's start, masked), and
rolled out for ``horizon`` steps in the model with the current policy, conditioned on that
context. The rollouts fill the model ring (:mod:`worldmodels.rl.model_buffer`, shared with
MOPO); each SAC update takes ``real_ratio`` of its batch from the replay and the rest from it.

The model adapts through its context only: it is a read-only artifact, passed to the updates as
their ``frozen`` argument and never written into checkpoints. Any model with this interface
serves (:class:`ContextualModel`): CaDM here, MrCoM and a DreamerV3-style baseline later.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.agents.sac.learner import SACLearner, SACState
from worldmodels.data.samplers import Transition
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.models.artifacts import ModelArtifactError, load_model
from worldmodels.models.termination import termination_for
from worldmodels.rl.model_buffer import (ModelBuffer, add_rollout, empty_model_buffer,
                                         mix_sizes, mix_with_model_rows)
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Periodic, Phase
from worldmodels.training.replay import Replay, ReplaySampler, history_ids, sample_replay_ids


class ContextualModel(Protocol):
  """What the adaptation needs of a world model that reads a context of past transitions.

  Shapes: ``N`` rows, ``K`` context transitions, ``D`` token width, ``S`` / ``A`` state / action
  sizes.
  """

  state_dim: int
  action_dim: int
  context_length: int  # K

  def context_tokens(self, state: jax.Array, action: jax.Array, reward: jax.Array,
                     next_state: jax.Array) -> jax.Array:
    """``[..., D]`` tokens of raw transitions."""

  def imagine(self, params: Any, policy, start: jax.Array, horizon: int, key: jax.Array, *,
              context: jax.Array, mask: jax.Array, penalty: Optional[str],
              penalty_coef: float, termination_fn) -> Any:
    """A :class:`~worldmodels.models.rollouts.Rollout` of ``H`` steps from ``start [N, S]``,
    conditioned on ``context [N, K, D]`` / ``mask [N, K]``."""


@flax.struct.dataclass
class AdaptationState:
  sac: SACState
  buffer: ModelBuffer
  key: jax.Array
  step: jax.Array


class AdaptationLearner(MemorylessPolicy):
  """SAC trained in the target scenario on real and contextual-model transitions."""

  phase_name = "adaptation"

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               world_model: Optional[Tuple[ContextualModel, Any]] = None):
    """Args:
      config: see ``worldmodels.agents.adaptation.config``.
      spec: the target scenario's spec (``observation_shapes[observation_key]`` is ``(S,)``).
      world_model: ``(definition, params)``; default: the artifact at ``config.model_path``,
        loaded read-only.
    """
    self.config, self.spec = config, spec
    if world_model is None:
      if not config.model_path:
        raise ConfigError("scenario adaptation needs a world model: set "
                          "--config.agent.model_path to a contextual model artifact (python -m "
                          "experiments.train_model --config=experiments/configs/cadm.py).")
      model, params, _ = load_model(config.model_path)
      world_model = (model, params)
    self.model, self.params = world_model
    if not hasattr(self.model, "context_tokens"):
      raise ModelArtifactError(f"{config.model_path or 'the given world model'}: a "
                               f"{type(self.model).__name__} reads no context; scenario "
                               "adaptation needs a contextual model (e.g. CaDM).")
    state_dim = spec.observation_shapes[config.observation_key][0]
    if (self.model.state_dim, self.model.action_dim) != (state_dim, spec.action_dim):
      raise ModelArtifactError(
          f"{config.model_path or 'the given world model'}: the model predicts "
          f"{self.model.state_dim}-d states and takes {self.model.action_dim}-d actions, the "
          f"target scenario has {state_dim}-d states and {spec.action_dim}-d actions.")
    sizes = mix_sizes(config)
    sac_config = config.sac.copy_and_resolve_references()
    sac_config.observation_key = config.observation_key
    self.sac = SACLearner(sac_config, spec)
    self.num_real, self.num_model, self.capacity = (sizes.num_real, sizes.num_model,
                                                     sizes.capacity)
    self.termination_fn = termination_for(config.termination)

  def init(self, key: jax.Array) -> AdaptationState:
    key, sac_key = jax.random.split(key)
    buffer = empty_model_buffer(self.capacity, self.model.state_dim, self.model.action_dim)
    return AdaptationState(self.sac.init(sac_key), buffer, key, jnp.zeros((), jnp.int32))

  # -- model rollouts -----------------------------------------------------------------------

  def rollout_starts(self, replay: Replay, key: jax.Array
                     ) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """``rollout_batch_size`` replay states ``[N, S]``, each with the tokens ``[N, K, D]`` and
    mask ``[N, K]`` of the real transitions that led to it."""
    obs_key = self.config.observation_key
    ids = sample_replay_ids(replay, key, self.config.rollout_batch_size)
    slots, mask = history_ids(replay, ids, self.model.context_length)
    steps = replay.steps
    states = steps.observation[obs_key]
    context = self.model.context_tokens(states[slots], steps.action[slots], steps.reward[slots],
                                        states[(slots + 1) % replay.capacity])
    return states[ids], context, mask

  def rollout(self, state: AdaptationState, frozen: Any,
              replay: Replay) -> Tuple[AdaptationState, Dict[str, jax.Array]]:
    """Refills the model buffer with rollouts of the current policy branched from replay
    states (the phase's periodic work); its key is the one the next update sets aside."""
    c = self.config
    start_key, rollout_key = jax.random.split(jax.random.split(state.key, 3)[1])
    starts, context, mask = self.rollout_starts(replay, start_key)
    policy = lambda s, k: self.sac.act(state.sac, {c.observation_key: s}, k, False)
    out = self.model.imagine(frozen, policy, starts, c.horizon, rollout_key, context=context,
                             mask=mask, penalty=c.penalty, penalty_coef=c.penalty_coef,
                             termination_fn=self.termination_fn)
    buffer, metrics = add_rollout(state.buffer, out)
    return state.replace(buffer=buffer), {**metrics, "context_fill": mask.mean()}

  # -- update -------------------------------------------------------------------------------

  def update(self, state: AdaptationState, batch: Transition,
             frozen: Any = None) -> Tuple[AdaptationState, Dict[str, jax.Array]]:
    """One SAC update on ``batch`` (``num_real`` replay transitions) plus ``num_model`` rows of
    the model buffer."""
    del frozen
    key, _, model_key = jax.random.split(state.key, 3)  # [1]: the rollouts'
    mixed = mix_with_model_rows(batch, state.buffer, self.num_model, model_key,
                                self.config.observation_key)
    sac_state, metrics = self.sac.update(state.sac, mixed)
    metrics = {**metrics, "model_buffer_size": state.buffer.size.astype(jnp.float32)}
    return AdaptationState(sac_state, state.buffer, key, state.step + 1), metrics

  def act(self, state: AdaptationState, observation, key, eval_mode: bool):
    return self.sac.act(state.sac, observation, key, eval_mode)

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase(self.phase_name, "online", c.num_steps, self.update,
                  ReplaySampler(self.num_real), frozen=lambda source: self.params,
                  random_steps=c.random_steps, learning_starts=c.learning_starts,
                  periodic=Periodic(c.rollout_every, self.rollout))]
