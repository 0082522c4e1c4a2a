"""Probabilistic ensemble dynamics model (MBPO / MOPO), pure functional.

N members, stacked on a leading axis, each an MLP predicting a diagonal Gaussian over
``y = (s' - s, r)`` from standardised ``x = (s, a)``. Log-variances are soft-bounded by learned
``max_logvar`` / ``min_logvar`` (regularised by ``logvar_bound_coef * (sum max - sum min)``),
weight decay grows with depth, and the model keeps its input statistics and elite indices.

Shapes: ``E`` members, ``B`` rows, ``S`` state dims, ``A`` action dims, ``Y = S + 1``.
Member-batched inputs are ``[E, B, ...]``; shared inputs ``[B, ...]`` are broadcast to all members.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence, Tuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.rl.networks import get_activation


def default_config() -> ml_collections.ConfigDict:
  """Reference settings: ../shared/specs/algorithms.md, "Probabilistic ensemble dynamics"."""
  c = ml_collections.ConfigDict()
  c.num_members = 7
  c.num_elites = 5
  c.hidden_sizes = (200, 200, 200, 200)
  c.activation = "swish"
  c.weight_decays = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)  # per layer, output layer last
  c.init_max_logvar = 0.5
  c.init_min_logvar = -10.0
  c.logvar_bound_coef = 0.01
  c.learning_rate = 1e-3
  c.batch_size = 256
  c.holdout_size = 1000
  c.max_holdout_fraction = 0.2
  c.patience = 5  # epochs without >1% holdout improvement of any member
  c.improvement_threshold = 0.01
  c.max_epochs = 1000
  c.bootstrap = False  # False: each member sees its own shuffle of the data
  c.learn_termination = False  # a per-member logit of "s' is terminal" (tasks without a known fn)
  return c


class _MemberMLP(nn.Module):
  """One member: ``hidden_sizes`` layers then a linear layer to ``2 * Y`` (mean, logvar), and
  with ``learn_termination`` a linear termination-logit head on the last hidden layer."""

  hidden_sizes: Sequence[int]
  output_dim: int
  activation: str
  learn_termination: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
    act = get_activation(self.activation)
    for i, width in enumerate(self.hidden_sizes):
      x = act(nn.Dense(width, name=f"layer_{i}")(x))
    out = nn.Dense(2 * self.output_dim, name=f"layer_{len(self.hidden_sizes)}")(x)
    mean, raw_logvar = jnp.split(out, 2, axis=-1)
    if self.learn_termination:
      logit = nn.Dense(1, name="termination")(x)[..., 0]
    else:
      logit = jnp.full(x.shape[:-1], -jnp.inf)  # never terminal
    return mean, raw_logvar, logit


class EnsembleNetwork(nn.Module):
  """``E`` members vmapped over the leading axis plus the learned log-variance bounds.

  ``__call__(x [E, B, in]) -> (mean [E, B, Y], logvar [E, B, Y], termination logit [E, B])``.
  """

  num_members: int
  hidden_sizes: Sequence[int]
  output_dim: int
  activation: str = "swish"
  init_max_logvar: float = 0.5
  init_min_logvar: float = -10.0
  learn_termination: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
    members = nn.vmap(_MemberMLP, variable_axes={"params": 0}, split_rngs={"params": True},
                      in_axes=0, out_axes=0, axis_size=self.num_members)
    mean, raw, logit = members(self.hidden_sizes, self.output_dim, self.activation,
                               self.learn_termination, name="members")(x)
    max_logvar = self.param("max_logvar", nn.initializers.constant(self.init_max_logvar),
                            (self.output_dim,))
    min_logvar = self.param("min_logvar", nn.initializers.constant(self.init_min_logvar),
                            (self.output_dim,))
    logvar = max_logvar - nn.softplus(max_logvar - raw)
    logvar = min_logvar + nn.softplus(logvar - min_logvar)
    return mean, logvar, logit


@flax.struct.dataclass
class EnsembleModel:
  """A trained (or initialised) ensemble: everything needed to predict, as one pytree.

  Attributes:
    params: network parameters (members stacked on axis 0).
    input_mean: ``[S + A]`` standardisation of ``(s, a)``.
    input_std: ``[S + A]``.
    elites: ``[num_elites]`` int32 member indices, best holdout first.
  """

  params: dict
  input_mean: jax.Array
  input_std: jax.Array
  elites: jax.Array


@dataclasses.dataclass(frozen=True)
class Ensemble:
  """The ensemble's static definition and its pure functions."""

  state_dim: int
  action_dim: int
  config: ml_collections.ConfigDict

  @property
  def network(self) -> EnsembleNetwork:
    c = self.config
    return EnsembleNetwork(c.num_members, tuple(c.hidden_sizes), self.state_dim + 1,
                           c.activation, c.init_max_logvar, c.init_min_logvar,
                           c.get("learn_termination", False))

  def init(self, key: jax.Array) -> EnsembleModel:
    c = self.config
    if not 0 < c.num_elites <= c.num_members:
      raise ValueError(f"num_elites must be in 1..num_members={c.num_members}, "
                       f"got {c.num_elites}")
    if len(c.weight_decays) != len(c.hidden_sizes) + 1:
      raise ValueError(f"weight_decays needs {len(c.hidden_sizes) + 1} entries (one per "
                       f"layer), got {len(c.weight_decays)}")
    in_dim = self.state_dim + self.action_dim
    params = self.network.init(key, jnp.zeros((c.num_members, 1, in_dim)))
    return EnsembleModel(params, jnp.zeros((in_dim,)), jnp.ones((in_dim,)),
                         jnp.arange(c.num_elites, dtype=jnp.int32))

  # -- prediction -------------------------------------------------------------------------

  def _inputs(self, model: EnsembleModel, state: jax.Array, action: jax.Array) -> jax.Array:
    x = jnp.concatenate([state, action], axis=-1)
    return (x - model.input_mean) / model.input_std

  def apply_all(self, model: EnsembleModel, state: jax.Array,
                action: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Every member's Gaussian over ``(delta_s, r)``.

    Args:
      state: ``[B, S]`` (shared by all members) or ``[E, B, S]``.
      action: ``[B, A]`` or ``[E, B, A]``.

    Returns:
      ``mean, logvar``, each ``[E, B, S + 1]``.
    """
    return self._apply(model, state, action)[:2]

  def _apply(self, model: EnsembleModel, state, action):
    """``(mean, logvar, termination logit)`` of every member; inputs as in :meth:`apply_all`."""
    x = self._inputs(model, state, action)
    if x.ndim == 2:
      x = jnp.broadcast_to(x, (self.config.num_members,) + x.shape)
    chex.assert_shape(x, (self.config.num_members, None, self.state_dim + self.action_dim))
    return self.network.apply(model.params, x)

  def step(self, model: EnsembleModel, state: jax.Array, action: jax.Array,
           key: jax.Array) -> Dict[str, jax.Array]:
    """Samples one step per row from a uniformly chosen elite.

    Args:
      state: ``[B, S]``; action: ``[B, A]``.

    Returns:
      ``next_state [B, S]``, ``reward [B]``, ``terminal [B]`` (the chosen member's termination
      probability > 0.5; always False without ``learn_termination``), ``member [B]`` (the
      elite used), and the all-member ``mean`` / ``logvar`` ``[E, B, S + 1]`` for uncertainty
      penalties.
    """
    mean, logvar, logit = self._apply(model, state, action)
    batch = state.shape[0]
    pick_key, noise_key = jax.random.split(key)
    member = model.elites[jax.random.randint(pick_key, (batch,), 0, model.elites.shape[0])]
    rows = jnp.arange(batch)
    mu, lv = mean[member, rows], logvar[member, rows]  # [B, S + 1]
    sample = mu + jnp.exp(0.5 * lv) * jax.random.normal(noise_key, mu.shape)
    return {"next_state": state + sample[:, :-1], "reward": sample[:, -1],
            "terminal": logit[member, rows] > 0.0, "member": member, "mean": mean,
            "logvar": logvar}

  # -- training ---------------------------------------------------------------------------

  def loss(self, params: dict, model: EnsembleModel, x: jax.Array, y: jax.Array,
           terminal: jax.Array | None = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """Gaussian NLL summed over members, bound regulariser, per-layer weight decay, and with
    ``learn_termination`` the binary cross-entropy of the termination head.

    Args:
      x: standardised inputs ``[E, B, S + A]``; y: targets ``[E, B, S + 1]``;
      terminal: ``[E, B]`` float targets (1 = ``s'`` terminal), needed with
        ``learn_termination``.
    """
    c = self.config
    mean, logvar, logit = self.network.apply(params, x)
    nll = ((mean - y) ** 2 * jnp.exp(-logvar) + logvar).mean(axis=(1, 2))  # [E]
    p = params["params"]
    bounds = c.logvar_bound_coef * (p["max_logvar"].sum() - p["min_logvar"].sum())
    members = p["members"]
    decay = sum(wd * 0.5 * jnp.sum(members[f"layer_{i}"]["kernel"] ** 2)
                for i, wd in enumerate(c.weight_decays))
    total = nll.sum() + bounds + decay
    metrics = {"nll": nll.mean(), "mse": ((mean - y) ** 2).mean(), "decay": decay}
    if c.get("learn_termination", False):
      bce = optax.sigmoid_binary_cross_entropy(logit, terminal).mean(axis=1)  # [E]
      total = total + bce.sum()
      metrics["termination_bce"] = bce.mean()
    return total, metrics

  def holdout_metrics(self, model: EnsembleModel, state: jax.Array, action: jax.Array,
                      target: jax.Array) -> Dict[str, jax.Array]:
    """Per-member holdout MSE ``[E]``, NLL ``[E]`` and per-dimension MSE ``[E, S + 1]``."""
    mean, logvar = self.apply_all(model, state, action)
    err = (mean - target) ** 2
    nll = 0.5 * (err * jnp.exp(-logvar) + logvar + jnp.log(2 * jnp.pi)).mean(axis=(1, 2))
    return {"mse": err.mean(axis=(1, 2)), "nll": nll, "mse_per_dim": err.mean(axis=1),
            "predicted_var": jnp.exp(logvar).mean(axis=1)}


def make_targets(state: np.ndarray, reward: np.ndarray, next_state: np.ndarray) -> np.ndarray:
  """``y = (s' - s, r)``: ``[N, S + 1]``."""
  return np.concatenate([next_state - state, reward[:, None]], axis=-1).astype(np.float32)


@dataclasses.dataclass
class TrainReport:
  """What :func:`train_ensemble` measured.

  Attributes:
    epochs: epochs run (early stopping may end before ``max_epochs``).
    holdout_mse: ``[E]`` per-member holdout MSE of the kept (best) parameters.
    holdout_nll: ``[E]`` per-member holdout Gaussian NLL (nats per dimension).
    mse_per_dim: ``[S + 1]`` elites' mean holdout MSE per output dimension.
    calibration: ``[S + 1]`` elites' holdout MSE / mean predicted variance per dimension
      (1 = calibrated, > 1 overconfident).
    elites: ``[num_elites]`` member indices, best first.
    history: per-epoch dicts (train loss, mean holdout MSE).
  """

  epochs: int
  holdout_mse: np.ndarray
  holdout_nll: np.ndarray
  mse_per_dim: np.ndarray
  calibration: np.ndarray
  elites: np.ndarray
  history: list


def _member_subtree(params: dict) -> dict:
  return params["params"]["members"]


def train_ensemble(ensemble: Ensemble, key: jax.Array, state: np.ndarray, action: np.ndarray,
                   reward: np.ndarray, next_state: np.ndarray, *,
                   terminal: np.ndarray | None = None, max_epochs: int | None = None,
                   verbose: bool = False) -> Tuple[EnsembleModel, TrainReport]:
  """Fits the ensemble on transitions with a holdout split, early stopping and elites.

  Each member keeps the parameters of its best holdout epoch; training stops when no member
  improved its holdout MSE by more than ``improvement_threshold`` (relative) for ``patience``
  epochs; the elites are the ``num_elites`` members with the lowest holdout MSE.

  Args:
    state, next_state: ``[N, S]``; action: ``[N, A]``; reward: ``[N]`` (host arrays).
    terminal: ``[N]`` bool, ``s'`` is terminal; required with ``learn_termination``.
    max_epochs: overrides ``config.max_epochs``.

  Returns:
    The trained :class:`EnsembleModel` and a :class:`TrainReport`.
  """
  c = ensemble.config
  n = state.shape[0]
  for name, arr, shape in (("state", state, (n, ensemble.state_dim)),
                           ("action", action, (n, ensemble.action_dim)), ("reward", reward, (n,)),
                           ("next_state", next_state, (n, ensemble.state_dim))):
    if arr.shape != shape:
      raise ValueError(f"train_ensemble: {name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
      raise ValueError(f"train_ensemble: {name} contains NaN or inf")
  learn_termination = c.get("learn_termination", False)
  if learn_termination and (terminal is None or np.shape(terminal) != (n,)):
    raise ValueError(f"train_ensemble: learn_termination needs terminal of shape {(n,)}")
  terminal = np.zeros((n,), np.float32) if terminal is None else np.asarray(terminal, np.float32)
  inputs = np.concatenate([state, action], -1).astype(np.float32)
  targets = make_targets(state, reward, next_state)

  # Holdout split.
  key, split_key, init_key = jax.random.split(key, 3)
  perm = np.asarray(jax.random.permutation(split_key, n))
  num_holdout = int(min(c.holdout_size, int(n * c.max_holdout_fraction)))
  if num_holdout < 1 or n - num_holdout < c.batch_size:
    raise ValueError(f"train_ensemble: {n} transitions are too few for a holdout of "
                     f"{num_holdout} and batches of {c.batch_size}")
  hold, train = perm[:num_holdout], perm[num_holdout:]
  mean = inputs[train].mean(0)
  std = inputs[train].std(0)
  std = np.where(std < 1e-6, 1.0, std).astype(np.float32)
  model = ensemble.init(init_key).replace(input_mean=jnp.asarray(mean), input_std=jnp.asarray(std))

  x_train = jnp.asarray((inputs[train] - mean) / std)
  y_train = jnp.asarray(targets[train])
  t_train = jnp.asarray(terminal[train])
  hold_s, hold_a = jnp.asarray(state[hold]), jnp.asarray(action[hold])
  hold_y = jnp.asarray(targets[hold])
  num_train = x_train.shape[0]
  num_batches = num_train // c.batch_size
  optimizer = optax.adam(c.learning_rate)
  opt_state = optimizer.init(model.params)
  members = c.num_members

  @jax.jit
  def epoch(params, opt_state, key):
    if c.bootstrap:
      order = jax.random.randint(key, (members, num_train), 0, num_train)
    else:
      order = jax.vmap(lambda k: jax.random.permutation(k, num_train))(
          jax.random.split(key, members))
    order = order[:, :num_batches * c.batch_size].reshape(members, num_batches, c.batch_size)

    def body(carry, ids):  # ids [E, batch]
      params, opt_state = carry
      (loss, _), grads = jax.value_and_grad(ensemble.loss, has_aux=True)(
          params, model, x_train[ids], y_train[ids], t_train[ids])
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state),
                                               jnp.swapaxes(order, 0, 1))
    return params, opt_state, losses.mean()

  @jax.jit
  def evaluate(params):
    return ensemble.holdout_metrics(model.replace(params=params), hold_s, hold_a, hold_y)

  params = model.params
  best_params = params
  best_mse = np.asarray(evaluate(params)["mse"])
  since_improved, history = 0, []
  max_epochs = c.max_epochs if max_epochs is None else max_epochs
  epochs = 0
  for epochs in range(1, max_epochs + 1):
    key, epoch_key = jax.random.split(key)
    params, opt_state, train_loss = epoch(params, opt_state, epoch_key)
    mse = np.asarray(evaluate(params)["mse"])
    if not np.all(np.isfinite(mse)):
      raise FloatingPointError(f"train_ensemble: non-finite holdout MSE at epoch {epochs}")
    improved = (best_mse - mse) / best_mse > c.improvement_threshold
    if improved.any():
      keep = jnp.asarray(improved)
      best_members = jax.tree_util.tree_map(
          lambda new, old: jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
          _member_subtree(params), _member_subtree(best_params))
      best_params = {"params": {**params["params"], "members": best_members}}
      best_mse = np.where(improved, mse, best_mse)
      since_improved = 0
    else:
      since_improved += 1
    history.append({"epoch": epochs, "train_loss": float(train_loss),
                    "holdout_mse": float(mse.mean())})
    if verbose:
      print(f"[ensemble] epoch {epochs} train loss {float(train_loss):.4f} holdout mse "
            f"{mse.mean():.5f} (best {best_mse.mean():.5f})", flush=True)
    if since_improved > c.patience:
      break

  metrics = jax.tree_util.tree_map(np.asarray, evaluate(best_params))
  elites = select_elites(metrics["mse"], c.num_elites)
  model = model.replace(params=best_params, elites=jnp.asarray(elites))
  report = TrainReport(
      epochs=epochs, holdout_mse=metrics["mse"], holdout_nll=metrics["nll"],
      mse_per_dim=metrics["mse_per_dim"][elites].mean(0),
      calibration=(metrics["mse_per_dim"][elites].mean(0)
                   / metrics["predicted_var"][elites].mean(0)),
      elites=elites, history=history)
  return model, report


# -- uncertainty penalties: each maps all-member predictions [E, B, Y] to [B] ---------------


def max_aleatoric_std_norm(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """MOPO: ``max_i || sigma_i(s, a) ||_2`` over members."""
  del mean
  return jnp.linalg.norm(jnp.exp(0.5 * logvar), axis=-1).max(axis=0)


def mean_disagreement(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Ensemble disagreement: ``|| std_i(mu_i) ||_2``, the spread of the members' means."""
  del logvar
  return jnp.linalg.norm(mean.std(axis=0), axis=-1)


def mixture_std(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Norm of the std of the equal-weight mixture of the members' Gaussians (Lu et al. 2022):
  ``Var = E_i[sigma_i^2 + mu_i^2] - (E_i mu_i)^2``."""
  var = (jnp.exp(logvar) + mean**2).mean(axis=0) - mean.mean(axis=0) ** 2
  return jnp.linalg.norm(jnp.sqrt(jnp.maximum(var, 0.0)), axis=-1)


PENALTIES = {"max_aleatoric": max_aleatoric_std_norm, "disagreement": mean_disagreement,
             "mixture_std": mixture_std}


def select_elites(holdout_mse: np.ndarray, num_elites: int) -> np.ndarray:
  """The ``num_elites`` members with the lowest holdout MSE, best first."""
  return np.argsort(np.asarray(holdout_mse), kind="stable")[:num_elites].astype(np.int32)


def shard_members(model: EnsembleModel, devices: Sequence[jax.Device] | None = None
                  ) -> EnsembleModel:
  """Places the member axis of the parameters across ``devices`` (default: all devices);
  the shared log-variance bounds and normalisers are replicated.

  ``E`` must be divisible by the number of devices. Computation with the returned model is
  unchanged numerically; XLA partitions the member axis.
  """
  from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top

  devices = list(devices if devices is not None else jax.devices())
  mesh = Mesh(np.asarray(devices), ("members",))
  members = _member_subtree(model.params)
  num = jax.tree_util.tree_leaves(members)[0].shape[0]
  if num % len(devices):
    raise ValueError(f"shard_members: {num} members do not split over {len(devices)} devices")
  split = NamedSharding(mesh, PartitionSpec("members"))
  replicated = NamedSharding(mesh, PartitionSpec())
  sharded_members = jax.tree_util.tree_map(lambda x: jax.device_put(x, split), members)
  rest = {k: jax.device_put(v, replicated) for k, v in model.params["params"].items()
          if k != "members"}
  params = {"params": {**rest, "members": sharded_members}}
  return EnsembleModel(params, jax.device_put(model.input_mean, replicated),
                       jax.device_put(model.input_std, replicated),
                       jax.device_put(model.elites, replicated))
