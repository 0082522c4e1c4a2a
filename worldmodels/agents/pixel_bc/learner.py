"""Pixel BC learner: one pytree state, a pure ``update`` on shifted frames."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.agents.pixel_bc import losses
from worldmodels.agents.pixel_bc.networks import make_networks
from worldmodels.data.samplers import Transition, TransitionSampler
from worldmodels.data.spec import DataSpec
from worldmodels.rl import pixels
from worldmodels.rl.drq import check_pixel_spec, init_pixel_params
from worldmodels.rl.updates import apply_gradients, make_adam
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class PixelBCState:
  params: dict  # {"encoder": ..., "actor": ...}
  opt_state: optax.OptState
  key: jax.Array
  step: jax.Array


class PixelBCLearner(MemorylessPolicy):
  """Regresses the dataset's actions from randomly shifted frame stacks."""

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    check_pixel_spec(spec, config.observation_key, "pixel_bc")
    self.config = config
    self.spec = spec
    self.networks = make_networks(config, spec.action_dim)
    self._opt = make_adam(config.lr)

  def init(self, key: jax.Array) -> PixelBCState:
    key, init_key = jax.random.split(key)
    encoder, actor, _ = init_pixel_params(self.networks, self.spec, self.config.observation_key,
                                          init_key)
    params = {"encoder": encoder, "actor": actor}
    return PixelBCState(params, self._opt.init(params), key, jnp.zeros((), jnp.int32))

  def update(self, state: PixelBCState, batch: Transition,
             frozen=None) -> Tuple[PixelBCState, Dict[str, jax.Array]]:
    del frozen
    c = self.config
    key, shift_key = jax.random.split(state.key)
    frames = pixels.random_shift(shift_key, batch.observation[c.observation_key], c.shift_pad,
                                 c.shift_method)
    params, opt_state, metrics = apply_gradients(
        losses.bc_loss, state.params, state.opt_state, self._opt, self.networks, frames,
        batch.action)
    return PixelBCState(params, opt_state, key, state.step + 1), metrics

  def act(self, state: PixelBCState, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    """The actor's actions ``[B, A]`` on frames ``uint8 [B, S, S, k * 3]``."""
    del key, eval_mode
    return self.networks.act(state.params["encoder"], state.params["actor"],
                             observation[self.config.observation_key])

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase("pixel_bc", "offline", c.num_steps, self.update,
                  TransitionSampler(c.batch_size, self.spec.frame_stack))]
