"""Provenance recorded in every results file: the git revision of the code that made it."""

from __future__ import annotations

import os
import subprocess


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
