"""Recurrent state-space model (RSSM): PlaNet / DreamerV2 / DreamerV3, pure functional.

The latent state is a deterministic GRU state ``deter [B, D]`` plus a stochastic state ``stoch``:
categorical (``[B, V, C]`` one-hot samples of V variables with C classes, straight-through
gradients) or Gaussian (``[B, Z]``). One single-step function, :meth:`RSSM.step`, is scanned over
time both to *observe* (the posterior, given an embedded observation) and to *imagine* (the
prior, with the policy passed in as a function).

Inputs are dicts of observation entries: image entries (uint8 ``[H, W, C]``) go through a CNN
(:mod:`worldmodels.models.conv`), vector entries (concatenated) through an MLP. Encoders and
decoders run on every frame of a ``[B, T]`` batch at once, outside the time scan.

An optional ensemble of K prior heads (``prior_heads``; Offline DV2: 7) predicts the stochastic
statistics from ``deter``: imagination samples from a random head per row, and
:meth:`RSSM.penalty` measures their disagreement (``mean_disagreement``: the std over heads of
their class probabilities / means, averaged over dimensions; ``log_prob_spread``: the std over
heads of the sampled state's log-probability; ``mixture_std``: the std of the heads' mixture,
averaged over dimensions). Every head is trained towards the posterior.

DreamerV3 options (config): ``symlog_inputs`` (vector inputs and their reconstruction targets in
symlog space), ``reward_head="twohot"`` (255 bins in symlog space), ``unimix`` (1% uniform mix of
categorical probabilities), ``kl.style="separate"`` (dynamics and representation losses each with
free bits, scaled 0.5 / 0.1). DreamerV2 defaults: KL balancing 0.8 with free nats 1.0 applied to
the batch mean.

Shapes: ``B`` batch, ``T`` time, ``D`` deter, ``K`` prior heads, ``F = D + V * C`` (or
``D + Z``) features, ``A`` actions. Sequence batches follow the RLDS step convention
(:class:`~worldmodels.data.samplers.SequenceBatch`): ``action[t]`` is taken at ``obs[t]``, and
``reward[t]`` / ``discount[t]`` belong to the transition ``t -> t + 1``, so the heads read them
from the latent at ``t + 1``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from worldmodels.models.base import config_from_metadata
from worldmodels.models.conv import ConvDecoder, ConvEncoder
from worldmodels.rl.networks import MLP

PENALTIES = ("mean_disagreement", "log_prob_spread", "mixture_std")


def default_config() -> ml_collections.ConfigDict:
  """DreamerV2's DMC settings with Offline DV2's (V-D4RL appendix C.1): GRU 200, 32 x 32
  categorical latents, MLPs of 4 x 400 ELU, CNN depth 48, Adam 3e-4 (eps 1e-5, clip 100),
  KL balancing 0.8 with free nats 1, batches of 64 sequences of 50 steps, 7 prior heads."""
  c = ml_collections.ConfigDict()
  c.deter = 200
  c.hidden = 200
  c.stoch = "categorical"  # or "gaussian"
  c.stoch_vars = 32
  c.stoch_classes = 32
  c.gaussian_size = 32
  c.min_std = 0.1
  c.unimix = 0.0  # DreamerV3: 0.01
  c.prior_heads = 7
  c.mlp_layers = (400, 400, 400, 400)
  c.cnn_depth = 48
  c.cnn_layers = 4
  c.conv_impl = "im2col"  # or "lax" (benchmarks.perf rssm measures both)
  c.symlog_inputs = False
  c.reward_head = "mse"  # or "twohot"
  c.twohot_bins = 255
  c.kl = ml_collections.ConfigDict()
  c.kl.style = "balanced"  # DreamerV2; "separate": DreamerV3's dynamics + representation terms
  c.kl.balance = 0.8
  c.kl.free = 1.0
  c.kl.free_avg = True  # balanced: free nats on the batch mean (DreamerV2's free_avg)
  c.kl.scale = 1.0
  c.kl.dyn_scale = 0.5
  c.kl.rep_scale = 0.1
  c.observation_scale = 1.0
  c.reward_scale = 1.0
  c.continue_scale = 1.0
  c.learning_rate = 3e-4
  c.adam_eps = 1e-5
  c.grad_clip = 100.0
  c.weight_decay = 1e-6
  c.batch_size = 64
  c.sequence_length = 50
  c.num_steps = 25_000  # 800 epochs of 100k steps / (64 x 50) (V-D4RL's offline epochs)
  return c


def dreamerv3_options(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Switches ``c`` to DreamerV3's options (symlog inputs, two-hot rewards, 1% unimix, free bits
  1 on separate dynamics / representation terms)."""
  c.symlog_inputs = True
  c.reward_head = "twohot"
  c.unimix = 0.01
  c.kl.style = "separate"
  c.kl.free = 1.0
  return c


