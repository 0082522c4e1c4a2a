"""Shared measurement helpers: timing of jitted calls and the matmul peak."""

from __future__ import annotations

import time
from typing import Callable, Tuple

import jax
import jax.numpy as jnp


def block(x):
  return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready")
                                else a, x)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
  """Best wall time (seconds) of one call over ``repeats`` after ``warmup`` calls."""
  for _ in range(warmup):
    block(fn())
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    block(fn())
    best = min(best, time.perf_counter() - start)
  return best


def matmul_peak(size: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """FLOP/s of a jitted ``size x size`` matmul, the machine's practical peak for this process."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype)
  mm = jax.jit(lambda x, y: x @ y)
  seconds = time_calls(lambda: mm(a, b), repeats)
  return 2.0 * size**3 / seconds


def compiled_flops(jitted, *args) -> float:
  """FLOPs XLA counts for one call of ``jitted(*args)`` (0 when the backend reports none)."""
  analysis = jitted.lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))


def lowered_flops(jitted, *args) -> float:
  """FLOPs of one call of ``jitted(*args)`` as counted on the lowered program, before XLA's
  optimisations (no compile: cheap; within 0.2% of the compiled count for SAC here)."""
  analysis = jitted.lower(*args).cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))


def report(name: str, value: float, unit: str, fraction: float) -> str:
  """The last line every benchmark prints."""
  return f"{name}: {value:.1f} {unit}, {fraction:.3f} of matmul peak"


def describe_devices() -> Tuple[str, int]:
  devices = jax.devices()
  return devices[0].device_kind, len(devices)
