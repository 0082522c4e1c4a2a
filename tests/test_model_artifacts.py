"""World-model artifacts: save / load round trip, refusal to overwrite, clear errors, launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, synthetic_steps
from worldmodels.data import write_dataset
from worldmodels.models import ensemble as ens
from worldmodels.models.artifacts import ModelArtifactError, load_ensemble, save_ensemble


def _tiny():
  c = ens.default_config()
  c.num_members, c.num_elites, c.hidden_sizes = 3, 2, (16,)
  c.weight_decays = (1e-5, 1e-5)
  return ens.Ensemble(4, 2, c)


def test_round_trip(tmp_path):
  model_def = _tiny()
  model = model_def.init(jax.random.PRNGKey(0)).replace(
      input_mean=jnp.arange(6.0), elites=jnp.asarray([2, 0], jnp.int32))
  save_ensemble(str(tmp_path / "m"), model_def, model, report={"mse": np.ones(3)},
                provenance={"dataset": "x"})
  loaded_def, loaded, meta = load_ensemble(str(tmp_path / "m"))
  assert loaded_def == model_def
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, model)
  assert meta["report"]["mse"] == [1.0, 1.0, 1.0] and meta["elites"] == [2, 0]
  s, a = jnp.ones((5, 4)), jnp.ones((5, 2))
  np.testing.assert_array_equal(loaded_def.apply_all(loaded, s, a)[0],
                                model_def.apply_all(model, s, a)[0])
  with pytest.raises(ModelArtifactError, match="never overwritten"):
    save_ensemble(str(tmp_path / "m"), model_def, model)


def test_errors_name_the_path(tmp_path):
  with pytest.raises(ModelArtifactError, match="not a model artifact"):
    load_ensemble(str(tmp_path))
  model_def = _tiny()
  save_ensemble(str(tmp_path / "m"), model_def, model_def.init(jax.random.PRNGKey(0)))
  meta_path = tmp_path / "m" / "model.json"
  meta = json.load(open(meta_path))
  json.dump({**meta, "kind": "rssm"}, open(meta_path, "w"))
  with pytest.raises(ModelArtifactError, match="kind is 'rssm'"):
    load_ensemble(str(tmp_path / "m"))
  json.dump({**meta, "state_dim": 9}, open(meta_path, "w"))
  with pytest.raises(ModelArtifactError, match="cannot restore"):
    load_ensemble(str(tmp_path / "m"))


def test_train_model_launcher(tmp_path):
  steps = synthetic_steps((60, 60, 60), obs_dim=4, action_dim=2)
  write_dataset(str(tmp_path / "data"), steps, task="synthetic", behaviour_policy="random",
                action_repeat=1, seed=0)
  out = subprocess.run(
      [sys.executable, "-m", "experiments.train_model",
       "--config=experiments/configs/ensemble.py:tiny",
       f"--config.dataset.path={tmp_path / 'data'}", f"--config.output={tmp_path / 'model'}"],
      capture_output=True, text=True, cwd=REPO_ROOT, timeout=180)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "holdout MSE per member" in out.stdout and "elites" in out.stdout
  model_def, model, meta = load_ensemble(str(tmp_path / "model"))
  assert model_def.state_dim == 4 and meta["provenance"]["task"] == "synthetic"
  again = subprocess.run(
      [sys.executable, "-m", "experiments.train_model",
       "--config=experiments/configs/ensemble.py:tiny",
       f"--config.dataset.path={tmp_path / 'data'}", f"--config.output={tmp_path / 'model'}"],
      capture_output=True, text=True, cwd=REPO_ROOT, timeout=180)
  assert again.returncode == 1 and "never overwritten" in again.stderr
  assert "Traceback" not in again.stderr