# -- transforms -------------------------------------------------------------------------------


def symlog(x: jax.Array) -> jax.Array:
  return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
  return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def twohot_bins(num_bins: int) -> jax.Array:
  """DreamerV3's bins: ``num_bins`` points evenly spaced in symlog space over ``[-20, 20]``."""
  return jnp.linspace(-20.0, 20.0, num_bins)


def twohot(x: jax.Array, bins: jax.Array) -> jax.Array:
  """``symlog(x) [...]`` as weights on its two neighbouring bins ``[..., num_bins]``."""
  y = jnp.clip(symlog(x), bins[0], bins[-1])
  upper = jnp.clip(jnp.searchsorted(bins, y, side="right"), 1, bins.shape[0] - 1)
  lower = upper - 1
  width = bins[upper] - bins[lower]
  w_upper = (y - bins[lower]) / width
  return (jax.nn.one_hot(lower, bins.shape[0]) * (1 - w_upper)[..., None]
          + jax.nn.one_hot(upper, bins.shape[0]) * w_upper[..., None])


def twohot_mean(logits: jax.Array, bins: jax.Array) -> jax.Array:
  """The prediction of a two-hot head: ``symexp(sum softmax(logits) * bins)``."""
  return symexp((jax.nn.softmax(logits, -1) * bins).sum(-1))


# -- latent distributions ---------------------------------------------------------------------


@flax.struct.dataclass
class Latent:
  """An RSSM state: ``deter [..., D]`` and ``stoch [..., V, C]`` (categorical) or ``[..., Z]``."""

  deter: jax.Array
  stoch: jax.Array


