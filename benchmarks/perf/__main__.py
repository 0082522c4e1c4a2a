"""``python -m benchmarks.perf NAME``: runs one throughput benchmark and prints its figures.

The last line is ``NAME: <throughput> <unit>, <fraction> of matmul peak``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

from worldmodels.cli import guarded

BENCHMARKS = {"sac": "benchmarks.perf.sac", "ensemble": "benchmarks.perf.ensemble",
              "seeds": "benchmarks.perf.seeds",
              "rollout": "benchmarks.perf.rollout", "render": "benchmarks.perf.render",
              "rssm": "benchmarks.perf.rssm", "drqbc": "benchmarks.perf.drqbc",
              "evaluation": "benchmarks.perf.evaluation"}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__)
  parser.add_argument("name", choices=sorted(BENCHMARKS))
  parser.add_argument("--tiny", action="store_true",
                      help="a seconds-long smoke run of the same code (its figures mean nothing)")
  args, rest = parser.parse_known_args(argv)
  benchmark = importlib.import_module(BENCHMARKS[args.name]).main
  takes_options = "argv" in inspect.signature(benchmark).parameters
  if rest and not takes_options:
    parser.error(f"{args.name} takes no options, got {rest}")
  # Bad input (e.g. a --workdir another run holds) or an interrupt: one paragraph.
  options = {"tiny": args.tiny, **({"argv": rest} if takes_options else {})}
  def measure() -> int:
    benchmark(**options)  # prints its figures (and returns its last line)
    return 0

  run = guarded(measure, extra_errors=(ValueError, FileNotFoundError))
  return run()


if __name__ == "__main__":
  sys.exit(main())
