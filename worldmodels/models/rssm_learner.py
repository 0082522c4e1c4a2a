"""Training the RSSM as a phase of the common loop.

Each update is one Adam step (gradient clipping, decoupled weight decay) on the model loss of
one batch of sequences drawn by the episodic :class:`~worldmodels.data.samplers.SequenceSampler`
(``batch_size`` windows of ``sequence_length`` steps inside episodes). The learner's state is
one pytree (parameters, optimiser state, key, step), so the loop checkpoints and resumes it
exactly like an agent's. :meth:`RSSMLearner.trained_model` returns the parameters to save as an
artifact (:mod:`worldmodels.models.artifacts`), with the input normalisers fixed from the data.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.data.samplers import SequenceBatch, SequenceSampler
from worldmodels.data.spec import DataSpec
from worldmodels.models.rssm import RSSM, RSSMParams
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class RSSMTrainState:
  """The learner's whole state: ``params`` (:class:`RSSMParams`), ``opt_state``, ``key``,
  ``step``."""

  params: RSSMParams
  opt_state: optax.OptState
  key: jax.Array
  step: jax.Array


def model_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Global-norm clipping, then Adam with decoupled weight decay (DreamerV2's model optimiser)."""
  return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                     optax.adamw(config.learning_rate, eps=config.adam_eps,
                                 weight_decay=config.weight_decay))


def vector_statistics(spec: DataSpec, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and std ``[S]`` of the concatenated vector entries ``keys`` of ``spec``'s data."""
  if not keys:
    return np.zeros((0,), np.float32), np.ones((0,), np.float32)
  if spec.observation_mean is None or any(k not in spec.observation_mean for k in keys):
    raise ValueError(f"the data spec has no statistics of {list(keys)} (build it with "
                     "DataSpec.from_steps).")
  return (np.concatenate([spec.observation_mean[k] for k in keys]).astype(np.float32),
          np.concatenate([spec.observation_std[k] for k in keys]).astype(np.float32))


class RSSMLearner:
  """Trains an :class:`RSSM` on sequences of one dataset, as a loop phase."""

  def __init__(self, model: RSSM, spec: DataSpec, num_steps: Optional[int] = None,
               dataset: Optional[str] = None):
    """Args:
      model: the definition (its config holds the training settings).
      spec: the data's spec (its statistics fix the vector normalisers).
      num_steps: updates (default ``config.num_steps``).
      dataset: the data source's dataset to train on (None: its only one).
    """
    model.fits(spec, "the training data")
    self.model, self.config, self.spec, self.dataset = model, model.config, spec, dataset
    self.num_steps = int(model.config.num_steps if num_steps is None else num_steps)
    self.obs_mean, self.obs_std = vector_statistics(spec, model.vector_keys)
    self._optimizer = model_optimizer(model.config)
    self.sampler = SequenceSampler(model.config.batch_size, model.config.sequence_length,
                                   dataset=dataset)

  @classmethod
  def from_source(cls, config: ml_collections.ConfigDict, source, *,
                  observation_keys: Sequence[str] = ("state",), dataset: Optional[str] = None,
                  num_steps: Optional[int] = None) -> "RSSMLearner":
    """A learner over dataset ``dataset`` of a ``DataSource``, encoding ``observation_keys``."""
    spec = source.spec(dataset)
    return cls(RSSM.for_spec(spec, config, observation_keys), spec, num_steps, dataset)

  def init(self, key: jax.Array) -> RSSMTrainState:
    init_key, key = jax.random.split(key)
    params = self.model.init(init_key, self.obs_mean, self.obs_std)
    return RSSMTrainState(params, self._optimizer.init(params.net), key,
                          jnp.zeros((), jnp.int32))

  def update(self, state: RSSMTrainState, batch: SequenceBatch,
             frozen: None = None) -> Tuple[RSSMTrainState, Dict[str, jax.Array]]:
    """One optimiser step on the model loss of ``batch`` ``[B, T]``."""
    del frozen
    key, loss_key = jax.random.split(state.key)

    def loss_fn(net):
      return self.model.loss(state.params.replace(net=net), batch, loss_key)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params.net)
    updates, opt_state = self._optimizer.update(grads, state.opt_state, state.params.net)
    net = optax.apply_updates(state.params.net, updates)
    metrics = {f"model_{k}": v for k, v in metrics.items()}
    metrics["model_grad_norm"] = optax.global_norm(grads)
    return RSSMTrainState(state.params.replace(net=net), opt_state, key, state.step + 1), metrics

  def phases(self) -> Sequence[Phase]:
    return [Phase("rssm", "offline", self.num_steps, self.update, self.sampler)]

  # -- the result ---------------------------------------------------------------------------

  def trained_model(self, state: RSSMTrainState) -> RSSMParams:
    return state.params

  def report(self, state: RSSMTrainState, source, batches: int = 8) -> Dict[str, float]:
    """The model loss terms of the final parameters, averaged over ``batches`` fixed batches
    of the training data (what ``model.json`` records)."""
    self.sampler.prepare(source)
    arrays = source.arrays

    @jax.jit
    def evaluate(params, key):
      batch_key, loss_key = jax.random.split(key)
      return self.model.loss(params, self.sampler(arrays, batch_key), loss_key)[1]

    keys = jax.random.split(jax.random.PRNGKey(12345), batches)
    rows = [jax.device_get(evaluate(state.params, k)) for k in keys]
    return {"steps": int(state.step),
            **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}
