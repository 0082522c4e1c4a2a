"""Programs' handling of bad input and interrupts: one paragraph, no traceback.

``guarded(main)`` runs a program's main function and turns the library's input errors (a bad
dataset or artifact, a NaN stop, a lock held by another run, a workdir made by another run, an
unreadable checkpoint, a bad config) into ``error: <message>`` on stderr and exit status 1, and
an interrupt (Ctrl-C, or SIGTERM) into one line and exit status 130. Other exceptions are bugs
and keep their traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Callable, Sequence, Tuple, Type

from worldmodels.data.errors import DatasetError
from worldmodels.errors import ConfigError
from worldmodels.io import LockError
from worldmodels.provenance import FingerprintError

INTERRUPT_STATUS = 130


def input_errors() -> Tuple[Type[BaseException], ...]:
  """The exception types that mean bad input (imported lazily: some pull in orbax)."""
  from worldmodels.models.artifacts import ModelArtifactError  # pylint: disable=import-outside-toplevel
  from worldmodels.training.checkpoint import CheckpointError  # pylint: disable=import-outside-toplevel
  from worldmodels.training.loop import NonFiniteLossError  # pylint: disable=import-outside-toplevel
  return (DatasetError, ConfigError, LockError, FingerprintError, ModelArtifactError,
          CheckpointError, NonFiniteLossError)


def _terminate(signum, frame) -> None:
  del signum, frame
  raise KeyboardInterrupt


def guarded(main: Callable[..., int | None],
            extra_errors: Sequence[Type[BaseException]] = ()) -> Callable[..., int]:
  """``main`` wrapped: returns its status, or 1 after a one-paragraph input error, or 130 after
  an interrupt (SIGTERM is handled as Ctrl-C)."""

  def run(*args, **kwargs) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
      status = main(*args, **kwargs)
    except KeyboardInterrupt as interrupt:
      message = str(interrupt) or "interrupted; rerun the same command to resume."
      print(message, file=sys.stderr, flush=True)
      return INTERRUPT_STATUS
    except input_errors() + tuple(extra_errors) as error:
      print(f"error: {error}", file=sys.stderr, flush=True)
      return 1
    return status or 0

  return run
