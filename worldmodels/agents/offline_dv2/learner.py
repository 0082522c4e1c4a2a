"""Offline DV2 learner: the agent phase of V-D4RL's Offline DreamerV2.

The RSSM is a read-only artifact (``config.model_path``, trained by ``experiments.train_model``
with ``experiments/configs/rssm.py``): its parameters reach ``update`` as the phase's ``frozen``
input and are never part of the agent's state or checkpoints. Each update observes one batch of
dataset sequences ``[B, T]`` with the model, starts ``N = B * T`` imagined trajectories of
``horizon`` steps from the posterior states (or ``imagination_starts`` of them, drawn at
random), and takes one step of the actor (dynamics
backprop through the frozen model) and of the critic; a slow copy of the critic, refreshed every
``slow_critic_every`` updates, computes the lambda-returns.

Acting carries the RSSM state: ``policy_init`` gives the zero latent and action, ``policy``
filters the new observation into the posterior and acts on its features. The policy compiles
itself, passing the model parameters as arguments (a closure would embed them in the program as
constants), so the episode runner calls it as it is (``runs_on_host``).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from worldmodels.agents.offline_dv2 import losses
from worldmodels.agents.offline_dv2.networks import make_networks
from worldmodels.data.samplers import SequenceBatch, SequenceSampler
from worldmodels.data.spec import DataSpec
from worldmodels.errors import ConfigError
from worldmodels.models.artifacts import ModelArtifactError, load_model
from worldmodels.models.rssm import RSSM, Latent, RSSMParams
from worldmodels.rl.networks import squashed_mode
from worldmodels.rl.returns import update_return_scale
from worldmodels.rl.updates import make_adam
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class DV2State:
  """The agent's whole state (the RSSM is not part of it).

  Attributes:
    actor_params, critic_params, slow_critic_params: network parameters.
    actor_opt, critic_opt: Adam states.
    penalty_coef: lambda (tuned by dual ascent with ``lagrangian``, else fixed).
    return_scale: DreamerV3's EMA of the returns' 5-95 percentile range.
    key, step: rng and update count.
  """

  actor_params: dict
  critic_params: dict
  slow_critic_params: dict
  actor_opt: optax.OptState
  critic_opt: optax.OptState
  penalty_coef: jax.Array
  return_scale: jax.Array
  key: jax.Array
  step: jax.Array


class OfflineDV2Learner:
  """Offline DreamerV2 (Lu et al. 2023) on a frozen :class:`RSSM` artifact."""

  runs_on_host = True  # the policy jits itself with the model as an argument

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               world_model: Optional[Tuple[RSSM, RSSMParams]] = None):
    """Args:
      config: see ``worldmodels.agents.offline_dv2.config``.
      spec: the data spec (must hold the model's observation entries and action size).
      world_model: ``(RSSM, RSSMParams)``; default: loaded read-only from ``config.model_path``.
    """
    self.config, self.spec = config, spec
    if world_model is None:
      if not config.model_path:
        raise ConfigError("Offline DV2 needs an RSSM: set --config.agent.model_path to an "
                          "artifact of python -m experiments.train_model "
                          "--config=experiments/configs/rssm.py.")
      model, params, _ = load_model(config.model_path, kind=RSSM.kind)
      world_model = (model, params)
    self.model, self.model_params = world_model
    try:
      self.model.fits(spec, config.model_path or "the given world model")
    except ValueError as error:
      raise ModelArtifactError(str(error)) from None
    self.networks = make_networks(config, spec.action_dim)
    self._actor_opt = make_adam(config.actor_lr, config.grad_clip, config.adam_eps)
    self._critic_opt = make_adam(config.critic_lr, config.grad_clip, config.adam_eps)
    self._act = jax.jit(self._policy_step, static_argnames="eval_mode")

  def init(self, key: jax.Array) -> DV2State:
    key, actor_key, critic_key = jax.random.split(key, 3)
    features = jnp.zeros((1, self.model.feature_size))
    actor = self.networks.actor.init(actor_key, features)
    critic = self.networks.critic.init(critic_key, features)
    return DV2State(actor, critic, critic, self._actor_opt.init(actor),
                    self._critic_opt.init(critic), jnp.asarray(self.config.penalty_coef,
                                                               jnp.float32),
                    jnp.zeros((), jnp.float32), key, jnp.zeros((), jnp.int32))

  def update(self, state: DV2State, batch: SequenceBatch,
             frozen: RSSMParams) -> Tuple[DV2State, Dict[str, jax.Array]]:
    """One actor and one critic step on imagination from the posterior states of ``batch``."""
    c, model, nets = self.config, self.model, self.networks
    key, observe_key, imagine_key, entropy_key, start_key = jax.random.split(state.key, 5)
    params = jax.lax.stop_gradient(frozen)
    observed = model.observe(params, model.embed(params, batch.observation), batch.action,
                             batch.is_first, observe_key)
    start = jax.tree_util.tree_map(
        lambda x: jax.lax.stop_gradient(x.reshape((-1,) + x.shape[2:])), observed.posterior)
    if c.imagination_starts:  # a random subset of the B * T posterior states
      rows = jax.random.choice(start_key, start.deter.shape[0], (c.imagination_starts,),
                               replace=False)
      start = jax.tree_util.tree_map(lambda x: x[rows], start)

    def actor_objective(actor_params):
      trajectory = losses.imagine(model, params, nets.actor, actor_params, start, c.horizon,
                                  imagine_key)
      terms = losses.penalised_returns(model, params, nets.critic, state.slow_critic_params,
                                       trajectory, c, state.penalty_coef)
      entropy = losses.actor_entropy(nets.actor, actor_params, trajectory.features[:-1],
                                     entropy_key)
      loss = losses.actor_loss(terms["returns"], terms["weights"], entropy, c,
                               state.return_scale)
      aux = {"features": jax.lax.stop_gradient(trajectory.features[:-1]),
             "returns": jax.lax.stop_gradient(terms["returns"]), "weights": terms["weights"],
             "metrics": {**losses.imagination_metrics(terms), "actor_entropy": entropy.mean()}}
      return loss, aux

    (actor_loss, aux), grads = jax.value_and_grad(actor_objective, has_aux=True)(
        state.actor_params)
    updates, actor_opt = self._actor_opt.update(grads, state.actor_opt, state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, updates)

    def critic_objective(critic_params):
      values = nets.critic.apply(critic_params, aux["features"])[..., 0]
      return losses.critic_loss(values, aux["returns"], aux["weights"]), values.mean()

    (critic_loss, value_mean), critic_grads = jax.value_and_grad(critic_objective,
                                                                 has_aux=True)(
        state.critic_params)
    updates, critic_opt = self._critic_opt.update(critic_grads, state.critic_opt,
                                                  state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, updates)
    step = state.step + 1
    refresh = step % c.slow_critic_every == 0
    slow = jax.tree_util.tree_map(lambda new, old: jnp.where(refresh, new, old), critic_params,
                                  state.slow_critic_params)
    metrics = aux["metrics"]
    penalty_coef = (losses.lagrange_step(state.penalty_coef, metrics["penalty"], c)
                    if c.lagrangian else state.penalty_coef)
    return_scale = (update_return_scale(state.return_scale, aux["returns"])
                    if c.return_normalisation else state.return_scale)
    metrics = {**metrics, "actor_loss": actor_loss, "critic_loss": critic_loss,
               "value_mean": value_mean, "penalty_coef": state.penalty_coef,
               "actor_grad_norm": optax.global_norm(grads)}
    return DV2State(actor_params, critic_params, slow, actor_opt, critic_opt, penalty_coef,
                    return_scale, key, step), metrics

  def phases(self) -> Sequence[Phase]:
    c = self.config
    return [Phase("offline_dv2", "offline", c.num_steps, self.update,
                  SequenceSampler(c.batch_size, c.sequence_length),
                  frozen=lambda source: self.model_params)]

  # -- acting -------------------------------------------------------------------------------

  def policy_init(self, key: jax.Array) -> Tuple[Latent, jax.Array]:
    """The RSSM's zero latent and a zero previous action (batch of one)."""
    del key
    return self.model.initial(1), jnp.zeros((1, self.spec.action_dim))

  def _policy_step(self, model_params, actor_params, carry, observation, key, eval_mode):
    latent, prev_action = carry
    filter_key, act_key = jax.random.split(key)
    batched = {k: jnp.asarray(observation[k])[None] for k, _, _ in self.model.observations}
    embed = self.model.embed(model_params, batched)
    latent, _, _ = self.model.step(model_params, latent, prev_action, filter_key, embed)
    dist = self.networks.actor.apply(actor_params, self.model.features(latent))
    action = squashed_mode(dist) if eval_mode else dist.sample(seed=act_key)
    return action[0], (latent, action)

  def policy(self, state: DV2State, carry, observation, key: jax.Array, eval_mode: bool):
    """One step: the posterior of ``observation`` given the carried latent and action, then the
    actor's action (its mode with ``eval_mode``)."""
    return self._act(self.model_params, state.actor_params, carry, observation, key,
                     eval_mode=eval_mode)
