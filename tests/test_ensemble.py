"""Probabilistic ensemble: analytic recovery, elites, penalties, sampling, sharding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from worldmodels.models import ensemble as ens

S, A = 3, 2
NOISE = 0.05


def _linear_system(n: int, seed: int = 0):
  """s' = s + s @ M + a @ N + eps, r = s . w + eps, eps ~ N(0, NOISE^2)."""
  rng = np.random.default_rng(seed)
  m = np.array([[0.1, -0.2, 0.0], [0.05, 0.1, 0.2], [0.0, 0.3, -0.1]], np.float32)
  nn_ = np.array([[0.5, 0.0, -0.3], [0.0, 0.4, 0.2]], np.float32)
  w = np.array([1.0, -0.5, 0.25], np.float32)
  s = rng.normal(size=(n, S)).astype(np.float32)
  a = rng.uniform(-1, 1, size=(n, A)).astype(np.float32)
  s2 = s + s @ m + a @ nn_ + NOISE * rng.normal(size=(n, S)).astype(np.float32)
  r = s @ w + NOISE * rng.normal(size=n).astype(np.float32)
  return s, a, r.astype(np.float32), s2


def _config(**overrides):
  c = ens.default_config()
  c.num_members, c.num_elites, c.hidden_sizes = 4, 3, (64, 64)
  c.weight_decays = (2.5e-5, 5e-5, 1e-4)
  c.batch_size, c.holdout_size, c.patience = 128, 500, 5
  c.learning_rate = 3e-3
  c.update(overrides)
  return c


@pytest.fixture(scope="module")
def trained():
  model_def = ens.Ensemble(S, A, _config())
  data = _linear_system(5000)
  model, report = ens.train_ensemble(model_def, jax.random.PRNGKey(0), *data, max_epochs=60)
  return model_def, model, report


def test_recovers_linear_system_and_noise_level(trained):
  _, _, report = trained
  # The best possible MSE is the noise variance; members get close to it.
  assert report.holdout_mse.min() < 2.0 * NOISE**2, report.holdout_mse
  # The predicted variance matches the true noise: calibration ratio near 1 per dimension.
  np.testing.assert_allclose(report.calibration, 1.0, atol=0.5)
  assert report.holdout_nll.min() < 0.5 * np.log(2 * np.pi * np.e * (2 * NOISE**2))
  assert report.epochs <= 60 and len(report.elites) == 3


def test_elites_skip_a_planted_bad_member(trained):
  model_def, model, _ = trained
  s, a, r, s2 = _linear_system(1000, seed=1)
  members = model.params["params"]["members"]
  out_layer = f"layer_{len(model_def.config.hidden_sizes)}"
  kernel = members[out_layer]["kernel"].at[1].multiply(5.0)  # ruin member 1
  bad = jax.tree_util.tree_map(lambda x: x, model.params)
  bad["params"]["members"][out_layer] = {**members[out_layer], "kernel": kernel}
  metrics = model_def.holdout_metrics(model.replace(params=bad), s, a,
                                      jnp.asarray(ens.make_targets(s, r, s2)))
  elites = ens.select_elites(np.asarray(metrics["mse"]), 3)
  assert 1 not in elites
  assert np.argmax(np.asarray(metrics["mse"])) == 1


def test_shapes_and_step_uses_elites_only(trained):
  model_def, model, _ = trained
  s, a, _, _ = _linear_system(64, seed=2)
  mean, logvar = model_def.apply_all(model, s, a)
  assert mean.shape == logvar.shape == (4, 64, S + 1)
  # Member-batched inputs [E, B, D] give the same as broadcast ones.
  mean_b, _ = model_def.apply_all(model, jnp.broadcast_to(s, (4, 64, S)),
                                  jnp.broadcast_to(a, (4, 64, A)))
  np.testing.assert_allclose(mean, mean_b, rtol=1e-6)
  only = model.replace(elites=jnp.asarray([2], jnp.int32))
  out = jax.jit(model_def.step)(only, s, a, jax.random.PRNGKey(0))
  assert (np.asarray(out["member"]) == 2).all()
  assert out["next_state"].shape == (64, S) and out["reward"].shape == (64,)
  # Samples are centred on member 2's mean with its predicted spread.
  keys = jax.random.split(jax.random.PRNGKey(1), 400)
  draws = jax.vmap(lambda k: model_def.step(only, s, a, k)["next_state"])(keys)
  np.testing.assert_allclose(draws.mean(0), s + mean[2, :, :S], atol=0.02)
  np.testing.assert_allclose(draws.std(0), np.exp(0.5 * logvar[2, :, :S]), rtol=0.2)


