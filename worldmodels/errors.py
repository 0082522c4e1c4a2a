"""Errors that mean bad input rather than a bug, which programs report in one paragraph.

The specific ones live beside what raises them (``DatasetError``, ``ModelArtifactError``,
``NonFiniteLossError``, ``LockError``, ``FingerprintError``, ``CheckpointError``); this module
holds the general one.
"""

from __future__ import annotations


class ConfigError(ValueError):
  """A configuration or argument cannot work; the message names the flag or key and what was
  expected."""
