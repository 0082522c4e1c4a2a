"""Provenance: the git revision of the code, and fingerprints of what made each output.

A fingerprint (:func:`fingerprint`) records the config, the identity of the data and model an
output came from (content digests of their metadata) and the code version. Every workdir,
pipeline stage, cached evaluation and generated dataset carries one; :func:`claim` reuses an
output only when its fingerprint matches what is asked for, and otherwise refuses, naming what
differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any, Dict, List

from worldmodels.io import atomic_json


def git_revision() -> str:
  """Short hash of HEAD, with ``+dirty`` when tracked files have uncommitted changes (new
  untracked files, such as the results being written, do not count)."""
  here = os.path.dirname(os.path.abspath(__file__))  # inside the repository checkout
  try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=True, cwd=here).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=here).stdout.strip()
    return rev + ("+dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


# -- fingerprints -------------------------------------------------------------------------------

FINGERPRINT_FILE = "fingerprint.json"


class FingerprintError(ValueError):
  """An output was made by something else than what is asked for; the message names what
  differs and how to start fresh."""


def file_digest(path: str | os.PathLike, ignore: tuple = ("created", "updated")) -> str:
  """SHA-256 (16 hex digits) of a JSON file's content without its timestamps (e.g. a dataset's
  ``metadata.json`` or an artifact's ``model.json``): the identity of what it describes."""
  with open(path, encoding="utf-8") as file:
    content = json.load(file)
  if isinstance(content, dict):
    content = {k: v for k, v in content.items() if k not in ignore}
  return digest(content)


def digest(value: Any) -> str:
  """SHA-256 (16 hex digits) of a JSON value, keys sorted."""
  text = json.dumps(value, sort_keys=True, default=str)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(**parts: Any) -> Dict[str, Any]:
  """What made an output: the given parts (config, dataset identity, model identity, ...) and
  the code version (``code``)."""
  return {**json.loads(json.dumps(parts, default=str)), "code": git_revision()}


def _flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
  if isinstance(value, dict):
    out = {}
    for key, item in value.items():
      out.update(_flatten(item, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: value}


def differences(recorded: Dict[str, Any], asked: Dict[str, Any]) -> List[str]:
  """Dotted keys whose values differ (the code version excluded), as ``key: recorded -> asked``."""
  normal = lambda value: json.loads(json.dumps(value, default=str))  # tuples -> lists, as stored
  old, new = _flatten(normal(recorded)), _flatten(normal(asked))
  keys = sorted((set(old) | set(new)) - {"code"})
  return [f"{key}: {old.get(key, '(absent)')!r} -> {new.get(key, '(absent)')!r}"
          for key in keys if old.get(key) != new.get(key)]


def refuse_unless_same(path: str, recorded: Dict[str, Any] | None, asked: Dict[str, Any],
                       what: str, fresh_hint: str) -> None:
  """Checks an existing output's recorded fingerprint against the one asked for.

  Raises:
    FingerprintError: none was recorded (older code), or they differ (the message names up to
      eight differing keys and ends with ``fresh_hint``).
  """
  changed = (["(no fingerprint: made by older code)"] if recorded is None
             else differences(recorded, asked))
  if changed:
    shown = "; ".join(changed[:8]) + (f"; and {len(changed) - 8} more" if len(changed) > 8
                                      else "")
    raise FingerprintError(f"{path}: this {what} was made by another configuration, so it is "
                           f"not reused ({shown}); {fresh_hint}.")


def claim(directory: str | os.PathLike, asked: Dict[str, Any], what: str,
          fresh_hint: str = "choose another path") -> None:
  """Records ``asked`` as ``directory``'s fingerprint, or checks it against the recorded one.

  A directory that already holds files is reused only when its fingerprint matches (the code
  version may differ: the run resumes with a note naming both versions).

  Raises:
    FingerprintError: the directory was made by something else (the message lists up to
      eight differing keys), or it holds files but no fingerprint.
  """
  directory = os.path.abspath(os.fspath(directory))
  path = os.path.join(directory, FINGERPRINT_FILE)
  if not os.path.exists(path):
    # A lock, or the temporary of a fingerprint write that was killed, is not a run's output.
    contents = [n for n in os.listdir(directory)
                if not n.endswith(".lock") and not n.startswith(FINGERPRINT_FILE + ".tmp.")
                ] if os.path.isdir(directory) else []
    if contents:
      raise FingerprintError(
          f"{directory}: holds files from a run without a fingerprint (older code, or not "
          f"a {what}); it cannot be told apart from another run, so it is not reused: "
          f"{fresh_hint}.")
    atomic_json(path, asked)
    return
  with open(path, encoding="utf-8") as file:
    recorded = json.load(file)
  refuse_unless_same(directory, recorded, asked, what, fresh_hint)
  if recorded.get("code") != asked.get("code"):
    print(f"note: {directory} was made by code {recorded.get('code')}; continuing with "
          f"{asked.get('code')}.", flush=True)
