"""The layering of the design card, checked on the source: the library never imports
benchmarks/ or experiments/, benchmarks/ never imports experiments/, shared library modules never
import agents."""

from __future__ import annotations

import ast
import glob
import os

import pytest

from tests.conftest import REPO_ROOT


def _imports(path: str) -> set[str]:
  tree = ast.parse(open(path).read(), filename=path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
  return names


def _files(folder: str) -> list[str]:
  return sorted(glob.glob(os.path.join(REPO_ROOT, folder, "**", "*.py"), recursive=True))


@pytest.mark.parametrize("folder, forbidden", [
    ("worldmodels", ("benchmarks", "experiments")),
    ("benchmarks", ("experiments",)),
    ("worldmodels/data", ("worldmodels.agents",)),
    ("worldmodels/training", ("worldmodels.agents",)),
    ("worldmodels/rl", ("worldmodels.agents",)),
])
def test_layering(folder, forbidden):
  files = _files(folder)
  assert files, folder
  offenders = [(os.path.relpath(f, REPO_ROOT), name) for f in files for name in _imports(f)
               if any(name == p or name.startswith(p + ".") for p in forbidden)]
  assert not offenders, offenders


def test_no_tensorflow_anywhere():
  for folder in ("worldmodels", "benchmarks", "experiments"):
    for f in _files(folder):
      assert not any(n == "tensorflow" or n.startswith("tensorflow.") for n in _imports(f)), f
