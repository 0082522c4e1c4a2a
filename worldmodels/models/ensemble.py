"""Probabilistic ensemble dynamics model (MBPO / MOPO), pure functional.

N members, stacked on a leading axis, each an MLP predicting a diagonal Gaussian over
``y = (s' - s, r)`` from standardised ``x = (s, a)``. Log-variances are soft-bounded by learned
``max_logvar`` / ``min_logvar`` (regularised by ``logvar_bound_coef * (sum max - sum min)``),
weight decay grows with depth, and the model keeps its input statistics and elite indices.

Shapes: ``E`` members, ``B`` rows, ``S`` state dims, ``A`` action dims, ``Y = S + 1``.
Member-batched inputs are ``[E, B, ...]``; shared inputs ``[B, ...]`` are broadcast to all members.

:class:`Ensemble` implements the world-model protocol of :mod:`worldmodels.models.base`; it is
trained by the loop phase of :mod:`worldmodels.models.ensemble_learner` and saved as an artifact
(:mod:`worldmodels.models.artifacts`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Sequence, Tuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.models.base import config_from_metadata
from worldmodels.models.rollouts import Rollout, rollout
from worldmodels.rl.networks import get_activation


def default_config() -> ml_collections.ConfigDict:
  """MBPO / MOPO settings: 7 members (5 elites) of 4 x 200 swish layers, Adam 1e-3, batch 256,
  a holdout of min(1000, 20%) transitions and early stopping after 5 epochs without a 1%
  improvement of any member."""
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


@flax.struct.dataclass
class ModelBatch:
  """Member-batched training rows: ``state [E, B, S]``, ``action [E, B, A]``, ``target
  [E, B, S + 1]`` (``y = (s' - s, r)``) and ``terminal [E, B]`` (1.0 where ``s'`` is terminal)."""

  state: jax.Array
  action: jax.Array
  target: jax.Array
  terminal: jax.Array


@dataclasses.dataclass(frozen=True)
class Ensemble:
  """The ensemble's static definition and its pure functions (a world model of
  :mod:`worldmodels.models.base`; its parameters are an :class:`EnsembleModel`)."""

  state_dim: int
  action_dim: int
  config: ml_collections.ConfigDict

  kind = "probabilistic_ensemble"

  @property
  def network(self) -> EnsembleNetwork:
    c = self.config
    return EnsembleNetwork(c.num_members, tuple(c.hidden_sizes), self.state_dim + 1,
                           c.activation, c.init_max_logvar, c.init_min_logvar,
                           c.get("learn_termination", False))

  def metadata(self) -> Dict[str, Any]:
    """The static definition, as stored in an artifact's ``model.json``."""
    return {"state_dim": self.state_dim, "action_dim": self.action_dim,
            "config": self.config.to_dict()}

  @classmethod
  def from_metadata(cls, meta: Dict[str, Any]) -> "Ensemble":
    return cls(int(meta["state_dim"]), int(meta["action_dim"]),
               config_from_metadata(meta["config"]))

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

  def penalty(self, name: str) -> Callable[[Dict[str, jax.Array]], jax.Array]:
    """The uncertainty penalty ``name`` (see ``PENALTIES``) of a :meth:`step` output: ``[B]``."""
    if name not in PENALTIES:
      raise ValueError(f"unknown penalty {name!r}; choose one of {sorted(PENALTIES)}")
    return lambda out: PENALTIES[name](out["mean"], out["logvar"])

  def imagine(self, model: EnsembleModel, policy, start: jax.Array, horizon: int,
              key: jax.Array, *, penalty: str = "max_aleatoric", penalty_coef: float = 0.0,
              termination_fn=None) -> Rollout:
    """Branched rollouts of ``policy`` from ``start [N, S]`` (:func:`rollouts.rollout`), rewards
    penalised by ``penalty_coef`` times the ``penalty`` uncertainty."""
    return rollout(lambda s, a, k: self.step(model, s, a, k), policy, start, horizon, key,
                   self.penalty(penalty), penalty_coef, termination_fn)

  # -- training ---------------------------------------------------------------------------

  def loss(self, model: EnsembleModel, batch: ModelBatch,
           key: jax.Array | None = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """Gaussian NLL summed over members, bound regulariser, per-layer weight decay, and with
    ``learn_termination`` the binary cross-entropy of the termination head.

    Inputs are standardised with ``model``'s normalisers; gradients flow to ``model.params``.

    Args:
      model: the parameters and normalisers.
      batch: member-batched rows (:class:`ModelBatch`); ``terminal`` is needed with
        ``learn_termination``.
      key: unused (the loss is deterministic).
    """
    del key
    c = self.config
    mean, logvar, logit = self.network.apply(model.params,
                                             self._inputs(model, batch.state, batch.action))
    y = batch.target
    nll = gaussian_nll(mean, logvar, y)  # [E]
    bounds = c.logvar_bound_coef * logvar_bounds(model.params)
    p = model.params["params"]
    members = p["members"]
    decay = sum(wd * 0.5 * jnp.sum(members[f"layer_{i}"]["kernel"] ** 2)
                for i, wd in enumerate(c.weight_decays))
    total = nll.sum() + bounds + decay
    metrics = {"nll": nll.mean(), "mse": ((mean - y) ** 2).mean(), "decay": decay}
    if c.get("learn_termination", False):
      bce = optax.sigmoid_binary_cross_entropy(logit, batch.terminal).mean(axis=1)  # [E]
      total = total + bce.sum()
      metrics["termination_bce"] = bce.mean()
    return total, metrics

  def holdout_metrics(self, model: EnsembleModel, state: jax.Array, action: jax.Array,
                      target: jax.Array) -> Dict[str, jax.Array]:
    """Per-member holdout MSE ``[E]``, NLL ``[E]``, per-dimension MSE ``[E, S + 1]`` and mean
    predicted variance ``[E, S + 1]`` on shared rows ``[B, ...]``."""
    mean, logvar = self.apply_all(model, state, action)
    err = (mean - target) ** 2
    nll = 0.5 * (err * jnp.exp(-logvar) + logvar + jnp.log(2 * jnp.pi)).mean(axis=(1, 2))
    return {"mse": err.mean(axis=(1, 2)), "nll": nll, "mse_per_dim": err.mean(axis=1),
            "predicted_var": jnp.exp(logvar).mean(axis=1)}


def gaussian_nll(mean: jax.Array, logvar: jax.Array, target: jax.Array) -> jax.Array:
  """Per-member Gaussian NLL (without constants), ``[E]`` from ``[E, B, Y]`` predictions: the
  mean over rows and dimensions of ``(mean - y)^2 exp(-logvar) + logvar``."""
  return ((mean - target) ** 2 * jnp.exp(-logvar) + logvar).mean(axis=(1, 2))


def logvar_bounds(params: dict) -> jax.Array:
  """``sum(max_logvar) - sum(min_logvar)`` of an :class:`EnsembleNetwork`'s parameters (the
  bound regulariser, before its coefficient)."""
  p = params["params"]
  return p["max_logvar"].sum() - p["min_logvar"].sum()


def make_targets(state: np.ndarray, reward: np.ndarray, next_state: np.ndarray) -> np.ndarray:
  """``y = (s' - s, r)``: ``[N, S + 1]``."""
  return np.concatenate([next_state - state, reward[:, None]], axis=-1).astype(np.float32)


def member_subtree(params: dict) -> dict:
  """The member-stacked part of the network parameters (leading axis ``E``)."""
  return params["params"]["members"]


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
  members = member_subtree(model.params)
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
