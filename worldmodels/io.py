"""Files another stage can trust: atomic writes, locks, and fault points for testing them.

* :func:`atomic_write` / :func:`atomic_json` / :func:`atomic_text`: write to a temporary file
  in the same directory,
  fsync it, rename it over the target (and fsync the directory), so a reader sees the old
  content or the new one, never a prefix.
* :func:`atomic_directory`: build a directory under ``<path>.partial`` and rename it to
  ``path`` when it is complete (datasets, model artifacts).
* :class:`Lock`: one writer per workdir or dataset under construction. An advisory ``flock``
  on ``<path>.lock``, which exists only while it is held: the kernel releases the lock of a
  process that dies, so its stale file is recovered by the next writer (who says so); a second
  live writer fails fast with :class:`LockError` naming the holder (pid, host, command, since
  when).
* :func:`fault_point`: ``WORLDMODELS_FAULT=<name>:<n>`` kills the process (SIGKILL) the n-th
  time the named point is reached, so tests can kill a run anywhere, mid-write included.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import shutil
import signal
import socket
import sys
import time
from typing import Any, Dict, Iterator

PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
FAULT_VARIABLE = "WORLDMODELS_FAULT"

_fault_counts: Dict[str, int] = {}


def fault_point(name: str) -> None:
  """Kills this process with SIGKILL when ``WORLDMODELS_FAULT`` is ``<name>:<n>`` and this is
  the n-th time ``name`` is reached (no effect otherwise; used by the kill-anywhere tests)."""
  spec = os.environ.get(FAULT_VARIABLE)
  if not spec:
    return
  target, _, count = spec.rpartition(":")
  if target != name:
    return
  _fault_counts[name] = _fault_counts.get(name, 0) + 1
  if _fault_counts[name] == int(count):
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
  """Holds SIGINT and SIGTERM back during the block (e.g. a checkpoint save, which runs in
  background threads that an interrupt would leave half done); they are delivered when it
  ends. SIGKILL cannot be held back: kills are what the commit protocols are for.

  The block swaps in Python handlers that only note the signal, rather than masking it: a mask
  holds only in the calling thread, so the kernel hands a process-wide signal to one of the
  runtime's other threads, and the interrupt would still land inside the save.
  """
  import threading  # pylint: disable=import-outside-toplevel
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []
  previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
              for sig in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if received:  # delivered now, to the handlers of the caller (e.g. KeyboardInterrupt)
      signal.raise_signal(received[0])


def _fsync_directory(path: str) -> None:
  fd = os.open(path or ".", os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _process_is_running(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, someone else's
    return True
  return True


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
  """Replaces ``path`` with ``data`` atomically (temporary file, fsync, rename).

  The temporary is ``<path>.tmp.<pid>``; those that killed writers of the same path left
  behind (their process is gone, so they never became ``path``) are removed first.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  prefix = os.path.basename(path) + ".tmp."
  for name in os.listdir(directory):
    pid = name[len(prefix):]
    if name.startswith(prefix) and pid.isdigit() and not _process_is_running(int(pid)):
      os.remove(os.path.join(directory, name))
  temp = f"{path}.tmp.{os.getpid()}"
  with open(temp, "wb") as file:
    file.write(data.encode("utf-8") if isinstance(data, str) else data)
    file.flush()
    fault_point("atomic_write")
    os.fsync(file.fileno())
  os.replace(temp, path)
  _fsync_directory(directory)


def atomic_json(path: str | os.PathLike, value: Any, **dump_kwargs: Any) -> None:
  """:func:`atomic_write` of ``value`` as JSON (``indent=1`` unless given)."""
  dump_kwargs.setdefault("indent", 1)
  atomic_write(path, json.dumps(value, **dump_kwargs) + "\n")


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[io.StringIO]:
  """A text buffer that replaces ``path`` atomically when the block ends without an error
  (nothing is written when it raises)::

    with atomic_text("RESULTS.md") as f:
      f.write(...)
  """
  buffer = io.StringIO()
  yield buffer
  atomic_write(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, resume: bool = False) -> Iterator[str]:
  """Yields ``<path>.partial`` to build a directory in; renames it to ``path`` on success.

  Args:
    path: the final directory (must not exist: finished outputs are never overwritten).
    resume: keep what an interrupted build left in ``<path>.partial`` (its writer resumes);
      otherwise a leftover partial directory is removed first. Callers hold a :class:`Lock`
      on ``path``, so a partial directory is never another live writer's.

  Raises:
    FileExistsError: ``path`` exists.
  """
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path):
    raise FileExistsError(f"{path}: already exists; finished outputs are never overwritten "
                          "(choose another path, or delete it yourself).")
  partial = path + PARTIAL_SUFFIX
  if not resume and os.path.exists(partial):
    shutil.rmtree(partial)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  yield partial
  fault_point("atomic_directory.rename")
  os.replace(partial, path)
  _fsync_directory(os.path.dirname(path))


class LockError(RuntimeError):
  """Another live process holds the lock; the message names it."""


class Lock:
  """An exclusive, non-blocking lock on ``<path>.lock`` for one writer of ``path``.

  Usage::

    with Lock(workdir, "training"):
      ...

  Re-entrant within a process (a nested ``Lock`` on the same path is a no-op).
  """

  _held: Dict[str, int] = {}

  def __init__(self, path: str | os.PathLike, purpose: str = "writing"):
    self.path = os.path.abspath(os.fspath(path))
    self.lock_path = self.path.rstrip(os.sep) + LOCK_SUFFIX
    self.purpose = purpose
    self._fd = None

  def __enter__(self) -> "Lock":
    self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()

  def acquire(self) -> None:
    if self.lock_path in Lock._held:
      Lock._held[self.lock_path] += 1
      return
    os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
    while True:
      fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as error:
        holder = _read_holder(fd)
        os.close(fd)
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
          raise
        raise LockError(
            f"{self.path}: another process is {holder.get('purpose', 'writing')} here (pid "
            f"{holder.get('pid', '?')} on {holder.get('host', '?')}, since "
            f"{holder.get('since', '?')}: {holder.get('command', '?')}); wait for it to finish "
            "or use another path. The lock is released when that process ends.") from None
      try:  # the file locked must still be the one at the path (a releaser unlinks it)
        if os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino:
          break
      except FileNotFoundError:
        pass
      os.close(fd)
    previous = _read_holder(fd)
    if previous.get("pid"):
      print(f"note: recovered the lock of {self.path} left by pid {previous['pid']} "
            f"({previous.get('command', '?')}), which is no longer running.", flush=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    self._fd = fd
    Lock._held[self.lock_path] = 1

  def release(self) -> None:
    if self.lock_path not in Lock._held:
      return
    Lock._held[self.lock_path] -= 1
    if Lock._held[self.lock_path] or self._fd is None:
      return
    del Lock._held[self.lock_path]
    # Still locked: no other process can hold this file now. Unlink it only if the path is
    # still our file (someone may have removed it by hand, and another run made a new one).
    try:
      if os.stat(self.lock_path).st_ino == os.fstat(self._fd).st_ino:
        os.unlink(self.lock_path)
    except FileNotFoundError:
      pass
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None


def _read_holder(fd: int) -> dict:
  try:
    return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
  except (ValueError, OSError):
    return {}
