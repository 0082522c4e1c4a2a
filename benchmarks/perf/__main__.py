"""``python -m benchmarks.perf NAME``: runs one throughput benchmark and prints its figures.

The last line is ``NAME: <throughput> <unit>, <fraction> of matmul peak``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

BENCHMARKS = {"sac": "benchmarks.perf.sac", "ensemble": "benchmarks.perf.ensemble",
              "rollout": "benchmarks.perf.rollout", "render": "benchmarks.perf.render"}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__)
  parser.add_argument("name", choices=sorted(BENCHMARKS))
  args, rest = parser.parse_known_args(argv)
  benchmark = importlib.import_module(BENCHMARKS[args.name]).main
  if "argv" in inspect.signature(benchmark).parameters:
    benchmark(rest)  # benchmarks with options of their own (render --frames N)
  elif rest:
    parser.error(f"{args.name} takes no options, got {rest}")
  else:
    benchmark()
  return 0


if __name__ == "__main__":
  sys.exit(main())