def test_logvar_bounds():
  model_def = ens.Ensemble(S, A, _config())
  model = model_def.init(jax.random.PRNGKey(0))
  big = jax.tree_util.tree_map(lambda x: x * 1e3, model.params)
  big["params"]["max_logvar"] = model.params["params"]["max_logvar"]
  big["params"]["min_logvar"] = model.params["params"]["min_logvar"]
  _, logvar = model_def.apply_all(model.replace(params=big), jnp.ones((8, S)), jnp.ones((8, A)))
  # The soft upper bound is applied before the soft lower one, so the top can exceed max_logvar
  # by softplus(max - min) - (max - min) = log1p(exp(-10.5)) ~ 2.8e-5 at most.
  assert float(logvar.max()) <= 0.5 + np.log1p(np.exp(-10.5)) + 1e-6
  assert float(logvar.min()) >= -10.0 - 1e-6


def test_penalties_analytic():
  mean = jnp.asarray([[[0.0, 0.0]], [[2.0, 0.0]]])  # E=2, B=1, Y=2
  logvar = jnp.log(jnp.asarray([[[1.0, 4.0]], [[9.0, 1.0]]]))
  np.testing.assert_allclose(ens.max_aleatoric_std_norm(mean, logvar), [np.sqrt(10.0)], rtol=1e-6)
  np.testing.assert_allclose(ens.mean_disagreement(mean, logvar), [1.0], rtol=1e-6)
  # mixture var dim0: E[var + mu^2] - E[mu]^2 = (1 + 0 + 9 + 4)/2 - 1 = 6; dim1: 2.5
  np.testing.assert_allclose(ens.mixture_std(mean, logvar), [np.sqrt(6.0 + 2.5)], rtol=1e-6)


def test_bad_training_input():
  model_def = ens.Ensemble(S, A, _config())
  s, a, r, s2 = _linear_system(2000)
  with pytest.raises(ValueError, match="action has shape"):
    ens.train_ensemble(model_def, jax.random.PRNGKey(0), s, a[:, :1], r, s2)
  s = s.copy()
  s[3, 0] = np.nan
  with pytest.raises(ValueError, match="state contains NaN"):
    ens.train_ensemble(model_def, jax.random.PRNGKey(0), s, a, r, s2)


def test_sharded_members_match_unsharded():
  script = textwrap.dedent("""
      import jax, jax.numpy as jnp, numpy as np
      from worldmodels.models import ensemble as ens
      assert jax.device_count() == 4, jax.devices()
      c = ens.default_config(); c.num_members, c.num_elites = 4, 2
      c.hidden_sizes, c.weight_decays = (32, 32), (0.0, 0.0, 0.0)
      e = ens.Ensemble(3, 2, c)
      model = e.init(jax.random.PRNGKey(0))
      s, a = jnp.ones((16, 3)), jnp.ones((16, 2))
      m1, v1 = jax.jit(e.apply_all)(model, s, a)
      sharded = ens.shard_members(model)
      leaf = sharded.params["params"]["members"]["layer_0"]["kernel"]
      assert len(leaf.sharding.device_set) == 4
      m2, v2 = jax.jit(e.apply_all)(sharded, s, a)
      np.testing.assert_allclose(m1, m2, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)
      print("ok")
  """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=REPO_ROOT, env=env, timeout=120)
  assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_learned_termination_head():
  """Terminal when s'[0] > 0.8: the head learns the boundary and rollouts stop there."""
  s, a, r, s2 = _linear_system(4000, seed=3)
  terminal = s2[:, 0] > 0.8
  config = _config(learn_termination=True, num_members=2, num_elites=2)
  model_def = ens.Ensemble(S, A, config)
  model, _ = ens.train_ensemble(model_def, jax.random.PRNGKey(0), s, a, r, s2,
                                terminal=terminal, max_epochs=30)
  test_s, test_a, _, test_s2 = _linear_system(1000, seed=4)
  out = model_def.step(model, test_s, test_a, jax.random.PRNGKey(1))
  accuracy = (np.asarray(out["terminal"]) == (test_s2[:, 0] > 0.8)).mean()
  assert accuracy > 0.9, accuracy
  with pytest.raises(ValueError, match="learn_termination needs terminal"):
    ens.train_ensemble(model_def, jax.random.PRNGKey(0), s, a, r, s2, max_epochs=1)
  # Without the head nothing terminates.
  plain = ens.Ensemble(S, A, _config())
  assert not bool(plain.step(plain.init(jax.random.PRNGKey(0)), test_s, test_a,
                             jax.random.PRNGKey(1))["terminal"].any())
