"""World models as artifacts: saved once with everything needed to use them (config, shapes,
normalisers, elites, training report), loaded read-only by agents.

Layout of an artifact directory::

  model.json      kind, format_version, state_dim, action_dim, config, report, provenance
  params/         orbax checkpoint of the model pytree (params, normalisers, elites)
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Tuple

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from worldmodels.models.ensemble import Ensemble, EnsembleModel

FORMAT_VERSION = 1
KIND_ENSEMBLE = "probabilistic_ensemble"


class ModelArtifactError(ValueError):
  """A model artifact is missing, foreign or inconsistent; the message names the path."""


def _to_jsonable(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_to_jsonable(v) for v in value]
  if isinstance(value, (np.ndarray, jax.Array)):
    return np.asarray(value).tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return value


def save_ensemble(path: str, ensemble: Ensemble, model: EnsembleModel,
                  report: Dict[str, Any] | None = None,
                  provenance: Dict[str, Any] | None = None) -> None:
  """Writes a new artifact at ``path`` (which must not exist: artifacts are never overwritten)."""
  path = os.path.abspath(path)
  if os.path.exists(path):
    raise ModelArtifactError(f"{path}: already exists; model artifacts are never overwritten "
                             "(choose another path or delete it yourself).")
  os.makedirs(path)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(path, "params"), jax.tree_util.tree_map(np.asarray, model))
  checkpointer.wait_until_finished()
  meta = {"kind": KIND_ENSEMBLE, "format_version": FORMAT_VERSION,
          "state_dim": ensemble.state_dim, "action_dim": ensemble.action_dim,
          "config": ensemble.config.to_dict(), "elites": np.asarray(model.elites).tolist(),
          "report": _to_jsonable(report or {}), "provenance": _to_jsonable(provenance or {})}
  tmp = os.path.join(path, "model.json.tmp")
  with open(tmp, "w") as f:
    json.dump(meta, f, indent=1)
  os.replace(tmp, os.path.join(path, "model.json"))  # written last: marks the artifact complete


def load_ensemble(path: str) -> Tuple[Ensemble, EnsembleModel, Dict[str, Any]]:
  """Reads an artifact written by :func:`save_ensemble`.

  Returns:
    The static :class:`Ensemble`, its :class:`EnsembleModel` and the ``model.json`` metadata.

  Raises:
    ModelArtifactError: missing path or metadata, another kind of artifact, a newer format,
      or parameters that do not match the recorded shapes.
  """
  path = os.path.abspath(path)
  meta_path = os.path.join(path, "model.json")
  if not os.path.isfile(meta_path):
    raise ModelArtifactError(f"{path}: not a model artifact (no model.json; an interrupted "
                             "save leaves none).")
  try:
    with open(meta_path) as f:
      meta = json.load(f)
  except json.JSONDecodeError as error:
    raise ModelArtifactError(f"{meta_path}: not valid JSON ({error}).") from error
  if meta.get("kind") != KIND_ENSEMBLE:
    raise ModelArtifactError(f"{meta_path}: kind is {meta.get('kind')!r}, expected "
                             f"{KIND_ENSEMBLE!r}.")
  if int(meta.get("format_version", 0)) > FORMAT_VERSION:
    raise ModelArtifactError(f"{meta_path}: format_version {meta['format_version']} is newer "
                             f"than this code supports ({FORMAT_VERSION}).")
  # JSON turned the config's tuples into lists; configs hold sizes as tuples.
  config = ml_collections.ConfigDict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
  ensemble = Ensemble(int(meta["state_dim"]), int(meta["action_dim"]), config)
  like = jax.tree_util.tree_map(np.asarray, ensemble.init(jax.random.PRNGKey(0)))
  try:
    model = ocp.StandardCheckpointer().restore(os.path.join(path, "params"), like)
  except Exception as error:  # orbax raises several types for missing / mismatched trees
    raise ModelArtifactError(f"{path}/params: cannot restore the ensemble parameters "
                             f"({type(error).__name__}: {error})") from error
  expected = jax.tree_util.tree_map(np.shape, like)
  found = jax.tree_util.tree_map(np.shape, model)
  if expected != found:
    raise ModelArtifactError(f"{path}/params: cannot restore the ensemble parameters: their "
                             f"shapes do not match model.json (state_dim "
                             f"{meta['state_dim']}, action_dim {meta['action_dim']}, config).")
  return ensemble, jax.device_put(model), meta