def categorical_kl(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  """``KL(p || q)`` of V independent categoricals ``[..., V, C]``, summed over V: ``[...]``."""
  p_log = jax.nn.log_softmax(p_logits, -1)
  q_log = jax.nn.log_softmax(q_logits, -1)
  return (jnp.exp(p_log) * (p_log - q_log)).sum((-2, -1))


def gaussian_kl(p: jax.Array, q: jax.Array) -> jax.Array:
  """``KL(p || q)`` of diagonal Gaussians given as ``[..., 2Z]`` (mean, std), summed: ``[...]``."""
  pm, ps = jnp.split(p, 2, -1)
  qm, qs = jnp.split(q, 2, -1)
  return (jnp.log(qs / ps) + (ps ** 2 + (pm - qm) ** 2) / (2 * qs ** 2) - 0.5).sum(-1)


def kl_loss(post: jax.Array, prior: jax.Array, kl_fn: Callable, config) -> Tuple[jax.Array,
                                                                                  jax.Array]:
  """The KL term of the model loss between posterior and prior statistics ``[...]``.

  ``balanced`` (DreamerV2): ``max(free, a KL(sg(q) || p) + (1 - a) KL(q || sg(p)))`` with
  balance ``a``; the free nats apply to the mean over all rows (``free_avg``) or per row.
  ``separate`` (DreamerV3): ``dyn_scale max(free, KL(sg(q) || p)) + rep_scale max(free,
  KL(q || sg(p)))``, free bits per row. Returns ``(loss, the plain KL(q || p) mean)``.
  """
  sg = jax.lax.stop_gradient
  dyn = kl_fn(sg(post), prior)  # trains the prior
  rep = kl_fn(post, sg(prior))  # trains the posterior
  if config.style == "separate":
    loss = (config.dyn_scale * jnp.maximum(dyn, config.free).mean()
            + config.rep_scale * jnp.maximum(rep, config.free).mean())
  elif config.style == "balanced":
    mixed = config.balance * dyn + (1 - config.balance) * rep
    loss = (jnp.maximum(mixed.mean(), config.free) if config.free_avg
            else jnp.maximum(mixed, config.free).mean())
  else:
    raise ValueError(f"unknown kl.style {config.style!r}; choose balanced or separate")
  return loss, dyn.mean()


# -- networks ---------------------------------------------------------------------------------


class LayerNormGRU(nn.Module):
  """DreamerV2's GRU cell: one dense layer to the three gates, LayerNorm, update bias -1."""

  size: int

  @nn.compact
  def __call__(self, x: jax.Array, h: jax.Array) -> jax.Array:
    parts = nn.LayerNorm()(nn.Dense(3 * self.size, use_bias=False)(jnp.concatenate([x, h], -1)))
    reset, candidate, update = jnp.split(parts, 3, -1)
    candidate = jnp.tanh(jax.nn.sigmoid(reset) * candidate)
    update = jax.nn.sigmoid(update - 1.0)
    return update * candidate + (1 - update) * h


class RSSMNetwork(nn.Module):
  """Every network of the RSSM; its methods are applied one by one (``method=``)."""

  image_keys: Tuple[str, ...]
  image_shapes: Tuple[Tuple[int, ...], ...]
  vector_size: int
  action_dim: int
  config: Any  # a frozen dict of the model config (hashable)

  def setup(self):
    c = self.config
    layers = tuple(c["mlp_layers"])
    depths = tuple(c["cnn_depth"] * 2 ** i for i in range(c["cnn_layers"]))
    self.image_encoders = [ConvEncoder(depths, c["conv_impl"]) for _ in self.image_keys]
    self.image_decoders = [ConvDecoder(shape[0], shape[-1], depths[::-1], c["conv_impl"])
                           for shape in self.image_shapes]
    if self.vector_size:
      self.vector_encoder = MLP(layers[:-1], layers[-1], "elu")
      self.vector_decoder = MLP(layers, self.vector_size, "elu")
    self.img_in = nn.Dense(c["hidden"])
    self.gru = LayerNormGRU(c["deter"])
    stats = self.stats_size
    heads = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                    in_axes=None, out_axes=0, axis_size=c["prior_heads"])
    self.prior = heads((c["hidden"],), stats, "elu")
    self.obs_out = MLP((c["hidden"],), stats, "elu")
    reward_out = c["twohot_bins"] if c["reward_head"] == "twohot" else 1
    self.reward_net = MLP(layers, reward_out, "elu")
    self.continue_net = MLP(layers, 1, "elu")

  @property
  def stats_size(self) -> int:
    c = self.config
    if c["stoch"] == "categorical":
      return c["stoch_vars"] * c["stoch_classes"]
    return 2 * c["gaussian_size"]

  def encode(self, images: Sequence[jax.Array], vector: Optional[jax.Array]) -> jax.Array:
    parts = [enc(x) for enc, x in zip(self.image_encoders, images)]
    if self.vector_size:
      parts.append(nn.elu(self.vector_encoder(vector)))
    return jnp.concatenate(parts, -1)

  def decode(self, features: jax.Array):
    images = [dec(features) for dec in self.image_decoders]
    vector = self.vector_decoder(features) if self.vector_size else None
    return images, vector

  def dynamics(self, stoch_flat: jax.Array, action: jax.Array, deter: jax.Array):
    """``deter_{t+1}`` and the K prior heads' raw statistics ``[K, B, stats]``."""
    x = nn.elu(self.img_in(jnp.concatenate([stoch_flat, action], -1)))
    deter = self.gru(x, deter)
    return deter, self.prior(deter)

  def posterior(self, deter: jax.Array, embed: jax.Array) -> jax.Array:
    return self.obs_out(jnp.concatenate([deter, embed], -1))

  def heads(self, features: jax.Array):
    return self.reward_net(features), self.continue_net(features)[..., 0]

  def init_all(self, images, vector, stoch_flat, action, deter):
    embed = self.encode(images, vector)
    deter, _ = self.dynamics(stoch_flat, action, deter)
    self.posterior(deter, embed)
    features = jnp.concatenate([deter, stoch_flat], -1)
    return self.decode(features), self.heads(features)


@flax.struct.dataclass
class RSSMParams:
  """A trained (or initialised) RSSM: network parameters and the fixed input normalisers.

  Attributes:
    net: the :class:`RSSMNetwork` parameters.
    obs_mean: ``[S]`` mean of the concatenated vector entries (None without any).
    obs_std: ``[S]`` their std (inputs are standardised before any symlog; None without any).
  """

  net: Any
  obs_mean: Optional[jax.Array]
  obs_std: Optional[jax.Array]


