"""TD3+BC learner (offline): one pytree state, a pure ``update``."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.agents.td3bc import losses
from worldmodels.agents.td3bc.networks import make_networks
from worldmodels.data.samplers import Transition, TransitionSampler
from worldmodels.data.spec import DataSpec
from worldmodels.rl.normalization import Normalizer
from worldmodels.rl.updates import apply_gradients, make_adam, polyak
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class TD3BCState:
  actor_params: dict
  critic_params: dict
  target_actor_params: dict
  target_critic_params: dict
  actor_opt: optax.OptState
  critic_opt: optax.OptState
  normalizer: Normalizer
  key: jax.Array
  step: jax.Array


class TD3BCLearner(MemorylessPolicy):
  """TD3 with a behaviour-cloning term in the actor loss and standardised observations."""

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    self.config = config
    self.spec = spec
    self.networks = make_networks(config, spec.action_dim)
    self._actor_opt = make_adam(config.actor_lr)
    self._critic_opt = make_adam(config.critic_lr)

  def init(self, key: jax.Array) -> TD3BCState:
    c, spec = self.config, self.spec
    obs = jnp.zeros((1,) + tuple(spec.observation_shapes[c.observation_key]), jnp.float32)
    act = jnp.zeros((1, spec.action_dim), jnp.float32)
    key, actor_key, critic_key = jax.random.split(key, 3)
    actor_params = self.networks.actor.init(actor_key, obs)
    critic_params = self.networks.critic.init(critic_key, obs, act)
    return TD3BCState(
        actor_params=actor_params, critic_params=critic_params,
        target_actor_params=actor_params, target_critic_params=critic_params,
        actor_opt=self._actor_opt.init(actor_params),
        critic_opt=self._critic_opt.init(critic_params),
        normalizer=Normalizer.from_spec(spec, c.observation_key, c.normalize_observations),
        key=key, step=jnp.zeros((), jnp.int32))

  def update(self, state: TD3BCState, batch: Transition,
             frozen=None) -> Tuple[TD3BCState, Dict[str, jax.Array]]:
    del frozen
    c = self.config
    obs = state.normalizer(batch.observation[c.observation_key])
    next_obs = state.normalizer(batch.next_observation[c.observation_key])
    key, noise_key = jax.random.split(state.key)

    # Critics: clipped double-Q with target policy smoothing.
    critic_params, critic_opt, critic_metrics = apply_gradients(
        losses.critic_loss, state.critic_params, state.critic_opt, self._critic_opt,
        self.networks, state.target_actor_params, state.target_critic_params, obs,
        batch.action, batch.reward, batch.discount, next_obs, c.discount, c.policy_noise,
        c.noise_clip, noise_key)

    # Delayed actor and target updates (every `policy_delay` steps).
    def actor_and_targets(_):
      actor_params, actor_opt, actor_metrics = apply_gradients(
          losses.actor_loss, state.actor_params, state.actor_opt, self._actor_opt,
          self.networks, critic_params, obs, batch.action, c.alpha)
      return (actor_params, actor_opt,
              polyak(state.target_actor_params, actor_params, c.tau),
              polyak(state.target_critic_params, critic_params, c.tau),
              {k: v for k, v in actor_metrics.items() if k != "grad_norm"})

    def skip(_):  # forward pass only, so every step reports the actor's current losses
      _, actor_metrics = losses.actor_loss(state.actor_params, self.networks, critic_params,
                                           obs, batch.action, c.alpha)
      return (state.actor_params, state.actor_opt, state.target_actor_params,
              state.target_critic_params, actor_metrics)

    actor_params, actor_opt, target_actor, target_critic, actor_metrics = jax.lax.cond(
        state.step % c.policy_delay == 0, actor_and_targets, skip, None)

    new_state = TD3BCState(actor_params, critic_params, target_actor, target_critic, actor_opt,
                           critic_opt, state.normalizer, key, state.step + 1)
    metrics = {"critic_loss": critic_metrics["critic_loss"], "q_mean": critic_metrics["q_mean"],
               **actor_metrics}
    return new_state, metrics

  def act(self, state: TD3BCState, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    """Deterministic actions ``[B, A]`` (no exploration noise offline)."""
    del key, eval_mode
    obs = state.normalizer(observation[self.config.observation_key])
    return self.networks.actor.apply(state.actor_params, obs)

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase("td3bc", "offline", c.num_steps, self.update,
                  TransitionSampler(c.batch_size, self.spec.frame_stack))]
