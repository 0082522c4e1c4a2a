"""The RSSM world model, its convolutions, return helpers and its artifact: analytic tests on
tiny networks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps
from worldmodels.data.samplers import SequenceBatch, SequenceSampler
from worldmodels.data.source import DataSource
from worldmodels.data.spec import ArraySpec, DataSpec
from worldmodels.models import conv, rssm
from worldmodels.rl.returns import lambda_returns, trajectory_weights

A = 2


def tiny_config(stoch: str = "categorical", heads: int = 3):
  c = rssm.default_config()
  c.deter, c.hidden, c.stoch = 6, 5, stoch
  c.stoch_vars, c.stoch_classes, c.gaussian_size = 3, 4, 3
  c.prior_heads, c.mlp_layers = heads, (8, 8)
  c.cnn_depth, c.cnn_layers = 2, 2
  return c


def state_model(stoch="categorical", heads=3, dim=4):
  return rssm.RSSM.for_spec(DataSpec({"state": ArraySpec((dim,), np.float32)}, A),
                            tiny_config(stoch, heads))


def sequence_batch(model, b=2, t=5, key=0):
  rng = np.random.default_rng(key)
  obs = {k: (rng.integers(0, 255, (b, t) + shape).astype(np.uint8) if dtype == "uint8"
             else rng.normal(size=(b, t) + shape).astype(np.float32))
         for k, shape, dtype in model.observations}
  first = np.zeros((b, t), bool)
  first[:, 0] = True
  return SequenceBatch(obs, jnp.asarray(rng.uniform(-1, 1, (b, t, A)), jnp.float32),
                       jnp.asarray(rng.normal(size=(b, t)), jnp.float32),
                       jnp.ones((b, t)), jnp.asarray(first), jnp.zeros((b, t), bool),
                       jnp.zeros((b, t), bool))


# -- one step against the equations -----------------------------------------------------------


def _dense(p, x):
  return x @ np.asarray(p["kernel"]) + (np.asarray(p["bias"]) if "bias" in p else 0.0)


def _elu(x):
  return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _layer_norm(p, x):
  mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-6) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_one_step_matches_the_equations_computed_by_hand():
  """deter' = GRU(elu(W [stoch, a]), deter) with DreamerV2's layer-norm GRU; the prior heads and
  the posterior are 1-hidden-layer ELU MLPs; recomputed here in numpy from the parameters."""
  model = state_model(heads=2)
  params = model.init(jax.random.PRNGKey(0))
  net = params.net["params"]
  rng = np.random.default_rng(1)
  stoch = jax.nn.one_hot(rng.integers(0, 4, (3, 3)), 4)
  latent = rssm.Latent(jnp.asarray(rng.normal(size=(3, 6)), jnp.float32), stoch)
  action = jnp.asarray(rng.uniform(-1, 1, (3, A)), jnp.float32)
  embed = jnp.asarray(rng.normal(size=(3, 8)), jnp.float32)
  new, prior, post = jax.jit(model.step)(params, latent, action, jax.random.PRNGKey(2), embed)

  x = _elu(_dense(net["img_in"], np.concatenate([np.asarray(stoch).reshape(3, -1),
                                                  np.asarray(action)], -1)))
  h = np.asarray(latent.deter)
  parts = _layer_norm(net["gru"]["LayerNorm_0"],
                      _dense(net["gru"]["Dense_0"], np.concatenate([x, h], -1)))
  reset, cand, update = np.split(parts, 3, -1)
  cand = np.tanh(_sigmoid(reset) * cand)
  update = _sigmoid(update - 1)
  deter = update * cand + (1 - update) * h
  np.testing.assert_allclose(new.deter, deter, rtol=1e-5, atol=1e-5)

  heads = net["prior"]
  for k in range(2):
    layer = lambda name: {n: np.asarray(v)[k] for n, v in heads[name].items()}
    logits = _dense(layer("Dense_1"), _elu(_dense(layer("Dense_0"), deter)))
    np.testing.assert_allclose(prior[k], logits.reshape(3, 3, 4), rtol=1e-4, atol=1e-5)
  obs_net = net["obs_out"]
  post_logits = _dense(obs_net["Dense_1"], _elu(_dense(obs_net["Dense_0"], np.concatenate(
      [deter, np.asarray(embed)], -1))))
  np.testing.assert_allclose(post, post_logits.reshape(3, 3, 4), rtol=1e-4, atol=1e-5)
  # The new stochastic state is a one-hot sample of the posterior.
  np.testing.assert_allclose(np.asarray(new.stoch).sum(-1), 1.0, atol=1e-6)
  assert set(np.unique(np.round(np.asarray(new.stoch), 5))) <= {0.0, 1.0}


@pytest.mark.parametrize("stoch", ["categorical", "gaussian"])
def test_observe_and_imagine_give_the_same_shapes_and_the_same_prior(stoch):
  model = state_model(stoch)
  params = model.init(jax.random.PRNGKey(0))
  batch = sequence_batch(model, b=2, t=5)
  observed = jax.jit(lambda p, b: model.observe(p, model.embed(p, b.observation), b.action,
                                                b.is_first, jax.random.PRNGKey(1)))(params, batch)
  features = model.features(observed.posterior)
  assert features.shape == (2, 5, model.feature_size)
  assert observed.prior_stats.shape[:3] == (3, 2, 5)
  # Imagination from the same (zero) start with the same first action: the same first prior.
  first_action = jnp.zeros((2, A))  # observe uses a zero previous action at is_first
  imagined = jax.jit(lambda p: model.imagine(p, lambda f, k: first_action, model.initial(2), 4,
                                             jax.random.PRNGKey(3)))(params)
  assert imagined.features.shape == (5, 2, model.feature_size)
  assert imagined.prior_stats.shape[:3] == (4, 3, 2)
  np.testing.assert_allclose(imagined.prior_stats[0], observed.prior_stats[:, :, 0], atol=1e-6)
  # The step without an observation gives the prior it gives with one.
  step = jax.jit(model.step)
  _, prior_obs, _ = step(params, model.initial(2), first_action, jax.random.PRNGKey(4),
                         model.embed(params, {"state": batch.observation["state"][:, 0]}))
  _, prior_none, post_none = step(params, model.initial(2), first_action, jax.random.PRNGKey(4))
  assert post_none is None
  np.testing.assert_array_equal(prior_obs, prior_none)


def test_observe_resets_the_state_at_episode_starts():
  """A window whose step 3 starts a new episode gives, from step 3 on, the latents of that
  episode observed alone (same keys)."""
  model = state_model()
  params = model.init(jax.random.PRNGKey(0))
  batch = sequence_batch(model, b=1, t=6)
  first = batch.is_first.at[0, 3].set(True)
  embed = model.embed(params, batch.observation)
  keys = jax.random.split(jax.random.PRNGKey(5), 6)

  step = jax.jit(model.step)

  def run(e, a, f, k):  # observe with explicit per-step keys (the scan splits its key)
    latent, outs = model.initial(1), []
    prev = jnp.zeros((1, A))
    for t in range(e.shape[1]):
      keep = 1.0 - f[:, t].astype(jnp.float32)
      latent = jax.tree_util.tree_map(lambda x: x * keep.reshape((-1,) + (1,) * (x.ndim - 1)),
                                      latent)
      latent, _, _ = step(params, latent, prev * keep[:, None], k[t], e[:, t])
      prev = a[:, t]
      outs.append(latent.deter)
    return jnp.stack(outs, 1)

  whole = run(embed, batch.action, first, keys)
  alone = run(embed[:, 3:], batch.action[:, 3:], first[:, 3:], keys[3:])
  np.testing.assert_allclose(whole[:, 3:], alone, atol=1e-6)
  scanned = model.observe(params, embed, batch.action, first, jax.random.PRNGKey(5))
  assert scanned.posterior.deter.shape == whole.shape


# -- KL, straight-through, disagreement -------------------------------------------------------


def test_kl_balancing_and_free_nats_on_a_known_pair():
  post = jnp.log(jnp.array([[[0.5, 0.5]]]))  # one variable of two classes
  prior = jnp.log(jnp.array([[[0.9, 0.1]]]))
  kl = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
  np.testing.assert_allclose(rssm.categorical_kl(post, prior), [kl], rtol=1e-6)
  c = rssm.default_config().kl
  c.free = 0.0
  loss, value = rssm.kl_loss(post, prior, rssm.categorical_kl, c)
  np.testing.assert_allclose([loss, value], [kl, kl], rtol=1e-6)
  # Balancing: the prior gets 0.8 of the KL's gradient, the posterior 0.2.
  g_post, g_prior = jax.grad(lambda q, p: rssm.kl_loss(q, p, rssm.categorical_kl, c)[0],
                             argnums=(0, 1))(post, prior)
  full_post, full_prior = jax.grad(lambda q, p: rssm.categorical_kl(q, p).sum(),
                                   argnums=(0, 1))(post, prior)
  np.testing.assert_allclose(g_prior, 0.8 * full_prior, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(g_post, 0.2 * full_post, rtol=1e-5, atol=1e-7)
  # Free nats: below the threshold the loss is the threshold and no gradient flows.
  c.free = 1.0
  loss, _ = rssm.kl_loss(post, prior, rssm.categorical_kl, c)
  assert float(loss) == 1.0 and kl < 1.0
  grads = jax.grad(lambda p: rssm.kl_loss(post, p, rssm.categorical_kl, c)[0])(prior)
  assert not np.any(np.asarray(grads))
  # DreamerV3's separate terms: 0.5 max(1, KL) + 0.1 max(1, KL) = 0.6 below the free bits.
  c.style = "separate"
  np.testing.assert_allclose(rssm.kl_loss(post, prior, rssm.categorical_kl, c)[0], 0.6, rtol=1e-6)
  # Gaussians: KL(N(0, 1) || N(1, 2)) = log 2 + (1 + 1) / 8 - 1/2.
  p, q = jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 2.0]])
  np.testing.assert_allclose(rssm.gaussian_kl(p, q), [np.log(2) + 0.25 - 0.5], rtol=1e-6)


def test_the_straight_through_gradient_is_not_zero():
  model = state_model()
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 4)), jnp.float32)
  weights = jnp.arange(4.0)
  grad = jax.grad(lambda l: (model.sample(l, jax.random.PRNGKey(0)) * weights).sum())(logits)
  assert np.abs(np.asarray(grad)).sum() > 0.1
  sample = model.sample(logits, jax.random.PRNGKey(0))
  np.testing.assert_allclose(sample.sum(-1), 1.0, atol=1e-6)  # the forward value is one-hot


@pytest.mark.parametrize("stoch", ["categorical", pytest.param("gaussian", marks=pytest.mark.slow)])
def test_identical_heads_disagree_by_exactly_zero(stoch):
  model = state_model(stoch, heads=4)
  params = model.init(jax.random.PRNGKey(0))
  start = model.initial(3)
  start = start.replace(deter=jax.random.normal(jax.random.PRNGKey(2), start.deter.shape))
  imagine = jax.jit(lambda p: model.imagine(p, lambda f, k: jnp.ones((3, A)), start, 2,
                                           jax.random.PRNGKey(1)))
  imagined = imagine(params)
  stats = jnp.moveaxis(imagined.prior_stats, 1, 0)
  stoch_next = imagined.latents.stoch[1:]
  for kind in ("mean_disagreement", "log_prob_spread"):
    assert float(model.penalty(stats, stoch_next, kind).min()) > 0  # independent heads
  copies = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x[:1], x.shape),
                                  params.net["params"]["prior"])
  same = params.replace(net={"params": {**params.net["params"], "prior": copies}})
  imagined = imagine(same)
  stats = jnp.moveaxis(imagined.prior_stats, 1, 0)
  for kind in ("mean_disagreement", "log_prob_spread"):
    assert float(jnp.abs(model.penalty(stats, imagined.latents.stoch[1:], kind)).max()) == 0.0
  assert float(model.penalty(stats, imagined.latents.stoch[1:], "mixture_std").min()) > 0


def test_unimix_keeps_every_class_probable():
  c = tiny_config()
  c.unimix = 0.01
  model = rssm.RSSM.for_spec(DataSpec({"state": ArraySpec((4,), np.float32)}, A), c)
  probs = jax.nn.softmax(model._stats(jnp.array([[100.0] + [0.0] * 11])), -1)
  np.testing.assert_allclose(probs.min(), 0.01 / 4, rtol=1e-3)


# -- losses, transforms, pixels ---------------------------------------------------------------


def test_twohot_and_symlog_round_trip():
  bins = rssm.twohot_bins(255)
  values = jnp.array([-300.0, -1.5, 0.0, 0.3, 7.0, 1234.0])
  weights = rssm.twohot(values, bins)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
  assert int((weights > 0).sum(-1).max()) <= 2
  np.testing.assert_allclose(rssm.twohot_mean(jnp.log(weights + 1e-30), bins), values,
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(rssm.symexp(rssm.symlog(values)), values, rtol=1e-5)


@pytest.mark.parametrize("stride,padding", [(2, 0), (1, 1)])
def test_im2col_convolution_equals_lax(stride, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 9, 9, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3 if padding else 4,) * 2 + (3, 5)), jnp.float32)
  a = conv.conv2d(x, kernel, stride, padding, "im2col")
  b = conv.conv2d(x, kernel, stride, padding, "lax")
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  ga = jax.grad(lambda k: conv.conv2d(x, k, stride, padding, "im2col").sum())(kernel)
  gb = jax.grad(lambda k: conv.conv2d(x, k, stride, padding, "lax").sum())(kernel)
  np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-3)


def test_depth_to_space_places_channels_as_pixels():
  x = jnp.arange(8.0).reshape(1, 1, 2, 4)  # two pixels, four channels each
  out = conv.depth_to_space(x, 2)
  assert out.shape == (1, 2, 4, 1)
  np.testing.assert_array_equal(out[0, :, :, 0], [[0, 1, 4, 5], [2, 3, 6, 7]])


def test_pixel_model_encodes_and_reconstructs_images(tmp_path):
  from worldmodels.models.artifacts import load_model, save_model  # pylint: disable=import-outside-toplevel
  spec = DataSpec({"pixels": ArraySpec((16, 16, 3), np.uint8)}, A)
  model = rssm.RSSM.for_spec(spec, tiny_config())
  params = model.init(jax.random.PRNGKey(0))
  batch = sequence_batch(model, b=2, t=3)
  loss, metrics = jax.jit(model.loss)(params, batch, jax.random.PRNGKey(1))
  assert np.isfinite(float(loss)) and float(metrics["pixels_loss"]) > 0
  shapes = jax.eval_shape(lambda p: (model.embed(p, batch.observation),
                                     model.decode(p, jnp.zeros((5, model.feature_size)))), params)
  assert shapes[0].shape[:2] == (2, 3) and shapes[1]["pixels"].shape == (5, 16, 16, 3)
  # Images only: no vector normalisers, and the parameters save and load (orbax refuses
  # zero-size arrays, in artifacts and in the training loop's checkpoints alike).
  assert params.obs_mean is None and params.obs_std is None
  save_model(str(tmp_path / "pixels"), model, params)
  _, loaded, _ = load_model(str(tmp_path / "pixels"), kind="rssm")
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)
  with pytest.raises(ValueError, match="square images whose side divides"):
    rssm.RSSM.for_spec(DataSpec({"pixels": ArraySpec((18, 18, 3), np.uint8)}, A),
                       tiny_config())


def test_lambda_returns_by_hand():
  rewards = jnp.array([[1.0], [2.0]])
  values = jnp.array([[0.0], [10.0], [20.0]])
  cont = jnp.array([[0.5], [0.9]])
  lam = 0.5
  r1 = 2.0 + 0.9 * 20.0  # R_1 = r_1 + c_1 V_2 (R_2 = V_2)
  r0 = 1.0 + 0.5 * ((1 - lam) * 10.0 + lam * r1)
  np.testing.assert_allclose(lambda_returns(rewards, values, cont, lam)[:, 0], [r0, r1],
                             rtol=1e-6)
  np.testing.assert_allclose(trajectory_weights(cont)[:, 0], [1.0, 0.5])


# -- the trained model as an artifact ---------------------------------------------------------


@functools.lru_cache(maxsize=None)
def trained(options: str):
  """An RSSM learner (DreamerV2 defaults, or with DreamerV3's options) after 40 updates on one
  batch of synthetic sequences: ``(learner, state, first metrics, last metrics, source)``."""
  from worldmodels.models.rssm_learner import RSSMLearner  # pylint: disable=import-outside-toplevel
  source = DataSource({"d": synthetic_steps((30, 30, 30), obs_dim=4, action_dim=A)})
  c = tiny_config()
  if options == "dreamerv3":
    rssm.dreamerv3_options(c)
  c.batch_size, c.sequence_length, c.learning_rate = 4, 6, 3e-3
  learner = RSSMLearner.from_source(c, source, observation_keys=("state",))
  learner.sampler.prepare(source)
  batch = learner.sampler(source.arrays, jax.random.PRNGKey(1))
  update = jax.jit(learner.update)
  state = learner.init(jax.random.PRNGKey(0))
  _, first = update(state, batch)
  for _ in range(40):
    state, metrics = update(state, batch)
  return learner, state, first, metrics, source


@pytest.mark.parametrize("options", ["dreamerv2", pytest.param("dreamerv3",
                                                                marks=pytest.mark.slow)])
def test_the_learner_trains_every_term(options):
  """Updates on one batch lower the reconstruction, reward and total losses (the loss is wired
  to the parameters, with DreamerV3's symlog / two-hot / unimix / free-bits options too)."""
  learner, state, first, last, _ = trained(options)
  assert isinstance(learner.sampler, SequenceSampler) and int(state.step) == 40
  for term in ("model_vector_loss", "model_reward_loss", "model_loss"):
    assert float(last[term]) < 0.7 * float(first[term]), term


def test_the_artifact_round_trips_and_refuses_another_dataset(tmp_path):
  from worldmodels.models.artifacts import ModelArtifactError, load_model, save_model  # pylint: disable=import-outside-toplevel
  learner, state, _, _, source = trained("dreamerv2")
  np.testing.assert_allclose(learner.obs_mean, source.spec().observation_mean["state"])
  np.testing.assert_allclose(learner.trained_model(state).obs_mean, learner.obs_mean)
  path = str(tmp_path / "rssm")
  save_model(path, learner.model, learner.trained_model(state), report={"steps": 40})
  model, params, meta = load_model(path, kind="rssm")
  assert model == learner.model and meta["report"]["steps"] == 40
  for a, b in zip(jax.tree_util.tree_leaves(params),
                  jax.tree_util.tree_leaves(learner.trained_model(state))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ModelArtifactError, match="already exists"):
    save_model(path, learner.model, params)
  with pytest.raises(ModelArtifactError, match="kind is 'rssm', expected"):
    load_model(path, kind="probabilistic_ensemble")
  with pytest.raises(ValueError, match=r"observation 'state' is float32\[4\] in the model and "
                     r"float32\[5\] in the data; actions are 2-d in the model and 3-d"):
    model.fits(DataSpec({"state": ArraySpec((5,), np.float32)}, 3), path)
