"""World models as artifacts: saved once with everything needed to use them (config, shapes,
normalisers, elites, training report), loaded read-only by agents.

Layout of an artifact directory::

  model.json      kind, format_version, the definition (``model.metadata()``: for the
                  ensemble state_dim, action_dim, config; for the RSSM its observation
                  entries, action_dim, config; for CaDM its sizes and config), report,
                  provenance
  params/         orbax checkpoint of the parameter pytree (for the ensemble: params,
                  normalisers, elites; for the RSSM: params and the input normalisers)

The kind names the world-model class (``KINDS``) that rebuilds the definition, so
``load_model`` loads any kind.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Dict, Optional, Tuple, Type

import jax
import numpy as np
import orbax.checkpoint as ocp

from worldmodels.io import (Lock, atomic_directory, atomic_json, deferred_interrupts,
                            fault_point)
from worldmodels.models.base import WorldModel
from worldmodels.models.ensemble import Ensemble
from worldmodels.models.rssm import RSSM

FORMAT_VERSION = 1
KINDS: Dict[str, Type] = {Ensemble.kind: Ensemble, RSSM.kind: RSSM}
"""Artifact kind -> world-model class of this package (``from_metadata`` rebuilds its
definition)."""
AGENT_KINDS: Dict[str, Tuple[str, str]] = {"cadm": ("worldmodels.agents.cadm.model", "CaDM")}
"""Artifact kind -> (module, class) of a world model defined beside the agent it belongs to,
imported only when an artifact of that kind is saved or loaded (so this package imports no
agent)."""


def known_kinds() -> list:
  return sorted(set(KINDS) | set(AGENT_KINDS))


def kind_class(kind: str) -> Type:
  """The world-model class of artifact ``kind`` (KeyError for an unknown kind)."""
  if kind in KINDS:
    return KINDS[kind]
  module, name = AGENT_KINDS[kind]
  return getattr(importlib.import_module(module), name)


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


def save_model(path: str, model: WorldModel, params: Any,
               report: Dict[str, Any] | None = None,
               provenance: Dict[str, Any] | None = None) -> None:
  """Writes a new artifact of ``model``'s kind at ``path`` (which must not exist: artifacts are
  never overwritten). It is built under ``<path>.partial`` and renamed when complete, so a
  killed save leaves no artifact at ``path``."""
  path = os.path.abspath(path)
  if model.kind not in known_kinds():
    raise ModelArtifactError(f"{path}: no artifact kind {model.kind!r}; known: {known_kinds()}.")
  if os.path.exists(path):
    raise ModelArtifactError(f"{path}: already exists; model artifacts are never overwritten "
                             "(choose another path or delete it yourself).")
  meta = {"kind": model.kind, "format_version": FORMAT_VERSION, **model.metadata(),
          "report": _to_jsonable(report or {}), "provenance": _to_jsonable(provenance or {})}
  with Lock(path, "saving a model artifact"), atomic_directory(path) as partial:
    # This process alone writes (with several processes, the one that saves the artifact).
    me = jax.process_index()
    checkpointer = ocp.StandardCheckpointer(
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}))
    with deferred_interrupts():  # Ctrl-C lands after the save, not inside orbax's threads
      checkpointer.save(os.path.join(partial, "params"),
                        jax.tree_util.tree_map(np.asarray, params))
      checkpointer.wait_until_finished()
    fault_point("artifact.params")  # parameters written, the artifact not complete
    atomic_json(os.path.join(partial, "model.json"), _to_jsonable(meta))


def read_model_metadata(path: str) -> Dict[str, Any]:
  """The ``model.json`` of an artifact (kind, definition, report, provenance).

  Raises:
    ModelArtifactError: missing path or metadata, invalid JSON, an unknown kind or a newer
      format.
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
  if meta.get("kind") not in known_kinds():
    raise ModelArtifactError(f"{meta_path}: kind is {meta.get('kind')!r}, expected one of "
                             f"{known_kinds()}.")
  if int(meta.get("format_version", 0)) > FORMAT_VERSION:
    raise ModelArtifactError(f"{meta_path}: format_version {meta['format_version']} is newer "
                             f"than this code supports ({FORMAT_VERSION}).")
  return meta


def load_model(path: str, kind: Optional[str] = None) -> Tuple[WorldModel, Any, Dict[str, Any]]:
  """Reads an artifact written by :func:`save_model`, of any known kind.

  Args:
    path: the artifact directory.
    kind: the kind the caller needs (None: any).

  Returns:
    ``(model definition, parameters on the device, model.json metadata)``.

  Raises:
    ModelArtifactError: as :func:`read_model_metadata`, another kind than ``kind``, or
      parameters that do not match the recorded definition.
  """
  path = os.path.abspath(path)
  meta = read_model_metadata(path)
  if kind is not None and meta["kind"] != kind:
    raise ModelArtifactError(f"{path}/model.json: kind is {meta['kind']!r}, expected {kind!r}.")
  model = kind_class(meta["kind"]).from_metadata(meta)
  like = jax.tree_util.tree_map(np.asarray, model.init(jax.random.PRNGKey(0)))
  try:
    params = ocp.StandardCheckpointer().restore(os.path.join(path, "params"), like)
  except Exception as error:  # orbax raises several types for missing / mismatched trees
    raise ModelArtifactError(f"{path}/params: cannot restore the {meta['kind']} parameters "
                             f"({type(error).__name__}: {error})") from error
  expected = jax.tree_util.tree_map(np.shape, like)
  found = jax.tree_util.tree_map(np.shape, params)
  if expected != found:
    raise ModelArtifactError(f"{path}/params: cannot restore the {meta['kind']} parameters: "
                             "their shapes do not match the definition in model.json.")
  return model, jax.device_put(params), meta
