"""Command line for episodic datasets: generate, stats, list, import, render.

Usage::

  python -m benchmarks.datasets generate walker-walk[/cpu|/tiny] [--kinds random,medium]
      [--pixels 64,84] [--root DIR] [--set behaviour.num_steps=50000 ...]
  python -m benchmarks.datasets generate halfcheetah/cpu --kinds random,mixed,medium,medexp
  python -m benchmarks.datasets stats PATH_OR_NAME [...]
  python -m benchmarks.datasets list [--root DIR] [--all]
  python -m benchmarks.datasets import {vd4rl-npz,vd4rl-hdf5,d4rl-hdf5} SOURCE DEST --task TASK
  python -m benchmarks.datasets render SOURCE DEST --size 84
  python -m benchmarks.datasets report --root DIR [--tasks walker-walk,cheetah-run]
  python -m benchmarks.datasets report --root DIR --tasks halfcheetah --output RESULTS_d4rl.md

Names such as ``vd4rl/walker_walk/medium/64px`` or ``d4rl/halfcheetah/medium`` are catalog names (``benchmarks.datasets.catalog``;
root ``$WORLDMODELS_DATA`` or ``~/.worldmodels/datasets``).

Exit status: 0 on success, 1 when a dataset or input is missing or bad (a one-paragraph message
on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from worldmodels.cli import guarded
from worldmodels.data.errors import DatasetError
from worldmodels.data.reader import read_metadata
from worldmodels.data.stats import dataset_statistics, format_statistics_table


def _csv(text: str) -> list[str]:
  return [part for part in text.split(",") if part]


def _overrides(pairs: Sequence[str]) -> dict:
  overrides = {}
  for pair in pairs:
    key, sep, value = pair.partition("=")
    if not sep or not key:
      raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {pair!r}.")
    overrides[key] = value
  return overrides


def generate_command(args: argparse.Namespace) -> int:
  from benchmarks.datasets import catalog, configs, vd4rl
  config = configs.get_config(args.preset)
  catalog.apply_overrides(config, _overrides(args.set))
  kinds = _csv(args.kinds)
  unknown = [kind for kind in kinds if kind not in configs.DATASET_KINDS]
  if unknown:
    raise ValueError(f"--kinds: unknown kind(s) {unknown}; choose from {configs.DATASET_KINDS}.")
  if not all(size.isdigit() and int(size) > 0 for size in _csv(args.pixels)):
    raise ValueError(f"--pixels expects comma-separated positive image sizes such as 64 or "
                     f"64,84; got {args.pixels!r}.")
  sizes = [int(size) for size in _csv(args.pixels)]
  root = args.root or catalog.default_root()
  built = vd4rl.generate(config, root, kinds, sizes)
  for kind, paths in built.items():
    for observation, path in paths.items():
      print(f"{catalog.DatasetName(config.task, kind, observation)}: {path}")
  return 0


def stats_command(args: argparse.Namespace) -> int:
  """Prints the statistics table of each dataset; returns 1 if any could not be read."""
  from benchmarks.datasets import catalog
  status = 0
  for target in args.paths:
    path = target
    if not os.path.exists(target) and target.startswith((catalog.SUITE + "/",
                                                         catalog.D4RL_SUITE + "/")):
      path = catalog.parse_name(target).path(args.root)
    try:
      metadata = read_metadata(path)
    except DatasetError as error:
      print(f"error: {error}", file=sys.stderr)
      status = 1
      continue
    statistics = dataset_statistics(metadata["episode_returns"], metadata["num_transitions"])
    name = os.path.basename(os.path.normpath(path)) if path == target else target
    print(format_statistics_table(statistics, name))
    print()
  return status


def list_command(args: argparse.Namespace) -> int:
  from benchmarks.datasets import catalog
  root = args.root or catalog.default_root()
  rows = catalog.list_datasets(root)
  shown = [row for row in rows if args.all or row["status"] != "missing"]
  print(f"catalog root: {root} ({sum(r['status'] == 'built' for r in rows)} of {len(rows)} "
        "built)")
  print("| name | status | transitions | episodes | return |")
  print("| --- | --- | ---: | ---: | ---: |")
  for row in shown:
    if row["status"] == "built":
      print(f"| {row['name']} | built | {row['transitions']:,} | {row['episodes']:,} | "
            f"{row['return_mean']:.1f} ± {row['return_std']:.1f} |")
    else:
      print(f"| {row['name']} | {row['status']} | | | |")
  if not args.all:
    print("(--all also lists the names not built yet)")
  return 0


def import_command(args: argparse.Namespace) -> int:
  from benchmarks.datasets import importers
  kwargs = {} if args.action_repeat is None else {"action_repeat": args.action_repeat}
  metadata = importers.import_dataset(args.format, args.source, args.destination,
                                      task=args.task, **kwargs)
  print(format_statistics_table(metadata["statistics"], os.path.basename(
      os.path.normpath(args.destination))))
  return 0


def render_command(args: argparse.Namespace) -> int:
  from benchmarks.datasets import vd4rl
  metadata = vd4rl.render_dataset(args.source, args.destination, args.size,
                                  camera_id=args.camera_id)
  print(format_statistics_table(metadata["statistics"], os.path.basename(
      os.path.normpath(args.destination))))
  return 0


def report_command(args: argparse.Namespace) -> int:
  from benchmarks.datasets import catalog, report
  root = args.root or catalog.default_root()
  command = "python -m benchmarks.datasets " + " ".join(sys.argv[1:] or ["report"])
  print(report.write_report(root, _csv(args.tasks), args.output, command))
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.datasets", description="Episodic dataset tools.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  generate = commands.add_parser(
      "generate", help="generate V-D4RL datasets of one task (resumable, deterministic)",
      description="Runs the V-D4RL procedure: SAC behaviour policy with a snapshot every "
                  "10,000 frames, medium/expert selection, then the requested datasets; "
                  "a rerun resumes an interrupted one.")
  generate.add_argument("preset", help="<task>[/full|/cpu|/tiny], task one of walker-walk, "
                        "cheetah-run, humanoid-walk, hopper-hop (V-D4RL) or halfcheetah, "
                        "walker2d, hopper, ant (D4RL-style, gymnasium v5)")
  generate.add_argument("--kinds", default="random,mixed,medium,expert,medexp",
                        help="comma-separated dataset kinds (default: all five)")
  generate.add_argument("--pixels", default="", help="also render pixels at these sizes, "
                        "e.g. 64 (Offline DV2) or 64,84 (84: DrQ+BC)")
  generate.add_argument("--root", default=None, help="catalog root (default $WORLDMODELS_DATA "
                        "or ~/.worldmodels/datasets)")
  generate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set behaviour.num_steps=50000")
  generate.set_defaults(run=generate_command)

  stats = commands.add_parser(
      "stats", help="print timesteps, episodes and return statistics of datasets",
      description="Prints a Markdown table (V-D4RL appendix A layout) for each dataset, "
                  "computed from its metadata.json.")
  stats.add_argument("paths", nargs="+", metavar="PATH", help="dataset directory or catalog "
                     "name (vd4rl/<task>/<kind>/<observation>)")
  stats.add_argument("--root", default=None, help="catalog root for names")
  stats.set_defaults(run=stats_command)

  listing = commands.add_parser("list", help="list the catalog and what is built")
  listing.add_argument("--root", default=None, help="catalog root")
  listing.add_argument("--all", action="store_true", help="also list missing datasets")
  listing.set_defaults(run=list_command)

  importing = commands.add_parser(
      "import", help="convert a published dataset (V-D4RL npz / hdf5, D4RL hdf5)",
      description="Converts published files into the episodic format. V-D4RL's npz episodes "
                  "store the action and reward that led INTO each step; they are shifted by "
                  "one step on import (see benchmarks/datasets/importers/vd4rl_npz.py).")
  importing.add_argument("format", choices=("vd4rl-npz", "vd4rl-hdf5", "d4rl-hdf5"))
  importing.add_argument("source", help="directory of npz / hdf5 files, or one D4RL hdf5 file")
  importing.add_argument("destination", help="new dataset directory")
  importing.add_argument("--task", required=True, help="task name stored in the metadata "
                         "(e.g. walker-walk, halfcheetah-medium-v2)")
  importing.add_argument("--action_repeat", type=int, default=None,
                         help="environment steps per dataset step (default: 2 for V-D4RL, 1 "
                              "for D4RL)")
  importing.set_defaults(run=import_command)

  reporting = commands.add_parser(
      "report", help="write RESULTS.md: behaviour policies and statistics vs the paper")
  reporting.add_argument("--root", default=None, help="catalog root")
  reporting.add_argument("--tasks", default="walker-walk,cheetah-run",
                         help="V-D4RL tasks, or D4RL-style ones (halfcheetah,...) with --output")
  reporting.add_argument("--output", default=os.path.join(os.path.dirname(
      os.path.abspath(__file__)), "RESULTS.md"))
  reporting.set_defaults(run=report_command)

  render = commands.add_parser(
      "render", help="add pixels to a generated state dataset (from its physics states)")
  render.add_argument("source", help="dataset with 'state' and 'physics' observations")
  render.add_argument("destination", help="new (or interrupted) dataset directory")
  render.add_argument("--size", type=int, default=64, help="image size S (64 or 84)")
  render.add_argument("--camera_id", type=int, default=None)
  render.set_defaults(run=render_command)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  from benchmarks.datasets.catalog import DatasetNotBuiltError  # pylint: disable=import-outside-toplevel
  from benchmarks.datasets.vd4rl import GenerationError  # pylint: disable=import-outside-toplevel
  # Bad input, a refusal (lock, fingerprint) or an interrupt: one paragraph, no traceback.
  return guarded(args.run, extra_errors=(GenerationError, DatasetNotBuiltError, ValueError,
                                         FileNotFoundError))(args)


if __name__ == "__main__":
  sys.exit(main())
