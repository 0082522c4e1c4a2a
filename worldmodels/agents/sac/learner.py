"""SAC learner: one pytree state, a pure ``update``, online- and offline-capable.

Reused by the behaviour policies of the datasets and, later, by MOPO / AugWM / MrCoM as their
policy learner.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.agents.sac import losses
from worldmodels.agents.sac.networks import make_networks
from worldmodels.data.samplers import Transition
from worldmodels.data.spec import DataSpec
from worldmodels.rl.networks import squashed_mode
from worldmodels.rl.updates import apply_gradients, make_adam, polyak
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Phase
from worldmodels.training.replay import ReplaySampler


@flax.struct.dataclass
class SACState:
  actor_params: dict
  critic_params: dict
  target_critic_params: dict
  log_alpha: jax.Array
  actor_opt: optax.OptState
  critic_opt: optax.OptState
  alpha_opt: optax.OptState
  key: jax.Array
  step: jax.Array


class SACLearner(MemorylessPolicy):
  """Soft actor-critic with twin Q and a learned temperature (target entropy ``-|A|``)."""

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    self.config = config
    self.spec = spec
    self.networks = make_networks(config, spec.action_dim)
    self.target_entropy = (-float(spec.action_dim) if config.target_entropy is None
                           else float(config.target_entropy))
    self._actor_opt = make_adam(config.actor_lr)
    self._critic_opt = make_adam(config.critic_lr)
    self._alpha_opt = make_adam(config.alpha_lr)

  def init(self, key: jax.Array) -> SACState:
    c, spec = self.config, self.spec
    obs = jnp.zeros((1,) + tuple(spec.observation_shapes[c.observation_key]), jnp.float32)
    act = jnp.zeros((1, spec.action_dim), jnp.float32)
    key, actor_key, critic_key = jax.random.split(key, 3)
    actor_params = self.networks.actor.init(actor_key, obs)
    critic_params = self.networks.critic.init(critic_key, obs, act)
    log_alpha = jnp.asarray(jnp.log(c.init_alpha), jnp.float32)
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        log_alpha=log_alpha,
        actor_opt=self._actor_opt.init(actor_params),
        critic_opt=self._critic_opt.init(critic_params),
        alpha_opt=self._alpha_opt.init(log_alpha),
        key=key,
        step=jnp.zeros((), jnp.int32))

  def update(self, state: SACState, batch: Transition,
             frozen=None) -> Tuple[SACState, Dict[str, jax.Array]]:
    del frozen
    c = self.config
    obs = batch.observation[c.observation_key]
    next_obs = batch.next_observation[c.observation_key]
    key, critic_key, actor_key = jax.random.split(state.key, 3)
    alpha = jnp.exp(state.log_alpha)

    # Critics: soft TD towards the target critics.
    critic_params, critic_opt, critic_metrics = apply_gradients(
        losses.critic_loss, state.critic_params, state.critic_opt, self._critic_opt,
        self.networks, state.actor_params, state.target_critic_params, alpha, obs,
        batch.action, batch.reward, batch.discount, next_obs, c.discount, critic_key)

    # Actor: maximise soft Q of the updated critics.
    actor_params, actor_opt, actor_metrics = apply_gradients(
        losses.actor_loss, state.actor_params, state.actor_opt, self._actor_opt,
        self.networks, critic_params, alpha, obs, actor_key)

    # Temperature, then target critics.
    log_alpha, alpha_opt, alpha_metrics = apply_gradients(
        losses.alpha_loss, state.log_alpha, state.alpha_opt, self._alpha_opt,
        actor_metrics["entropy"], self.target_entropy)
    target_critic_params = polyak(state.target_critic_params, critic_params, c.tau)

    new_state = SACState(actor_params, critic_params, target_critic_params, log_alpha,
                         actor_opt, critic_opt, alpha_opt, key, state.step + 1)
    metrics = {**critic_metrics, **actor_metrics, **alpha_metrics}
    metrics.pop("grad_norm")
    return new_state, metrics

  def act(self, state: SACState, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    """Actions ``[B, A]``: ``tanh(mean)`` in eval mode, a sample otherwise."""
    dist = self.networks.actor.apply(state.actor_params, observation[self.config.observation_key])
    return squashed_mode(dist) if eval_mode else dist.sample(seed=key)

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase("sac", "online", c.num_steps, self.update, ReplaySampler(c.batch_size),
                  random_steps=c.random_steps, learning_starts=c.learning_starts)]
