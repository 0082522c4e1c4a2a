"""Metric logging (JSONL and CSV per stream) and a console progress line."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from typing import Dict, Mapping, TextIO

from worldmodels.io import atomic_write, fault_point


def _to_float(value) -> float:
  return float(value)


class MetricsLogger:
  """Appends rows to ``<workdir>/<stream>.jsonl`` and ``<workdir>/<stream>.csv``.

  Each row carries ``step`` and ``phase``. CSV columns are fixed by a stream's first row (later
  new keys go to the JSONL only). A resumed run first calls :meth:`truncate` with its
  checkpoint's step, so the logs hold each step once; a torn last line (a kill mid-write) is
  dropped then.
  """

  def __init__(self, workdir: str, enabled: bool = True):
    """Args:
      workdir: where the streams are written.
      enabled: False: rows are returned but not written (the processes of a multi-process
        run other than process 0).
    """
    self.workdir = workdir
    self.enabled = enabled
    os.makedirs(workdir, exist_ok=True)
    self._csv_columns: Dict[str, list] = {}

  def _paths(self, stream: str):
    return (os.path.join(self.workdir, f"{stream}.jsonl"),
            os.path.join(self.workdir, f"{stream}.csv"))

  def truncate(self, step: int | None, streams=("train", "eval")) -> None:
    """Keeps only the rows up to ``step`` (None: none) of each stream, rewriting both files
    atomically: the logs of a run resumed from the checkpoint at ``step``."""
    if not self.enabled:
      return
    for stream in streams:
      jsonl, csv_path = self._paths(stream)
      if not os.path.exists(jsonl):
        continue
      rows = [r for r in read_jsonl(jsonl) if step is not None and r["step"] <= step]
      atomic_write(jsonl, "".join(json.dumps(r) + "\n" for r in rows))
      columns = list(rows[0]) if rows else None
      if os.path.exists(csv_path) and os.path.getsize(csv_path) > 0:
        with open(csv_path, newline="") as f:
          columns = next(csv.reader(f), columns)
      buffer = io.StringIO()
      if columns:
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
          writer.writerow([row.get(c, "") for c in columns])
      atomic_write(csv_path, buffer.getvalue())
      self._csv_columns.pop(stream, None)

  def write(self, stream: str, step: int, phase: str, metrics: Mapping[str, float]) -> dict:
    row = {"step": int(step), "phase": phase, **{k: _to_float(v) for k, v in metrics.items()}}
    if not self.enabled:
      return row
    jsonl, csv_path = self._paths(stream)
    line = json.dumps(row) + "\n"
    with open(jsonl, "a") as f:
      f.write(line[:len(line) // 2])
      f.flush()
      fault_point("metrics.row")  # a kill here leaves a torn last line
      f.write(line[len(line) // 2:])
    columns = self._csv_columns.get(stream)
    if columns is None:
      if os.path.exists(csv_path) and os.path.getsize(csv_path) > 0:
        with open(csv_path) as f:
          columns = next(csv.reader(f))
      else:
        columns = list(row)
        with open(csv_path, "w", newline="") as f:
          csv.writer(f).writerow(columns)
      self._csv_columns[stream] = columns
    with open(csv_path, "a", newline="") as f:
      csv.writer(f).writerow([row.get(c, "") for c in columns])
    return row


def read_jsonl(path: str) -> list:
  """Rows of a JSONL metrics file; a torn last line (a kill mid-write) is left out.

  Raises:
    ValueError: a line other than the last is not valid JSON (the message names the file and
      the line).
  """
  with open(path) as f:
    lines = [line for line in f.read().split("\n") if line.strip()]
  rows = []
  for number, line in enumerate(lines, 1):
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      if number == len(lines):
        break
      raise ValueError(f"{path}: line {number} is not valid JSON; the log is damaged.") from None
  return rows


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
  """One console line per chunk: step, rate, ETA, last evaluation and chosen metrics."""

  def __init__(self, phase: str, total: int, start: int = 0, unit: str = "steps",
               stream: TextIO = sys.stdout):
    self.phase, self.total, self.unit, self.stream = phase, total, unit, stream
    self._t0, self._s0 = time.time(), start
    self.last_eval: str = "-"

  def rate(self, step: int) -> float:
    elapsed = time.time() - self._t0
    return (step - self._s0) / elapsed if elapsed > 0 else float("nan")

  def update(self, step: int, metrics: Mapping[str, float] | None = None) -> None:
    rate = self.rate(step)
    eta = (self.total - step) / rate if rate and rate > 0 else float("nan")
    shown = " ".join(f"{k}={float(v):.3g}" for k, v in (metrics or {}).items())
    pct = 100.0 * step / max(self.total, 1)
    print(f"[{self.phase}] {step}/{self.total} ({pct:3.0f}%) {rate:7.1f} {self.unit}/s "
          f"ETA {_fmt_time(eta)} | eval {self.last_eval} | {shown}", file=self.stream,
          flush=True)
