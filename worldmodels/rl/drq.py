"""The DrQ-v2 learner that the pixel actor-critic agents (DrQ+BC, CQL) share.

One update (Yarats et al. 2021, as V-D4RL's DrQ+BC and CQL run it offline):

1. both frames of each n-step transition are randomly shifted (independently);
2. the critic step trains the encoder and the twin critics on the n-step TD error, the target
   from the slow critic at the actor's next action plus clipped noise of the scheduled stddev
   (plus an agent's regulariser, e.g. CQL's);
3. the actor step uses the encoder features of step 2 with their gradient stopped (the encoder
   is trained by the critic only) and the critic after its step;
4. the slow critic follows by Polyak averaging (``tau``).

Agents subclass :class:`DrQLearner` and override :meth:`actor_loss` and / or
:meth:`critic_regulariser`.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.data.samplers import NStepSampler, Transition
from worldmodels.data.spec import DataSpec
from worldmodels.rl import pixels
from worldmodels.rl.updates import make_adam, polyak
from worldmodels.training.acting import MemorylessPolicy
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class DrQState:
  """Encoder, actor, critics and the slow critic (encoder and critics share one optimiser: the
  critic loss trains both)."""

  encoder_params: dict
  actor_params: dict
  critic_params: dict
  target_critic_params: dict
  critic_opt: optax.OptState
  actor_opt: optax.OptState
  key: jax.Array
  step: jax.Array


def init_pixel_params(networks: pixels.PixelNetworks, spec: DataSpec, observation_key: str,
                      key: jax.Array):
  """Parameters of the encoder, actor and critics for one ``spec`` frame stack."""
  frames = jnp.zeros((1,) + tuple(spec.observation_shapes[observation_key]), jnp.uint8)
  encoder_key, actor_key, critic_key = jax.random.split(key, 3)
  encoder_params = networks.encoder.init(encoder_key, frames)
  features = networks.encoder.apply(encoder_params, frames)
  actor_params = networks.actor.init(actor_key, features)
  critic_params = networks.critic.init(
      critic_key, features, jnp.zeros((1, spec.action_dim), jnp.float32))
  return encoder_params, actor_params, critic_params


def check_pixel_spec(spec: DataSpec, observation_key: str, agent: str) -> None:
  """A clear error unless ``spec`` has ``uint8 [S, S, C]`` frames under ``observation_key``."""
  shapes = dict(spec.observation_shapes)
  if observation_key not in shapes:
    raise ValueError(f"{agent} reads observation entry {observation_key!r}, which the dataset "
                     f"does not have (entries: {sorted(shapes)}); train it on a pixel dataset "
                     "(e.g. vd4rl/walker_walk/medium/84px).")
  shape = tuple(shapes[observation_key])
  if not spec.observations[observation_key].is_image or shape[0] != shape[1]:
    raise ValueError(f"{agent} needs square uint8 frames [S, S, C] under "
                     f"{observation_key!r}, got {spec.observations[observation_key]}.")


class DrQLearner(MemorylessPolicy):
  """DrQ-v2 offline: n-step clipped double-Q learning on shifted frames, a DDPG actor."""

  name = "drq"

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    check_pixel_spec(spec, config.observation_key, self.name)
    pixels.parse_schedule(config.stddev_schedule)  # a clear error before any compilation
    self.config = config
    self.spec = spec
    self.networks = pixels.make_pixel_networks(config, spec.action_dim)
    self._critic_opt = make_adam(config.lr)
    self._actor_opt = make_adam(config.lr)

  # -- hooks ------------------------------------------------------------------------------------

  def actor_loss(self, actor_params, critic_params, features: jax.Array, action: jax.Array,
                 stddev: jax.Array, key: jax.Array) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """DrQ-v2's DDPG actor loss: ``-min_i Q_i(h, pi(h) + clipped noise)``.

    Args:
      actor_params: the actor's parameters (differentiated).
      critic_params: the critics after this update's critic step.
      features: ``[B, E]`` encoder features (gradient stopped).
      action: ``[B, A]`` the dataset's actions.
      stddev: the scheduled exploration stddev.
      key: PRNG key for the noise.
    """
    del action
    mean = self.networks.actor.apply(actor_params, features)
    noisy = pixels.noisy_action(key, mean, stddev, self.config.stddev_clip)
    q = self.networks.critic.apply(critic_params, features, noisy).min(axis=0)
    loss = -jnp.mean(q)
    return loss, {"actor_loss": loss}

  def critic_regulariser(self, critic_params, features: jax.Array, action: jax.Array,
                         q_data: jax.Array, key: jax.Array
                         ) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """Added to the TD loss (differentiated through the critics and the encoder). None here.

    Args:
      features: ``[B, E]`` encoder features (with gradient).
      action: ``[B, A]`` dataset actions.
      q_data: ``[2, B]`` the critics at the dataset's actions.
    """
    del critic_params, features, action, q_data, key
    return jnp.zeros(()), {}

  # -- the agent --------------------------------------------------------------------------------

  def init(self, key: jax.Array) -> DrQState:
    key, init_key = jax.random.split(key)
    encoder, actor, critic = init_pixel_params(self.networks, self.spec,
                                               self.config.observation_key, init_key)
    return DrQState(encoder_params=encoder, actor_params=actor, critic_params=critic,
                    target_critic_params=critic,
                    critic_opt=self._critic_opt.init({"encoder": encoder, "critic": critic}),
                    actor_opt=self._actor_opt.init(actor), key=key,
                    step=jnp.zeros((), jnp.int32))

  def update(self, state: DrQState, batch: Transition,
             frozen=None) -> Tuple[DrQState, Dict[str, jax.Array]]:
    """One update on an n-step batch (``discount`` holds ``gamma ** n'`` or 0 at a terminal).

    Args:
      state: the agent state.
      batch: frames ``uint8 [B, S, S, k * 3]`` under the observation key.
    """
    del frozen
    c, nets = self.config, self.networks
    frames = batch.observation[c.observation_key]
    chex.assert_rank(frames, 4)
    key, shift_key, next_shift_key, target_key, regulariser_key, actor_key = jax.random.split(
        state.key, 6)
    obs = pixels.random_shift(shift_key, frames, c.shift_pad, c.shift_method)
    next_obs = pixels.random_shift(next_shift_key, batch.next_observation[c.observation_key],
                                   c.shift_pad, c.shift_method)
    stddev = pixels.scheduled_stddev(c.stddev_schedule, state.step)

    def critic_objective(params):
      features = nets.encoder.apply(params["encoder"], obs)
      next_features = jax.lax.stop_gradient(nets.encoder.apply(params["encoder"], next_obs))
      next_mean = nets.actor.apply(state.actor_params, next_features)
      next_action = pixels.noisy_action(target_key, next_mean, stddev, c.stddev_clip)
      next_q = nets.critic.apply(state.target_critic_params, next_features, next_action)
      target = jax.lax.stop_gradient(batch.reward + batch.discount * next_q.min(axis=0))
      q = nets.critic.apply(params["critic"], features, batch.action)  # [2, B]
      td_loss = jnp.mean(jnp.sum((q - target) ** 2, axis=0))
      regulariser, metrics = self.critic_regulariser(params["critic"], features, batch.action,
                                                     q, regulariser_key)
      metrics = dict(metrics, critic_loss=td_loss, q_mean=q.mean(), target_mean=target.mean())
      return td_loss + regulariser, (metrics, features)

    params = {"encoder": state.encoder_params, "critic": state.critic_params}
    (_, (critic_metrics, features)), grads = jax.value_and_grad(
        critic_objective, has_aux=True)(params)
    updates, critic_opt = self._critic_opt.update(grads, state.critic_opt, params)
    params = optax.apply_updates(params, updates)

    (_, actor_metrics), actor_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
        state.actor_params, params["critic"], jax.lax.stop_gradient(features), batch.action,
        stddev, actor_key)
    actor_updates, actor_opt = self._actor_opt.update(actor_grads, state.actor_opt,
                                                      state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, actor_updates)

    new_state = DrQState(
        encoder_params=params["encoder"], actor_params=actor_params,
        critic_params=params["critic"],
        target_critic_params=polyak(state.target_critic_params, params["critic"], c.tau),
        critic_opt=critic_opt, actor_opt=actor_opt, key=key, step=state.step + 1)
    return new_state, {**critic_metrics, **actor_metrics, "stddev": stddev,
                       "critic_grad_norm": optax.global_norm(grads),
                       "actor_grad_norm": optax.global_norm(actor_grads)}

  def act(self, state: DrQState, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    """The actor's mean actions ``[B, A]`` on frames ``uint8 [B, S, S, k * 3]`` (offline
    agents act deterministically)."""
    del key, eval_mode
    return self.networks.act(state.encoder_params, state.actor_params,
                             observation[self.config.observation_key])

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase(self.name, "offline", c.num_steps, self.update,
                  NStepSampler(c.batch_size, c.n_step, c.discount, self.spec.frame_stack))]
