"""Shared test fixtures: synthetic episodic steps whose values encode their position."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
# One XLA compilation cache for the whole test session, shared by the test processes and every
# program they start (most of a tiny run is compilation; the cache is per session, so it never
# holds executables of another machine or code version).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jax-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import numpy as np  # noqa: E402

from worldmodels.data.types import Steps  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_steps(lengths, obs_dim: int = 4, action_dim: int = 2, frame=None,
                    terminal_last: bool = False, seed: int = 0) -> Steps:
  """Episodes of ``lengths[i]`` transitions (``lengths[i] + 1`` steps).

  ``state[:, 0]`` is the episode number, ``state[:, 1]`` the step within the episode and
  ``state[:, 2]`` the global step id; rewards are ``global id / 100``; pixels (when ``frame``
  is an ``(H, W, C)`` tuple) are filled with ``global id % 256``.
  """
  rng = np.random.default_rng(seed)
  rows = []
  gid = 0
  for episode, length in enumerate(lengths):
    for t in range(length + 1):
      rows.append((episode, t, gid, t == 0, t == length))
      gid += 1
  n = len(rows)
  state = rng.normal(size=(n, obs_dim)).astype(np.float32)
  state[:, 0] = [r[0] for r in rows]
  state[:, 1] = [r[1] for r in rows]
  state[:, 2] = [r[2] for r in rows]
  is_first = np.array([r[3] for r in rows])
  is_last = np.array([r[4] for r in rows])
  reward = (np.arange(n) / 100).astype(np.float32)
  reward[is_last] = 0.0
  discount = np.ones(n, np.float32)
  discount[is_last] = 0.0
  is_terminal = is_last & terminal_last
  if terminal_last:  # the transition into a terminal step has discount 0
    discount[np.flatnonzero(is_last) - 1] = 0.0
  observation = {"state": state}
  if frame is not None:
    observation["pixels"] = np.broadcast_to(
        (np.arange(n) % 256).astype(np.uint8)[:, None, None, None], (n, *frame)).copy()
  action = rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32)
  action[is_last] = 0.0
  return Steps(observation, action, reward, discount, is_first, is_last, is_terminal)


def tiny_world_model(state_dim: int, action_dim: int):
  """A 3-member, one-layer ensemble (untrained) and its model: ``(Ensemble, EnsembleModel)``."""
  import jax  # pylint: disable=g-import-not-at-top
  from worldmodels.models import ensemble  # pylint: disable=g-import-not-at-top
  c = ensemble.default_config()
  c.num_members, c.num_elites, c.hidden_sizes, c.weight_decays = 3, 2, (16,), (0.0, 0.0)
  model_def = ensemble.Ensemble(state_dim, action_dim, c)
  return model_def, model_def.init(jax.random.PRNGKey(0))


def tiny_rssm(state_dim: int, action_dim: int, prior_heads: int = 3):
  """A tiny state-input RSSM (untrained) and its parameters: ``(RSSM, RSSMParams)``."""
  import jax  # pylint: disable=g-import-not-at-top
  from worldmodels.data.spec import DataSpec  # pylint: disable=g-import-not-at-top
  from worldmodels.models import rssm  # pylint: disable=g-import-not-at-top
  c = rssm.default_config()
  c.deter, c.hidden, c.stoch_vars, c.stoch_classes = 8, 8, 3, 4
  c.prior_heads, c.mlp_layers = prior_heads, (16, 16)
  model = rssm.RSSM.for_spec(DataSpec({"state": ((state_dim,), "float32")}, action_dim), c)
  return model, model.init(jax.random.PRNGKey(0))


def make_source():
  """A data source of three synthetic episodes (60, 70 and 50 steps)."""
  from worldmodels.data.source import DataSource  # pylint: disable=g-import-not-at-top
  return DataSource({"d": synthetic_steps((60, 70, 50))})


def four_member_ensemble_learner(source, max_epochs: int = 3):
  """A 4-member ensemble learner on ``source`` (splits over 4 devices)."""
  from worldmodels.models import ensemble  # pylint: disable=g-import-not-at-top
  from worldmodels.models.ensemble_learner import EnsembleLearner  # pylint: disable=g-import-not-at-top
  c = ensemble.default_config()
  c.num_members, c.num_elites, c.hidden_sizes = 4, 2, (32, 32)
  c.weight_decays, c.batch_size, c.holdout_size = (0.0, 0.0, 0.0), 16, 20
  return EnsembleLearner.from_source(c, source, max_epochs=max_epochs)
