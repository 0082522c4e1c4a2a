"""Training the probabilistic ensemble as a phase of the common loop.

Everything the training decides lives in the learner's state, so a killed run resumes to the
same parameters and the loop checkpoints it like any agent:

* ``init(key)`` splits the transitions into train and holdout (``min(holdout_size,
  max_holdout_fraction * N)`` rows), fixes the input normalisers on the train rows, and draws
  the first epoch's order;
* each ``update`` is one Adam step on one member-batched batch ``[E, B, ...]``: every member
  walks its own shuffle of the train rows (or a bootstrap resample with ``bootstrap``);
* at the end of each epoch the holdout MSE is measured; each member keeps the parameters of its
  best epoch, and training stops when no member improved by more than
  ``improvement_threshold`` (relative) for more than ``patience`` epochs.

The loop runs one epoch per host call (``Phase.steps_per_chunk``), checks ``is_done`` after it,
and logs the holdout error (``Phase.summary``). :meth:`EnsembleLearner.trained_model` then
picks the elites (lowest holdout MSE) and returns the :class:`EnsembleModel` to save.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import PartitionSpec

from worldmodels.data.samplers import all_transitions
from worldmodels.models.ensemble import (Ensemble, EnsembleModel, ModelBatch, make_targets,
                                         member_subtree, select_elites)
from worldmodels.training.agent import Phase


@flax.struct.dataclass
class ModelData:
  """Every transition of the training data, on the device (the phase's frozen input).

  Attributes:
    state: ``[N, S]``; action: ``[N, A]``; target: ``[N, S + 1]`` (``(s' - s, r)``);
    terminal: ``[N]`` float, 1 where ``s'`` is terminal.
  """

  state: jax.Array
  action: jax.Array
  target: jax.Array
  terminal: jax.Array


@flax.struct.dataclass
class EnsembleTrainState:
  """The learner's whole state (one pytree).

  Attributes:
    model: the current parameters and the (fixed) input normalisers.
    opt_state: Adam's state.
    best_params: per member, the network parameters of its best holdout epoch.
    best_mse: ``[E]`` holdout MSE of ``best_params``.
    last_mse: ``[E]`` holdout MSE after the latest epoch.
    since_improved: epochs since any member improved.
    stopped: early stopping fired (later updates change nothing).
    epoch: finished epochs.
    cursor: batches done in the current epoch.
    order: ``[E, num_batches * B]`` positions into ``train_ids``, this epoch's order.
    train_ids, holdout_ids: the split of the transitions.
    key, step: rng and update count.
  """

  model: EnsembleModel
  opt_state: optax.OptState
  best_params: dict
  best_mse: jax.Array
  last_mse: jax.Array
  since_improved: jax.Array
  stopped: jax.Array
  epoch: jax.Array
  cursor: jax.Array
  order: jax.Array
  train_ids: jax.Array
  holdout_ids: jax.Array
  key: jax.Array
  step: jax.Array


@dataclasses.dataclass
class TrainReport:
  """What the holdout says of a trained ensemble.

  Attributes:
    epochs: epochs run (early stopping may end before ``max_epochs``).
    holdout_mse: ``[E]`` per-member holdout MSE of the kept (best) parameters.
    holdout_nll: ``[E]`` per-member holdout Gaussian NLL (nats per dimension).
    mse_per_dim: ``[S + 1]`` elites' mean holdout MSE per output dimension.
    calibration: ``[S + 1]`` elites' holdout MSE / mean predicted variance per dimension
      (1 = calibrated, > 1 overconfident).
    elites: ``[num_elites]`` member indices, best first.
    transitions: training transitions (train + holdout).
  """

  epochs: int
  holdout_mse: np.ndarray
  holdout_nll: np.ndarray
  mse_per_dim: np.ndarray
  calibration: np.ndarray
  elites: np.ndarray
  transitions: int

  def as_dict(self) -> Dict[str, object]:
    """JSON-ready, as stored in the artifact's ``model.json``."""
    return {"epochs": self.epochs, "holdout_mse": self.holdout_mse,
            "holdout_nll": self.holdout_nll, "elites": self.elites,
            "elite_mse_per_dim": self.mse_per_dim, "elite_calibration": self.calibration,
            "transitions": self.transitions}


def model_data(state: np.ndarray, action: np.ndarray, reward: np.ndarray,
               next_state: np.ndarray, terminal: Optional[np.ndarray] = None) -> ModelData:
  """Host transitions ``(s [N, S], a [N, A], r [N], s' [N, S], terminal [N])`` on the device."""
  n = state.shape[0]
  for name, value in (("action", action), ("reward", reward), ("next_state", next_state)):
    if value.shape[0] != n:
      raise ValueError(f"ensemble training data: {name} has {value.shape[0]} rows, state {n}.")
  for name, value in (("state", state), ("action", action), ("reward", reward),
                      ("next_state", next_state)):
    if not np.all(np.isfinite(value)):
      raise ValueError(f"ensemble training data: {name} contains NaN or inf.")
  terminal = np.zeros((n,), np.float32) if terminal is None else np.asarray(terminal, np.float32)
  return ModelData(jnp.asarray(state, jnp.float32), jnp.asarray(action, jnp.float32),
                   jnp.asarray(make_targets(state, reward, next_state)), jnp.asarray(terminal))


class EnsembleLearner:
  """Trains an :class:`Ensemble` on transitions, as a loop phase."""

  def __init__(self, ensemble: Ensemble, data: ModelData, max_epochs: Optional[int] = None):
    """Args:
      ensemble: the definition (sizes and training config).
      data: the transitions (:func:`model_data`).
      max_epochs: overrides ``config.max_epochs``.

    Raises:
      ValueError: data of the wrong width, or too few transitions for the holdout and a batch.
    """
    c = ensemble.config
    self.ensemble, self.config, self.data = ensemble, c, data
    n = int(data.state.shape[0])
    if data.state.shape[1:] != (ensemble.state_dim,) or data.action.shape[1:] != (
        ensemble.action_dim,):
      raise ValueError(f"ensemble training data: states {data.state.shape[1:]} and actions "
                       f"{data.action.shape[1:]} do not fit a model of {ensemble.state_dim}-d "
                       f"states and {ensemble.action_dim}-d actions.")
    self.num_transitions = n
    self.num_holdout = int(min(c.holdout_size, int(n * c.max_holdout_fraction)))
    self.num_train = n - self.num_holdout
    if self.num_holdout < 1 or self.num_train < c.batch_size:
      raise ValueError(
          f"{n} transitions are too few for the ensemble: a holdout of {self.num_holdout} "
          f"(min(holdout_size={c.holdout_size}, max_holdout_fraction={c.max_holdout_fraction} "
          f"x {n})) and batches of {c.batch_size} need at least "
          f"{max(c.batch_size + 1, int(np.ceil(1 / c.max_holdout_fraction)))}; use a smaller "
          "preset (e.g. experiments/configs/ensemble.py:tiny) or more data.")
    self.num_batches = self.num_train // c.batch_size
    self.max_epochs = int(c.max_epochs if max_epochs is None else max_epochs)
    self._optimizer = optax.adam(c.learning_rate)

  @classmethod
  def from_source(cls, config: ml_collections.ConfigDict, source, *,
                  observation_key: str = "state", dataset: Optional[str] = None,
                  max_epochs: Optional[int] = None) -> "EnsembleLearner":
    """A learner over every transition of dataset ``dataset`` of a ``DataSource``."""
    state, action, reward, next_state, discount = all_transitions(source.steps(dataset),
                                                                  observation_key)
    ensemble = Ensemble(state.shape[1], action.shape[1], config)
    return cls(ensemble, model_data(state, action, reward, next_state, discount == 0.0),
               max_epochs)

  # -- the learner --------------------------------------------------------------------------

  def _epoch_order(self, key: jax.Array) -> jax.Array:
    """``[E, num_batches * B]`` positions into the train rows for one epoch."""
    c, members, used = self.config, self.config.num_members, self.num_batches * self.config.batch_size
    if c.bootstrap:
      return jax.random.randint(key, (members, used), 0, self.num_train)
    order = jax.vmap(lambda k: jax.random.permutation(k, self.num_train))(
        jax.random.split(key, members))
    return order[:, :used].astype(jnp.int32)

  def _holdout_mse(self, model: EnsembleModel, data: ModelData, ids: jax.Array) -> jax.Array:
    return self.ensemble.holdout_metrics(model, data.state[ids], data.action[ids],
                                         data.target[ids])["mse"]

  def init(self, key: jax.Array) -> EnsembleTrainState:
    split_key, init_key, key = jax.random.split(key, 3)
    perm = jax.random.permutation(split_key, self.num_transitions).astype(jnp.int32)
    holdout_ids, train_ids = perm[:self.num_holdout], perm[self.num_holdout:]
    inputs = jnp.concatenate([self.data.state[train_ids], self.data.action[train_ids]], -1)
    std = inputs.std(0)
    model = self.ensemble.init(init_key).replace(
        input_mean=inputs.mean(0), input_std=jnp.where(std < 1e-6, 1.0, std))
    mse = jax.jit(self._holdout_mse)(model, self.data, holdout_ids)
    key, epoch_key = jax.random.split(key)
    return EnsembleTrainState(
        model=model, opt_state=self._optimizer.init(model.params),
        best_params=model.params, best_mse=mse, last_mse=mse,
        since_improved=jnp.zeros((), jnp.int32), stopped=jnp.zeros((), bool),
        epoch=jnp.zeros((), jnp.int32), cursor=jnp.zeros((), jnp.int32),
        order=self._epoch_order(epoch_key), train_ids=train_ids, holdout_ids=holdout_ids,
        key=key, step=jnp.zeros((), jnp.int32))

  def update(self, state: EnsembleTrainState, batch: None,
             frozen: ModelData) -> tuple[EnsembleTrainState, Dict[str, jax.Array]]:
    """One Adam step on the next batch of the epoch (and, after an epoch's last batch, the
    holdout check); a no-op once stopped."""
    del batch
    c, data = self.config, frozen
    b = c.batch_size

    def train_step(state: EnsembleTrainState):
      rows = jax.lax.dynamic_slice_in_dim(state.order, state.cursor * b, b, axis=1)
      ids = state.train_ids[rows]  # [E, B]
      batch = ModelBatch(data.state[ids], data.action[ids], data.target[ids],
                         data.terminal[ids])
      loss_fn = lambda p: self.ensemble.loss(state.model.replace(params=p), batch)
      (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.model.params)
      updates, opt_state = self._optimizer.update(grads, state.opt_state, state.model.params)
      model = state.model.replace(params=optax.apply_updates(state.model.params, updates))
      new = state.replace(model=model, opt_state=opt_state, cursor=state.cursor + 1,
                          step=state.step + 1)
      new = jax.lax.cond(new.cursor == self.num_batches, self._end_epoch, lambda s, d: s, new,
                         data)
      return new, {"model_loss": loss, **{f"model_{k}": v for k, v in metrics.items()}}

    def stay(state: EnsembleTrainState):
      zero = jnp.zeros((), jnp.float32)
      metrics = {"model_loss": zero, "model_nll": zero, "model_mse": zero, "model_decay": zero}
      if c.get("learn_termination", False):
        metrics["model_termination_bce"] = zero
      return state, metrics

    return jax.lax.cond(state.stopped, stay, train_step, state)

  def _end_epoch(self, state: EnsembleTrainState, data: ModelData) -> EnsembleTrainState:
    c = self.config
    mse = self._holdout_mse(state.model, data, state.holdout_ids)
    improved = (state.best_mse - mse) / state.best_mse > c.improvement_threshold
    best_members = jax.tree_util.tree_map(
        lambda new, old: jnp.where(improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
        member_subtree(state.model.params), member_subtree(state.best_params))
    best_params = {"params": {**state.model.params["params"], "members": best_members}}
    since = jnp.where(improved.any(), 0, state.since_improved + 1)
    key, epoch_key = jax.random.split(state.key)
    return state.replace(
        best_params=best_params, best_mse=jnp.where(improved, mse, state.best_mse),
        last_mse=mse, since_improved=since, stopped=since > c.patience,
        epoch=state.epoch + 1, cursor=jnp.zeros((), jnp.int32),
        order=self._epoch_order(epoch_key), key=key)

  def phases(self) -> Sequence[Phase]:
    return [Phase("ensemble", "offline", self.max_epochs * self.num_batches, self.update,
                  sampler=None, frozen=lambda source: self.data,
                  steps_per_chunk=self.num_batches, is_done=lambda s: bool(s.stopped),
                  summary=self.summary)]

  def partition_specs(self, state: EnsembleTrainState) -> EnsembleTrainState:
    """Where each leaf of the state goes on a mesh (``worldmodels.parallel``): the member axis
    of the parameters, their Adam moments, the per-member holdout errors and epoch orders on
    ``"members"``; the rest (shared bounds, normalisers, counters, the split) replicated."""

    def spec(path, leaf):
      names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
      on_members = bool(names & {"members", "best_mse", "last_mse", "order"})
      return PartitionSpec("members") if on_members and np.ndim(leaf) else PartitionSpec()

    return jax.tree_util.tree_map_with_path(spec, state)

  def summary(self, state: EnsembleTrainState) -> Dict[str, float]:
    """Holdout figures after the latest epoch (logged once per epoch by the loop)."""
    return {"epoch": float(state.epoch), "holdout_mse": float(jnp.mean(state.last_mse)),
            "best_holdout_mse": float(jnp.mean(state.best_mse)),
            "epochs_since_improved": float(state.since_improved)}

  # -- the result ---------------------------------------------------------------------------

  def trained_model(self, state: EnsembleTrainState) -> EnsembleModel:
    """Each member's best parameters, with the ``num_elites`` best members as elites."""
    model = state.model.replace(params=state.best_params)
    elites = select_elites(np.asarray(state.best_mse), self.config.num_elites)
    return model.replace(elites=jnp.asarray(elites))

  def report(self, state: EnsembleTrainState) -> TrainReport:
    model = self.trained_model(state)
    ids = state.holdout_ids
    metrics = jax.tree_util.tree_map(np.asarray, self.ensemble.holdout_metrics(
        model, self.data.state[ids], self.data.action[ids], self.data.target[ids]))
    elites = np.asarray(model.elites)
    mse_per_dim = metrics["mse_per_dim"][elites].mean(0)
    return TrainReport(
        epochs=int(state.epoch), holdout_mse=metrics["mse"], holdout_nll=metrics["nll"],
        mse_per_dim=mse_per_dim,
        calibration=mse_per_dim / metrics["predicted_var"][elites].mean(0),
        elites=elites, transitions=self.num_transitions)
