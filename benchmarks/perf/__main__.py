"""``python -m benchmarks.perf NAME``: runs one throughput benchmark and prints its figures.

The last line is ``NAME: <throughput> <unit>, <fraction> of matmul peak``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {"sac": "benchmarks.perf.sac", "ensemble": "benchmarks.perf.ensemble",
              "rollout": "benchmarks.perf.rollout"}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__)
  parser.add_argument("name", choices=sorted(BENCHMARKS))
  args = parser.parse_args(argv)
  importlib.import_module(BENCHMARKS[args.name]).main()
  return 0


if __name__ == "__main__":
  sys.exit(main())
