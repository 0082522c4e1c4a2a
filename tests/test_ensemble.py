"""Probabilistic ensemble: analytic recovery, elites, penalties, sampling, sharding."""

from __future__ import annotations

import json
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
from worldmodels.models.ensemble_learner import EnsembleLearner, model_data
from worldmodels.training.loop import LoopConfig, train

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


def fit(model_def, data, workdir, max_epochs, terminal=None, **loop):
  """Trains through the common loop; returns ``(learner, final state)``."""
  learner = EnsembleLearner(model_def, model_data(*data, terminal), max_epochs=max_epochs)
  loop = LoopConfig(**{"steps_per_chunk": learner.num_batches, "eval_every": 0,
                       "eval_episodes": 0, "checkpoint_every": 0, "log_every_seconds": 60.0,
                       **loop})
  return learner, train(learner, workdir=str(workdir), loop=loop).state


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  model_def = ens.Ensemble(S, A, _config())
  learner, state = fit(model_def, _linear_system(5000), tmp_path_factory.mktemp("fit"), 60)
  return model_def, learner.trained_model(state), learner.report(state)


def test_recovers_linear_system_and_noise_level(trained):
  _, _, report = trained
  # The best possible MSE is the noise variance; members get close to it.
  assert report.holdout_mse.min() < 2.0 * NOISE**2, report.holdout_mse
  # The predicted variance matches the true noise: calibration ratio near 1 per dimension.
  np.testing.assert_allclose(report.calibration, 1.0, atol=0.5)
  assert report.holdout_nll.min() < 0.5 * np.log(2 * np.pi * np.e * (2 * NOISE**2))
  assert 5 < report.epochs < 60 and len(report.elites) == 3  # early stopping ended it


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
  with pytest.raises(ValueError, match="do not fit a model of 3-d states and 2-d actions"):
    EnsembleLearner(model_def, model_data(s, a[:, :1], r, s2))
  with pytest.raises(ValueError, match="too few for the ensemble.*ensemble.py:tiny"):
    EnsembleLearner(model_def, model_data(s[:100], a[:100], r[:100], s2[:100]))
  s = s.copy()
  s[3, 0] = np.nan
  with pytest.raises(ValueError, match="state contains NaN"):
    model_data(s, a, r, s2)


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


@pytest.mark.slow  # moved out of the default run to keep it under 15 minutes
def test_learned_termination_head(tmp_path):
  """Terminal when s'[0] > 0.8: the head learns the boundary and rollouts stop there."""
  s, a, r, s2 = _linear_system(4000, seed=3)
  terminal = s2[:, 0] > 0.8
  config = _config(learn_termination=True, num_members=2, num_elites=2)
  model_def = ens.Ensemble(S, A, config)
  learner, state = fit(model_def, (s, a, r, s2), tmp_path, 30, terminal=terminal)
  model = learner.trained_model(state)
  test_s, test_a, _, test_s2 = _linear_system(1000, seed=4)
  out = model_def.step(model, test_s, test_a, jax.random.PRNGKey(1))
  accuracy = (np.asarray(out["terminal"]) == (test_s2[:, 0] > 0.8)).mean()
  assert accuracy > 0.9, accuracy
  # Without the head nothing terminates.
  plain = ens.Ensemble(S, A, _config())
  assert not bool(plain.step(plain.init(jax.random.PRNGKey(0)), test_s, test_a,
                             jax.random.PRNGKey(1))["terminal"].any())


def test_training_phase_killed_and_resumed_ends_with_the_same_parameters(tmp_path):
  """The ensemble phase stopped mid-training (a NaN guard fires after a checkpoint) and rerun
  in the same workdir ends bit-identical to an uninterrupted run, early stopping and elites
  included."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from worldmodels.training.loop import NonFiniteLossError  # pylint: disable=import-outside-toplevel
  model_def = ens.Ensemble(S, A, _config(patience=2))
  data = _linear_system(1500, seed=5)
  learner, reference = fit(model_def, data, tmp_path / "straight", 40, checkpoint_every=18)
  assert 3 < int(reference.epoch) < 40 and bool(reference.stopped)  # stopped early
  batches = learner.num_batches  # 9 per epoch: checkpoints every 2 epochs

  interrupted = EnsembleLearner(model_def, model_data(*data), max_epochs=40)
  phase = interrupted.phases()[0]

  def failing(state, batch, frozen):
    state, metrics = phase.update(state, batch, frozen)
    bad = state.step > 3 * batches + 2  # inside epoch 4, after the checkpoint of epoch 2
    return state, {k: jnp.where(bad, jnp.nan, v) for k, v in metrics.items()}

  loop = LoopConfig(steps_per_chunk=batches, eval_every=0, eval_episodes=0, checkpoint_every=18,
                    log_every_seconds=60.0)
  with pytest.raises(NonFiniteLossError, match="model_loss.*phase 'ensemble'"):
    train(interrupted, workdir=str(tmp_path / "killed"), loop=loop,
          phases=[dataclasses.replace(phase, update=failing)])
  _, resumed = fit(model_def, data, tmp_path / "killed", 40, checkpoint_every=18)
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed, reference)
  np.testing.assert_array_equal(learner.trained_model(resumed).elites,
                                learner.trained_model(reference).elites)
  logged = [json.loads(line) for line in open(tmp_path / "straight" / "train.jsonl")]
  assert [row["epoch"] for row in logged] == list(range(1, int(reference.epoch) + 1))
  assert all("holdout_mse" in row and "model_loss" in row for row in logged)
