"""Command line for episodic datasets.

Usage::

  python -m benchmarks.datasets stats PATH [PATH ...]

Exit status: 0 on success, 1 when a dataset is missing or bad (a one-paragraph message on
stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from worldmodels.data.errors import DatasetError
from worldmodels.data.reader import read_metadata
from worldmodels.data.stats import dataset_statistics, format_statistics_table


def stats_command(args: argparse.Namespace) -> int:
  """Prints the statistics table of each dataset; returns 1 if any could not be read."""
  status = 0
  for path in args.paths:
    try:
      metadata = read_metadata(path)
    except DatasetError as error:
      print(f"error: {error}", file=sys.stderr)
      status = 1
      continue
    statistics = dataset_statistics(metadata["episode_returns"], metadata["num_transitions"])
    name = os.path.basename(os.path.normpath(path))
    print(format_statistics_table(statistics, name))
    print()
  return status


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.datasets", description="Episodic dataset tools.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  stats = commands.add_parser(
      "stats", help="print timesteps, episodes and return statistics of datasets",
      description="Prints a Markdown table (V-D4RL appendix A layout) for each dataset, "
                  "computed from its metadata.json.")
  stats.add_argument("paths", nargs="+", metavar="PATH", help="dataset directory")
  stats.set_defaults(run=stats_command)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  return args.run(args)


if __name__ == "__main__":
  sys.exit(main())
