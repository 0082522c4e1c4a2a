"""AugWM learner: MOPO whose policy-training transitions are dynamics-augmented (algorithm 1).

Every transition of every SAC batch (real and model, as in algorithm 1 step iii) gets a fresh
``z ~ U[a, b]^|S|`` and its augmentation ``T_z``; with ``use_context`` the same ``z`` is appended
to ``s`` and ``s'`` as the policy's context. Model rollouts run the policy with the default
context ``z = 1`` **(ours: the paper does not say which context the rollout policy sees; the
unaugmented model is the z = 1 dynamics)**.

With ``train_z`` set, every transition gets that one ``z`` instead, and it is also the default
context (rollouts, the loop's evaluation, ``AugWMPolicy`` mode "default"): the paper's oracle
experiment, trained with the true ``z = delta* / delta`` of one target environment.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from worldmodels.agents.augwm import augmentations as aug
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.data.samplers import Transition
from worldmodels.models.ensemble import Ensemble, EnsembleModel
from worldmodels.data.spec import DataSpec


class AugWMLearner(MOPOLearner):
  """MOPO + RAD / RANS / DAS dynamics augmentation + optional context input."""

  phase_name = "augwm"

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               world_model: Optional[Tuple[Ensemble, EnsembleModel]] = None):
    self.augment = aug.get_augmentation(config.augmentation)
    if not 0.0 < config.z_low <= 1.0 <= config.z_high:
      raise ValueError(f"the z range [{config.z_low}, {config.z_high}] must contain 1 and be "
                       "positive")
    self.state_dim = spec.observation_shapes[config.observation_key][0]
    self._train_z = None
    if config.train_z is not None:
      if len(config.train_z) != self.state_dim or min(config.train_z) <= 0:
        raise ValueError(f"train_z must hold {self.state_dim} positive values (one per state "
                         f"dimension), got {len(config.train_z)}: {config.train_z}")
      self._train_z = jnp.asarray(config.train_z, jnp.float32)
    super().__init__(config, spec, world_model)

  def default_context(self, state: jax.Array) -> jax.Array:
    """The context without test-time information, shaped like ``state`` (``[..., S]``):
    ``train_z`` when set, else ones."""
    if self._train_z is None:
      return jnp.ones_like(state)
    return jnp.broadcast_to(self._train_z, state.shape).astype(state.dtype)

  def policy_spec(self, spec: DataSpec) -> DataSpec:
    if not self.config.use_context:
      return spec
    return spec.with_observation(self.config.observation_key, (2 * self.state_dim,))

  def policy_observation(self, state: jax.Array) -> Dict[str, jax.Array]:
    if not self.config.use_context:
      return {self.config.observation_key: state}
    return {self.config.observation_key: aug.with_context(state, self.default_context(state))}

  def act(self, state, observation, key, eval_mode: bool):
    """Actions with the default context (z = 1, or ``train_z``; the loop's evaluation); the learned
    and oracle contexts of algorithm 2 are ``worldmodels.agents.augwm.context.AugWMPolicy``."""
    obs = self.policy_observation(observation[self.config.observation_key])
    return self.sac.act(state.sac, obs, key, eval_mode)

  def transform_batch(self, batch: Transition, key: jax.Array) -> Transition:
    c = self.config
    obs_key = c.observation_key
    s, s2 = batch.observation[obs_key], batch.next_observation[obs_key]
    z = (aug.sample_z(key, s.shape, c.z_low, c.z_high) if self._train_z is None
         else self.default_context(s))
    s, s2 = self.augment(s, s2, z)
    if c.use_context:
      s, s2 = aug.with_context(s, z), aug.with_context(s2, z)
    return batch.replace(observation={obs_key: s}, next_observation={obs_key: s2})
