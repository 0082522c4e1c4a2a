"""Errors raised by the episodic dataset writer and reader."""

from __future__ import annotations

import os


class DatasetError(ValueError):
  """A dataset (or an episode given to the writer) is missing, malformed or inconsistent.

  The message is one paragraph that names the file (or dataset directory) and the problem.

  Attributes:
    path: the file or dataset directory concerned.
    problem: what is wrong with it.
  """

  def __init__(self, path: str | os.PathLike, problem: str):
    self.path = os.fspath(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}")