@flax.struct.dataclass
class Observed:
  """What :meth:`RSSM.observe` returns for ``[B, T]`` inputs.

  Attributes:
    posterior: :class:`Latent` ``[B, T, ...]`` (samples of the posterior).
    post_stats: ``[B, T, V, C]`` posterior logits (or ``[B, T, 2Z]`` mean and std).
    prior_stats: ``[K, B, T, V, C]`` every prior head's statistics.
  """

  posterior: Latent
  post_stats: jax.Array
  prior_stats: jax.Array


@flax.struct.dataclass
class Imagined:
  """What :meth:`RSSM.imagine` returns from ``N`` start states over ``H`` steps.

  Attributes:
    latents: :class:`Latent` ``[H + 1, N, ...]``, the start first.
    features: ``[H + 1, N, F]``.
    actions: ``[H, N, A]``, ``actions[t]`` taken at ``latents[t]``.
    prior_stats: ``[H, K, N, ...]`` the heads' statistics of ``latents[t + 1]``.
  """

  latents: Latent
  features: jax.Array
  actions: jax.Array
  prior_stats: jax.Array


@dataclasses.dataclass(frozen=True)
class RSSM:
  """The RSSM's static definition and its pure functions (a world model of
  :mod:`worldmodels.models.base`; its parameters are :class:`RSSMParams`).

  Attributes:
    observations: ``((key, shape, dtype), ...)``: the observation entries it encodes and
      reconstructs (images uint8 ``[S, S, C]``, vectors float ``[D]``).
    action_dim: A.
    config: see :func:`default_config`.
  """

  observations: Tuple[Tuple[str, Tuple[int, ...], str], ...]
  action_dim: int
  config: ml_collections.ConfigDict

  kind = "rssm"

  # -- definition ---------------------------------------------------------------------------

  @classmethod
  def for_spec(cls, spec, config: ml_collections.ConfigDict,
               keys: Optional[Sequence[str]] = None) -> "RSSM":
    """The RSSM of a :class:`~worldmodels.data.spec.DataSpec`'s entries ``keys`` (default:
    all), single frames (the RSSM's memory replaces frame stacks)."""
    keys = tuple(keys or sorted(spec.observations))
    missing = [k for k in keys if k not in spec.observations]
    if missing:
      raise ValueError(f"the data has no observation entries {missing} (it has "
                       f"{sorted(spec.observations)}).")
    entries = tuple((k, tuple(spec.observations[k].shape), str(spec.observations[k].dtype))
                    for k in keys)
    return cls(entries, int(spec.action_dim), config)

  def __post_init__(self):
    c = self.config
    if c.stoch not in ("categorical", "gaussian"):
      raise ValueError(f"unknown stoch {c.stoch!r}; choose categorical or gaussian")
    if c.reward_head not in ("mse", "twohot"):
      raise ValueError(f"unknown reward_head {c.reward_head!r}; choose mse or twohot")
    for key, shape, dtype in self.observations:
      if self._is_image(shape, dtype):
        if shape[0] != shape[1] or shape[0] % 2 ** c.cnn_layers:
          raise ValueError(f"observation {key!r} is {list(shape)}: the CNN needs square images "
                           f"whose side divides by 2^cnn_layers = {2 ** c.cnn_layers}.")
      elif len(shape) != 1:
        raise ValueError(f"observation {key!r} is {dtype}{list(shape)}: the RSSM encodes "
                         "uint8 [S, S, C] images and float [D] vectors.")

  @staticmethod
  def _is_image(shape, dtype) -> bool:
    return str(dtype) == "uint8" and len(shape) == 3

  @property
  def image_keys(self) -> Tuple[str, ...]:
    return tuple(k for k, shape, dtype in self.observations if self._is_image(shape, dtype))

  @property
  def vector_keys(self) -> Tuple[str, ...]:
    return tuple(k for k, shape, dtype in self.observations if not self._is_image(shape, dtype))

  @property
  def vector_size(self) -> int:
    return int(sum(shape[0] for k, shape, dtype in self.observations
                   if not self._is_image(shape, dtype)))

  @property
  def network(self) -> RSSMNetwork:
    shapes = {k: shape for k, shape, _ in self.observations}
    frozen = flax.core.freeze(self.config.to_dict())
    return RSSMNetwork(self.image_keys, tuple(shapes[k] for k in self.image_keys),
                       self.vector_size, self.action_dim, frozen)

  @property
  def categorical(self) -> bool:
    return self.config.stoch == "categorical"

  @property
  def feature_size(self) -> int:
    c = self.config
    return c.deter + (c.stoch_vars * c.stoch_classes if self.categorical else c.gaussian_size)

  def metadata(self) -> Dict[str, Any]:
    """The static definition, as stored in an artifact's ``model.json``."""
    return {"observations": [[k, list(shape), dtype] for k, shape, dtype in self.observations],
            "action_dim": self.action_dim, "config": self.config.to_dict()}

  @classmethod
  def from_metadata(cls, meta: Dict[str, Any]) -> "RSSM":
    entries = tuple((k, tuple(shape), dtype) for k, shape, dtype in meta["observations"])
    return cls(entries, int(meta["action_dim"]), config_from_metadata(meta["config"]))

  def fits(self, spec, where: str) -> None:
    """Raises a ``ValueError`` naming ``where`` if ``spec`` lacks the model's observation
    entries (shape and dtype of one frame) or has another action size."""
    problems = []
    for key, shape, dtype in self.observations:
      if key not in spec.observations:
        problems.append(f"observation {key!r} is missing from the data")
        continue
      found = spec.observations[key]
      if tuple(found.shape) != tuple(shape) or str(found.dtype) != dtype:
        problems.append(f"observation {key!r} is {dtype}{list(shape)} in the model and "
                        f"{found.dtype}{list(found.shape)} in the data")
    if spec.action_dim != self.action_dim:
      problems.append(f"actions are {self.action_dim}-d in the model and {spec.action_dim}-d in "
                      "the data")
    if problems:
      raise ValueError(f"{where}: the RSSM does not fit the data: " + "; ".join(problems)
                       + " (train a model on this dataset: python -m experiments.train_model "
                       "--config=experiments/configs/rssm.py).")

  # -- parameters ---------------------------------------------------------------------------

  def init(self, key: jax.Array, obs_mean: Optional[np.ndarray] = None,
           obs_std: Optional[np.ndarray] = None) -> RSSMParams:
    """Fresh parameters; ``obs_mean`` / ``obs_std`` ``[S]`` standardise the vector entries
    (default: identity)."""
    c, shapes = self.config, {k: shape for k, shape, _ in self.observations}
    images = [jnp.zeros((1,) + shapes[k], jnp.float32) for k in self.image_keys]
    vector = jnp.zeros((1, self.vector_size)) if self.vector_size else None
    stoch = jnp.zeros((1, self.feature_size - c.deter))
    init = jax.jit(functools.partial(self.network.init, method=RSSMNetwork.init_all))
    net = init(key, images, vector, stoch, jnp.zeros((1, self.action_dim)),
               jnp.zeros((1, c.deter)))
    s = self.vector_size
    if not s:  # images only: no normalisers (checkpoints cannot hold zero-size arrays)
      return RSSMParams(net, None, None)
    mean = jnp.zeros((s,)) if obs_mean is None else jnp.asarray(obs_mean, jnp.float32)
    std = jnp.ones((s,)) if obs_std is None else jnp.asarray(obs_std, jnp.float32)
    return RSSMParams(net, mean, jnp.where(std < 1e-6, 1.0, std))

  def _apply(self, params: RSSMParams, method, *args):
    return self.network.apply(params.net, *args, method=method)

  # -- observations -------------------------------------------------------------------------

  def preprocess(self, params: RSSMParams, observation: Dict[str, jax.Array]):
    """Network inputs of ``observation`` (entries ``[N, ...]``): images to ``[-0.5, 0.5]``,
    vectors concatenated, standardised (and symlog'd with ``symlog_inputs``)."""
    images = [observation[k].astype(jnp.float32) / 255.0 - 0.5 for k in self.image_keys]
    vector = None
    if self.vector_size:
      vector = jnp.concatenate([observation[k].astype(jnp.float32) for k in self.vector_keys],
                               -1)
      vector = (vector - params.obs_mean) / params.obs_std
      if self.config.symlog_inputs:
        vector = symlog(vector)
    return images, vector

  def embed(self, params: RSSMParams, observation: Dict[str, jax.Array]) -> jax.Array:
    """Embeddings ``[*lead, E]`` of observations with any leading axes ``[*lead, ...]`` (all
    frames at once, outside any scan)."""
    key0, shape0, _ = self.observations[0]
    lead = observation[key0].shape[:observation[key0].ndim - len(shape0)]
    flat = {k: observation[k].reshape((-1,) + observation[k].shape[len(lead):])
            for k, _, _ in self.observations}
    embed = self._apply(params, RSSMNetwork.encode, *self.preprocess(params, flat))
    return embed.reshape(lead + embed.shape[-1:])

  # -- latents ------------------------------------------------------------------------------

  def initial(self, batch: int) -> Latent:
    """The zero state ``[batch, ...]`` of a sequence's start."""
    c = self.config
    stoch = ((batch, c.stoch_vars, c.stoch_classes) if self.categorical
             else (batch, c.gaussian_size))
    return Latent(jnp.zeros((batch, c.deter)), jnp.zeros(stoch))

  def features(self, latent: Latent) -> jax.Array:
    """``[..., F]``: ``deter`` and the flattened ``stoch``."""
    lead = latent.deter.shape[:-1]
    return jnp.concatenate([latent.deter, latent.stoch.reshape(lead + (-1,))], -1)

  def _stats(self, raw: jax.Array) -> jax.Array:
    """Raw network outputs ``[..., stats]`` -> logits ``[..., V, C]`` (with the unimix) or
    ``[..., 2Z]`` mean and std."""
    c = self.config
    if self.categorical:
      logits = raw.reshape(raw.shape[:-1] + (c.stoch_vars, c.stoch_classes))
      if c.unimix:
        probs = (1 - c.unimix) * jax.nn.softmax(logits, -1) + c.unimix / c.stoch_classes
        logits = jnp.log(probs)
      return logits
    mean, std = jnp.split(raw, 2, -1)
    return jnp.concatenate([mean, jax.nn.softplus(std) + c.min_std], -1)

  def sample(self, stats: jax.Array, key: jax.Array) -> jax.Array:
    """A reparameterised sample: one-hot with straight-through gradients ``[..., V, C]``, or
    ``mean + std * noise`` ``[..., Z]``."""
    if self.categorical:
      index = jax.random.categorical(key, stats, -1)
      one_hot = jax.nn.one_hot(index, stats.shape[-1])
      probs = jax.nn.softmax(stats, -1)
      return one_hot + probs - jax.lax.stop_gradient(probs)
    mean, std = jnp.split(stats, 2, -1)
    return mean + std * jax.random.normal(key, mean.shape)

  def kl(self, p: jax.Array, q: jax.Array) -> jax.Array:
    return categorical_kl(p, q) if self.categorical else gaussian_kl(p, q)

  def step(self, params: RSSMParams, latent: Latent, action: jax.Array, key: jax.Array,
           embed: Optional[jax.Array] = None) -> Tuple[Latent, jax.Array, Optional[jax.Array]]:
    """One RSSM step from ``latent [B, ...]`` with ``action [B, A]``: the single-step function of
    both :meth:`observe` and :meth:`imagine`.

    Args:
      embed: ``[B, E]`` the embedded next observation (observe: the new stochastic state is a
        posterior sample), or None (imagine: a sample of a random prior head per row).

    Returns:
      ``(next latent, prior statistics [K, B, ...] of every head, posterior statistics
      [B, ...] or None)``.
    """
    chex.assert_rank(action, 2)
    lead = latent.deter.shape[:-1]
    deter, raw_prior = self._apply(params, RSSMNetwork.dynamics,
                                   latent.stoch.reshape(lead + (-1,)), action, latent.deter)
    prior = self._stats(raw_prior)
    sample_key, head_key = jax.random.split(key)
    if embed is None:
      head = jax.random.randint(head_key, lead, 0, prior.shape[0])
      chosen = jnp.take_along_axis(prior, head.reshape((1,) + lead + (1,) * (prior.ndim - 2)),
                                   axis=0)[0]
      return Latent(deter, self.sample(chosen, sample_key)), prior, None
    post = self._stats(self._apply(params, RSSMNetwork.posterior, deter, embed))
    return Latent(deter, self.sample(post, sample_key)), prior, post

  def observe(self, params: RSSMParams, embed: jax.Array, action: jax.Array,
              is_first: jax.Array, key: jax.Array,
              start: Optional[Latent] = None) -> Observed:
    """Posterior latents of embedded sequences, :meth:`step` scanned over time.

    Args:
      embed: ``[B, T, E]``; action: ``[B, T, A]`` (``action[t]`` taken at ``obs[t]``).
      is_first: ``[B, T]``: the state and previous action are reset to zero there.
      start: the latent before ``t = 0`` (default: zeros).

    Returns:
      :class:`Observed`, time on axis 1.
    """
    b, t = embed.shape[:2]
    chex.assert_shape(action, (b, t, self.action_dim))
    prev_action = jnp.concatenate([jnp.zeros_like(action[:, :1]), action[:, :-1]], 1)
    first = is_first.astype(jnp.float32)

    def body(latent, inputs):
      embed_t, action_t, first_t, key_t = inputs
      keep = 1.0 - first_t
      latent = jax.tree_util.tree_map(
          lambda x: x * keep.reshape(keep.shape + (1,) * (x.ndim - 1)), latent)
      latent, prior, post = self.step(params, latent, action_t * keep[:, None], key_t, embed_t)
      return latent, (latent, prior, post)

    swap = lambda x: jnp.swapaxes(x, 0, 1)
    inputs = (swap(embed), swap(prev_action), swap(first), jax.random.split(key, t))
    start = self.initial(b) if start is None else start
    _, (latents, prior, post) = jax.lax.scan(body, start, inputs)
    return Observed(jax.tree_util.tree_map(swap, latents), swap(post),
                    jnp.moveaxis(prior, 0, 2))

  def imagine(self, params: RSSMParams, policy: Callable[[jax.Array, jax.Array], jax.Array],
              start: Latent, horizon: int, key: jax.Array) -> Imagined:
    """Rolls the prior forward from ``start [N, ...]`` for ``horizon`` steps, :meth:`step`
    scanned with ``policy(features [N, F], key) -> action [N, A]``; gradients flow through the
    dynamics into the actions (dynamics backprop)."""

    def body(latent, key_t):
      policy_key, step_key = jax.random.split(key_t)
      action = policy(self.features(latent), policy_key)
      latent, prior, _ = self.step(params, latent, action, step_key)
      return latent, (latent, action, prior)

    _, (latents, actions, priors) = jax.lax.scan(body, start, jax.random.split(key, horizon))
    latents = jax.tree_util.tree_map(lambda s, x: jnp.concatenate([s[None], x]), start,
                                     latents)
    return Imagined(latents, self.features(latents), actions, priors)

  # -- heads --------------------------------------------------------------------------------

  def reward(self, params: RSSMParams, features: jax.Array) -> jax.Array:
    """The predicted reward ``[...]`` of arriving at ``features [..., F]``."""
    out, _ = self._apply(params, RSSMNetwork.heads, features)
    if self.config.reward_head == "twohot":
      return twohot_mean(out, twohot_bins(self.config.twohot_bins))
    return out[..., 0]

  def continuation(self, params: RSSMParams, features: jax.Array) -> jax.Array:
    """The predicted probability ``[...]`` that the episode goes on after ``features``."""
    _, logit = self._apply(params, RSSMNetwork.heads, features)
    return jax.nn.sigmoid(logit)

  def decode(self, params: RSSMParams, features: jax.Array) -> Dict[str, jax.Array]:
    """Reconstructions ``[N, ...]`` in the network's input space (images in ``[-0.5, 0.5]``,
    vectors standardised / symlog'd) of ``features [N, F]``."""
    images, vector = self._apply(params, RSSMNetwork.decode, features)
    return {**dict(zip(self.image_keys, images)), **({"vector": vector} if vector is not None
                                                     else {})}

  def penalty(self, prior_stats: jax.Array, stoch: jax.Array, kind: str) -> jax.Array:
    """The heads' disagreement ``[...]`` over prior statistics ``[K, ..., V, C]`` (or
    ``[K, ..., 2Z]``) and the sampled next state ``stoch [..., V, C]`` (``log_prob_spread``).

    Identical heads give 0 for ``mean_disagreement`` and ``log_prob_spread``.
    """
    if kind not in PENALTIES:
      raise ValueError(f"unknown penalty {kind!r}; choose one of {PENALTIES}")
    if self.categorical:
      probs = jax.nn.softmax(prior_stats, -1)  # [K, ..., V, C]
      if kind == "mean_disagreement":
        return probs.std(0).mean((-2, -1))
      if kind == "log_prob_spread":
        log_probs = (jax.nn.log_softmax(prior_stats, -1) * jax.lax.stop_gradient(stoch)).sum(
            (-2, -1))
        return log_probs.std(0)
      mixture = probs.mean(0)
      return jnp.sqrt(mixture * (1 - mixture)).mean((-2, -1))
    mean, std = jnp.split(prior_stats, 2, -1)
    if kind == "mean_disagreement":
      return mean.std(0).mean(-1)
    if kind == "log_prob_spread":
      z = jax.lax.stop_gradient(stoch)
      log_probs = (-0.5 * ((z - mean) / std) ** 2 - jnp.log(std)).sum(-1)
      return log_probs.std(0)
    second = (std ** 2 + mean ** 2).mean(0)
    return jnp.sqrt(jnp.maximum(second - mean.mean(0) ** 2, 0.0)).mean(-1)

  # -- training -----------------------------------------------------------------------------

  def loss(self, params: RSSMParams, batch, key: jax.Array) -> Tuple[jax.Array,
                                                                    Dict[str, jax.Array]]:
    """The model loss on a :class:`~worldmodels.data.samplers.SequenceBatch` ``[B, T]``:
    reconstruction (unit-variance Gaussian log-likelihood of every entry, summed over its
    dimensions), reward (MSE or two-hot cross-entropy) and continuation (Bernoulli) read from
    the latent at ``t + 1``, plus the KL term of :func:`kl_loss` averaged over prior heads."""
    c = self.config
    embed = self.embed(params, batch.observation)
    observed = self.observe(params, embed, batch.action, batch.is_first, key)
    features = self.features(observed.posterior)  # [B, T, F]
    b, t = features.shape[:2]
    flat = features.reshape(b * t, -1)
    targets_images, target_vector = self.preprocess(params, {
        k: batch.observation[k].reshape((b * t,) + batch.observation[k].shape[2:])
        for k, _, _ in self.observations})
    recon = self.decode(params, flat)
    metrics = {}
    observation_loss = 0.0
    for key_name, target in zip(self.image_keys, targets_images):
      term = ((recon[key_name] - target) ** 2).sum((-3, -2, -1)).mean() / 2
      metrics[f"{key_name}_loss"] = term
      observation_loss = observation_loss + term
    if self.vector_size:
      term = ((recon["vector"] - target_vector) ** 2).sum(-1).mean() / 2
      metrics["vector_loss"] = term
      observation_loss = observation_loss + term
    next_features = features[:, 1:]
    reward_out, continue_logit = self._apply(params, RSSMNetwork.heads, next_features)
    reward_target = batch.reward[:, :-1]
    if c.reward_head == "twohot":
      bins = twohot_bins(c.twohot_bins)
      reward_loss = -(twohot(reward_target, bins) * jax.nn.log_softmax(reward_out, -1)).sum(
          -1).mean()
      reward_pred = twohot_mean(reward_out, bins)
    else:
      reward_pred = reward_out[..., 0]
      reward_loss = ((reward_pred - reward_target) ** 2).mean() / 2
    continue_target = (batch.discount[:, :-1] > 0).astype(jnp.float32)
    continue_loss = optax.sigmoid_binary_cross_entropy(continue_logit, continue_target).mean()
    # Every prior head is trained towards the posterior.
    kl_terms = jax.vmap(lambda prior: kl_loss(observed.post_stats, prior, self.kl, c.kl))(
        observed.prior_stats)
    kl_term, kl_value = kl_terms[0].mean(), kl_terms[1].mean()
    loss = (c.observation_scale * observation_loss + c.reward_scale * reward_loss
            + c.continue_scale * continue_loss + c.kl.scale * kl_term)
    metrics.update({"loss": loss, "observation_loss": observation_loss,
                    "reward_loss": reward_loss, "continue_loss": continue_loss,
                    "kl_loss": kl_term, "kl": kl_value,
                    "reward_mae": jnp.abs(reward_pred - reward_target).mean(),
                    "prior_entropy": self._entropy(observed.prior_stats).mean(),
                    "post_entropy": self._entropy(observed.post_stats).mean()})
    return loss, metrics

  def _entropy(self, stats: jax.Array) -> jax.Array:
    if self.categorical:
      log_p = jax.nn.log_softmax(stats, -1)
      return -(jnp.exp(log_p) * log_p).sum((-2, -1))
    _, std = jnp.split(stats, 2, -1)
    return (0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.log(std)).sum(-1)

