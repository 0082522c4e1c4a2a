r"""MrCoM scenario datasets.

  python -m benchmarks.scenarios v-max --embodiment cheetah-run --scale cpu
  python -m benchmarks.scenarios generate --embodiment cheetah-run --split id-dynamics \
      --count 2 --kinds random,mixed --scale cpu
  python -m benchmarks.scenarios report [--publish]

``generate`` measures ``v_max`` first when it is not recorded yet. The root is ``--root``, else
``$WORLDMODELS_DATA``, else ``~/.worldmodels/datasets``. Every stage resumes after a kill and is
never rebuilt once complete; a stage made with other settings is refused.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.datasets import catalog, configs
from benchmarks.scenarios import datasets, objectives
from benchmarks.scenarios.suite import SPLITS, sample_scenarios
from worldmodels.io import atomic_write

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def _overrides(pairs):
  out = {}
  for pair in pairs or []:
    key, sep, value = pair.partition("=")
    if not sep:
      raise ValueError(f"--set {pair!r}: expected key=value.")
    out[key] = value
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.scenarios",
                                   description=__doc__.split("\n\n")[0])
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  for name, text in (("v-max", "measure v_max of an embodiment (default dynamics)"),
                     ("generate", "generate datasets of scenarios of one split"),
                     ("report", "the statistics tables of every scenario dataset")):
    command = commands.add_parser(name, help=text)
    command.add_argument("--root", default=None, help="catalog root")
    if name == "report":
      command.add_argument("--publish", action="store_true",
                           help=f"write {os.path.relpath(RESULTS)}")
      continue
    command.add_argument("--embodiment", required=True, choices=objectives.EMBODIMENTS)
    command.add_argument("--scale", default="cpu", choices=configs.SCALES)
    command.add_argument("--v_max_set", action="append", metavar="KEY=VALUE",
                         help="override of the v_max behaviour run's generation config")
    if name == "generate":
      command.add_argument("--split", required=True, choices=SPLITS)
      command.add_argument("--count", type=int, default=2, help="scenarios of the split")
      command.add_argument("--seed", type=int, default=0, help="scenario sampling seed")
      command.add_argument("--kinds", default="random,mixed",
                           help=f"comma-separated, of {', '.join(configs.DATASET_KINDS)}")
      command.add_argument("--set", action="append", metavar="KEY=VALUE",
                           help="override of the scenarios' generation config")
  args = parser.parse_args(argv)
  root = args.root or catalog.default_root()
  try:
    if args.command == "report":
      command = "python -m benchmarks.scenarios report" + (" --publish" if args.publish else "")
      text = datasets.report(root, command)
      if args.publish:
        atomic_write(RESULTS, text)
        print(f"wrote {RESULTS}")
      print(text)
      return 0
    v_max = datasets.measure_v_max(args.embodiment, root, args.scale,
                                   overrides=_overrides(args.v_max_set))
    print(f"{args.embodiment}: v_max {v_max['v_max']:.3f} m/s (expert snapshot at step "
          f"{v_max['expert_step']:,}, DMC return {v_max['return_mean']:.1f})", flush=True)
    if args.command == "generate":
      kinds = [k for k in args.kinds.split(",") if k]
      unknown = [k for k in kinds if k not in configs.DATASET_KINDS]
      if unknown:
        raise ValueError(f"--kinds: unknown kind(s) {unknown}; choose from "
                         f"{configs.DATASET_KINDS}.")
      scenarios = sample_scenarios(args.split, args.embodiment, args.count, args.seed)
      built = datasets.generate_scenario_datasets(scenarios, v_max["v_max"], root, kinds,
                                                  args.scale, _overrides(args.set))
      for name, path in built.items():
        print(f"{name}: {path}")
  except (ValueError, datasets.VMaxError, RuntimeError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
