"""Behaviour cloning learner: one pytree state, a pure ``update``."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.agents.bc import losses
from worldmodels.agents.bc.networks import make_networks
from worldmodels.data.samplers import Transition, TransitionSampler
from worldmodels.data.spec import DataSpec
from worldmodels.rl.normalization import Normalizer
from worldmodels.rl.updates import apply_gradients, make_adam
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class BCState:
  params: dict
  opt_state: optax.OptState
  normalizer: Normalizer
  key: jax.Array
  step: jax.Array


class BCLearner(MemorylessPolicy):
  """Regresses the dataset's actions from (standardised) observations."""

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    self.config = config
    self.spec = spec
    self.actor = make_networks(config, spec.action_dim)
    self._opt = make_adam(config.lr)

  def init(self, key: jax.Array) -> BCState:
    c = self.config
    obs = jnp.zeros((1,) + tuple(self.spec.observation_shapes[c.observation_key]), jnp.float32)
    key, init_key = jax.random.split(key)
    params = self.actor.init(init_key, obs)
    return BCState(params, self._opt.init(params),
                   Normalizer.from_spec(self.spec, c.observation_key, c.normalize_observations),
                   key, jnp.zeros((), jnp.int32))

  def update(self, state: BCState, batch: Transition,
             frozen=None) -> Tuple[BCState, Dict[str, jax.Array]]:
    del frozen
    obs = state.normalizer(batch.observation[self.config.observation_key])
    params, opt_state, metrics = apply_gradients(
        losses.bc_loss, state.params, state.opt_state, self._opt, self.actor, obs, batch.action)
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), metrics

  def act(self, state: BCState, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    del key, eval_mode
    obs = state.normalizer(observation[self.config.observation_key])
    return self.actor.apply(state.params, obs)

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase("bc", "offline", c.num_steps, self.update,
                  TransitionSampler(c.batch_size, self.spec.frame_stack))]
