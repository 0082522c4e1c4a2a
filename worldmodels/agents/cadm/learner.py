"""Training CaDM (:class:`~worldmodels.agents.cadm.model.CaDM`) as a phase of the common loop.

Each update is one Adam step on :func:`losses.cadm_loss` of ``batch_size`` windows of
``context_length + 2`` steps (:class:`~worldmodels.data.samplers.SequenceSampler`). The state
standardisation comes from the data spec's statistics and is kept in the trained model.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.agents.cadm import losses
from worldmodels.agents.cadm.model import CaDM, CaDMModel
from worldmodels.data.samplers import GroupedSampler, SequenceBatch, SequenceSampler
from worldmodels.data.spec import DataSpec
from worldmodels.training.agent import Phase


_GROUP = "embodiment"  # the grouped sampler's one group


def _windows(batch) -> SequenceBatch:
  """The sampler's windows: its batch, or with several datasets the one group's rows."""
  return batch[_GROUP][0] if isinstance(batch, dict) else batch


@flax.struct.dataclass
class CaDMTrainState:
  model: CaDMModel
  opt_state: optax.OptState
  key: jax.Array
  step: jax.Array


class CaDMLearner:
  """Trains :class:`CaDM` on the ``"state"`` entry of one or more datasets of one embodiment
  (MrCoM's scenarios: one model, its context telling the scenarios apart).

  With several datasets each batch takes ``batch_size // len(datasets)`` windows from every one
  (:class:`~worldmodels.data.samplers.GroupedSampler` with one group), so every scenario is seen
  equally often whatever its size.
  """

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec,
               datasets: Union[None, str, Sequence[str]] = None,
               mean: Optional[np.ndarray] = None, std: Optional[np.ndarray] = None):
    """Args:
      config: see ``worldmodels.agents.cadm.config``.
      spec: the datasets' spec (their shapes must agree).
      datasets: a dataset name, several, or None (the source's only dataset).
      mean, std: ``[S]`` the state standardisation (default: the spec's statistics).
    """
    if "state" not in spec.observation_shapes:
      raise ValueError("CaDM models the 'state' observation entry; the data has "
                       f"{sorted(spec.observation_shapes)}.")
    self.config, self.spec = config, spec
    self.state_dim, self.action_dim = spec.observation_shapes["state"][0], spec.action_dim
    self.model = CaDM(self.state_dim, self.action_dim, config)
    if mean is None:
      mean = spec.observation_mean["state"] if spec.observation_mean is not None else None
      std = spec.observation_std["state"] if spec.observation_std is not None else None
    self.mean = (np.asarray(mean, np.float32) if mean is not None
                 else np.zeros(self.state_dim, np.float32))
    self.std = (np.maximum(np.asarray(std, np.float32), 1e-6) if std is not None
                else np.ones(self.state_dim, np.float32))
    self._optimizer = optax.adam(config.learning_rate)
    length = config.context_length + 2
    if datasets is None or isinstance(datasets, str):
      self.sampler = SequenceSampler(config.batch_size, length, dataset=datasets)
    else:
      per_dataset = max(1, config.batch_size // len(datasets))
      self.sampler = GroupedSampler(SequenceSampler(per_dataset, length),
                                    ((_GROUP, tuple(datasets)),))

  @classmethod
  def from_source(cls, config: ml_collections.ConfigDict, source,
                  datasets: Union[None, str, Sequence[str]] = None) -> "CaDMLearner":
    """A learner over ``datasets`` of a ``DataSource`` (None: its only one, or all of them when
    it holds several), standardised by the mean and std of their pooled states."""
    if datasets is None and len(source.names) > 1:
      datasets = list(source.names)
    names = [datasets] if datasets is None or isinstance(datasets, str) else list(datasets)
    specs = [source.spec(name) for name in names]
    for name, spec in zip(names[1:], specs[1:]):
      if (spec.observation_shapes, spec.action_dim) != (specs[0].observation_shapes,
                                                        specs[0].action_dim):
        raise ValueError(f"dataset {name!r} has observations {spec.observation_shapes} and "
                         f"{spec.action_dim}-d actions, {names[0]!r} "
                         f"{specs[0].observation_shapes} and {specs[0].action_dim}-d: one CaDM "
                         "models one embodiment.")
    states = np.concatenate([np.asarray(source.steps(name).observation["state"], np.float64)
                             for name in names])
    return cls(config, specs[0], datasets, states.mean(0), states.std(0))

  def init(self, key: jax.Array) -> CaDMTrainState:
    init_key, key = jax.random.split(key)
    model = self.model.init(init_key, self.mean, self.std)
    return CaDMTrainState(model, self._optimizer.init(model.params), key,
                          jnp.zeros((), jnp.int32))

  def update(self, state: CaDMTrainState, batch: SequenceBatch,
             frozen: None = None) -> Tuple[CaDMTrainState, Dict[str, jax.Array]]:
    """One Adam step on the forward and backward losses of ``batch`` ``[B, K + 2]``."""
    del frozen
    rows = losses.split_window(_windows(batch), self.config.context_length, state.model.mean,
                               state.model.std)
    (loss, metrics), grads = jax.value_and_grad(
        lambda p: self.model.loss(state.model.replace(params=p), rows), has_aux=True)(
            state.model.params)
    updates, opt_state = self._optimizer.update(grads, state.opt_state, state.model.params)
    params = optax.apply_updates(state.model.params, updates)
    metrics = {f"cadm_{k}": v for k, v in {**metrics, "loss": loss}.items()}
    return CaDMTrainState(state.model.replace(params=params), opt_state, state.key,
                          state.step + 1), metrics

  def phases(self) -> Sequence[Phase]:
    return [Phase("cadm", "offline", int(self.config.num_steps), self.update, self.sampler)]

  # -- the result ---------------------------------------------------------------------------

  def trained_model(self, state: CaDMTrainState) -> CaDMModel:
    return state.model

  def report(self, state: CaDMTrainState, source, batches: int = 8) -> Dict[str, float]:
    """The loss terms of the final parameters, averaged over ``batches`` fixed batches of the
    training data (what the artifact's ``model.json`` records)."""
    self.sampler.prepare(source)
    arrays = source.arrays

    @jax.jit
    def evaluate(model, key):
      rows = losses.split_window(_windows(self.sampler(arrays, key)), self.config.context_length,
                                 model.mean, model.std)
      loss, metrics = self.model.loss(model, rows)
      return {**metrics, "loss": loss}

    keys = jax.random.split(jax.random.PRNGKey(12345), batches)
    rows = [jax.device_get(evaluate(state.model, k)) for k in keys]
    report = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return {"steps": int(state.step), **report}
