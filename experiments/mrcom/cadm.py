r"""CaDM through the scenario adaptation loop: an in-distribution against an out-of-distribution
target scenario of one embodiment (MrCoM's first baseline, ``benchmarks.scenarios``).

  python -m experiments.mrcom.cadm --embodiment=walker-walk --publish   # RESULTS_cadm.md here

Stages, each reused when it exists and was made the same way (resumable after a kill):

1. ``v_max`` of the embodiment and the datasets (``--kinds``) of ``train_scenarios`` scenarios
   of the ``id-dynamics`` split (``python -m benchmarks.scenarios``; sampling seed 0).
2. One CaDM artifact on all of those datasets (``experiments.train_model``,
   ``experiments/configs/cadm.py:<model_preset>``).
3. Per target, per seed: the adaptation learner (MBPO-style SAC on real and CaDM transitions,
   ``worldmodels.agents.adaptation``) for ``adaptation.num_steps`` environment steps in the
   target, then ``eval_episodes`` deterministic episodes there; and SAC alone with the same
   budget (the model-free reference). Targets: one scenario of ``id-dynamics`` and one of
   ``ood-dynamics`` (sampling seed 1, so the ID target is not a training scenario).

The table reports returns and MrCoM's normalised score (100 x return / 1000).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List

from absl import app, flags
import numpy as np

from benchmarks.datasets import catalog
from benchmarks.datasets.vd4rl import GenerationError
from benchmarks.scenarios import datasets as scenario_datasets
from benchmarks.scenarios.objectives import normalised_score
from benchmarks.scenarios.suite import Scenario, sample_scenarios, scenario_env_factory
from experiments import cli
from experiments import train_model as model_launcher
from experiments.configs import cadm as cadm_configs
from experiments.configs import mrcom as mrcom_configs
from worldmodels import provenance
from worldmodels.agents import make_agent
from worldmodels.agents.adaptation.learner import AdaptationLearner
from worldmodels.data.spec import DataSpec
from worldmodels.io import atomic_json, atomic_write
from worldmodels.training.loop import LoopConfig, train

RESULTS_DIR = os.path.dirname(os.path.abspath(__file__))

_EMBODIMENT = flags.DEFINE_enum("embodiment", "walker-walk",
                                ["hopper-hop", "walker-walk", "cheetah-run"], "Embodiment.")
_PRESET = flags.DEFINE_enum("preset", "cpu", list(mrcom_configs.PRESETS),
                            "Sizes (experiments/configs/mrcom.py).")
_SEEDS = flags.DEFINE_integer("seeds", None, "Seeds 0 .. seeds-1 (default: the preset's).")
_WORKDIR = flags.DEFINE_string("workdir", "runs/mrcom", "Models, runs and results.")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Catalog root (None: $WORLDMODELS_DATA).")
_RESULTS = flags.DEFINE_string("results_dir", None, "Where RESULTS_cadm.md goes (default "
                               "<workdir>/<embodiment>; with --publish this directory).")
_PUBLISH = flags.DEFINE_bool("publish", False, "Write the committed experiments/mrcom/"
                             "RESULTS_cadm.md.")


def targets(embodiment: str) -> Dict[str, Scenario]:
  """The in- and out-of-distribution target scenarios (sampling seed 1)."""
  return {"in-distribution": sample_scenarios("id-dynamics", embodiment, 1, seed=1)[0],
          "out-of-distribution": sample_scenarios("ood-dynamics", embodiment, 1, seed=1)[0]}


def cadm_artifact(paths: List[str], preset: str, output: str, data_root) -> str:
  """The CaDM artifact on ``paths`` at ``output``: reused when it is the model this call would
  train, trained there when missing."""
  config = cadm_configs.get_config(preset)
  config.dataset.path, config.dataset.root, config.output = ",".join(paths), data_root, output
  source = model_launcher.load_source(config)
  if os.path.exists(output):
    with open(os.path.join(output, "model.json")) as f:
      recorded = json.load(f).get("provenance", {}).get("fingerprint")
    provenance.refuse_unless_same(output, recorded, model_launcher.model_fingerprint(
        config, source), "model artifact", "give the experiment another --workdir")
  else:
    print(f"training CaDM on {len(paths)} datasets -> {output}", flush=True)
    model_launcher.run(config, source)
  return output


def _spec(env_factory) -> DataSpec:
  probe = env_factory(0)
  spec = DataSpec.from_environment(probe)
  probe.close()
  return spec


def adapt(kind: str, target: Scenario, v_max: float, seed: int, sizes, model_path: str,
          workdir: str) -> float:
  """One run in ``target`` (``kind``: "cadm" adapts with the model, "sac" without); returns the
  final evaluation's mean return. A finished run is read back, not rerun."""
  env_factory = scenario_env_factory(target, v_max, episode_length=sizes.episode_length)
  spec = _spec(env_factory)
  config = sizes.adaptation.copy_and_resolve_references()
  if kind == "cadm":
    config.model_path = model_path
    agent = AdaptationLearner(config, spec)
  else:
    sac = config.sac.copy_and_resolve_references()
    sac.num_steps, sac.random_steps = config.num_steps, config.random_steps
    sac.learning_starts, sac.batch_size = config.learning_starts, config.batch_size
    agent = make_agent("sac", sac, spec)
  steps = int(config.num_steps)
  loop = LoopConfig(steps_per_chunk=min(1_000, steps), eval_every=steps,
                    eval_episodes=sizes.eval_episodes, checkpoint_every=min(1_000, steps),
                    replay_capacity=steps + 1_000, seed=seed, log_every_seconds=30.0)
  fingerprint = provenance.fingerprint(kind=kind, target=target.name, v_max=v_max,
                                       agent=config.to_dict(), model=model_path if kind ==
                                       "cadm" else None)
  print(f"[{target.name}] {kind}, seed {seed} -> {workdir}", flush=True)
  result = train(agent, workdir=workdir, loop=loop, env_factory=env_factory,
                 fingerprint=fingerprint)
  if result.evaluations:
    return float(result.evaluations[-1]["return_mean"])
  with open(os.path.join(workdir, "eval.jsonl")) as f:  # a finished run evaluates no more
    return float(json.loads(f.read().strip().split("\n")[-1])["return_mean"])


def run(embodiment: str, sizes, workdir: str, data_root) -> Dict[str, object]:
  root = data_root or catalog.default_root()
  v_max = scenario_datasets.measure_v_max(embodiment, root, sizes.data_scale)
  train_scenarios = sample_scenarios(sizes.train_split, embodiment, sizes.train_scenarios, 0)
  built = scenario_datasets.generate_scenario_datasets(
      train_scenarios, v_max["v_max"], root, tuple(sizes.kinds), sizes.data_scale)
  model_path = cadm_artifact(sorted(built.values()), sizes.model_preset,
                             os.path.join(workdir, f"cadm-{sizes.model_preset}"), data_root)
  rows = []
  for split, target in targets(embodiment).items():
    returns = {kind: [adapt(kind, target, v_max["v_max"], seed, sizes, model_path,
                            os.path.join(workdir, target.name, f"{kind}-seed{seed}"))
                      for seed in range(sizes.seeds)] for kind in ("cadm", "sac")}
    rows.append({"split": split, "scenario": target.name, "torso_length": target.torso_length,
                 "torso_size": target.torso_size, "returns": returns})
  context_length = cadm_configs.get_config(sizes.model_preset).model.context_length
  return {"v_max": v_max, "train_datasets": sorted(built), "rows": rows,
          "model_path": model_path, "context_length": int(context_length)}


def write_results(outcome, sizes, embodiment: str, output_dir: str, command: str,
                  started: float) -> str:
  a = sizes.adaptation
  score = lambda r: float(normalised_score(r))
  lines = [f"# CaDM through scenario adaptation on {embodiment}: in- against out-of-distribution",
           "", f"Command: `{command}`; git revision `{provenance.git_revision()}`; seeds 0 .. "
           f"{sizes.seeds - 1}; {sizes.eval_episodes} deterministic evaluation episodes per seed "
           f"after {a.num_steps:,} environment steps in the target; this command's wall time "
           f"{time.time() - started:.0f} s (stages that already existed are reused).", "",
           "| Target | Scenario | CaDM + adaptation (return, mean ± std) | per seed | Score | SAC "
           "alone, same budget | per seed | Score |",
           "| --- | --- | ---: | --- | ---: | ---: | --- | ---: |"]
  for r in outcome["rows"]:
    cells = []
    for kind in ("cadm", "sac"):
      x = np.asarray(r["returns"][kind])
      cells.append(f"{x.mean():.1f} ± {x.std():.1f} | " + ", ".join(f"{v:.1f}" for v in x)
                   + f" | {score(x.mean()):.1f}")
    lines.append(f"| {r['split']} | {r['scenario']} | " + " | ".join(cells) + " |")
  v = outcome["v_max"]
  lines += [
      "", "Score: MrCoM's normalised return, 100 x return / 1000 (`../shared/specs/mrcom.md`). "
      f"The targets are torso-scaled {embodiment} scenarios with the default target speed "
      "(rho = 1: the "
      f"speed term peaks at v_max = {v['v_max']:.3f} m/s, the mean speed of the embodiment's "
      "behaviour expert under default dynamics).", "",
      "## Training data and model", "",
      f"CaDM (`experiments/configs/cadm.py:{sizes.model_preset}`) trained once on "
      f"{len(outcome['train_datasets'])} datasets: " + ", ".join(
          f"`{n}`" for n in outcome["train_datasets"]) + " (statistics: "
      "`benchmarks/scenarios/RESULTS.md`). It is frozen during adaptation: it adapts through "
      f"its context, the {outcome['context_length']} real transitions before each rollout "
      "start.", "",
      "## What was reduced to fit this CPU", "",
      f"Adaptation: {a.num_steps:,} environment steps per target (MrCoM: 100,000), rollouts of "
      f"{a.rollout_batch_size:,} starts of horizon {a.horizon} every {a.rollout_every} steps "
      f"(MBPO / MrCoM: 10,000 every 250), SAC of {' x '.join(map(str, a.sac.hidden_sizes))}, "
      f"{a.random_steps:,} random steps first; datasets at the scenario suite's "
      f"`{sizes.data_scale}` scale (`benchmarks/scenarios/datasets.py`); {sizes.seeds} seeds.", ""]
  text = "\n".join(lines)
  os.makedirs(output_dir, exist_ok=True)
  atomic_write(os.path.join(output_dir, "RESULTS_cadm.md"), text)
  atomic_json(os.path.join(output_dir, "results_cadm.json"),
              {**outcome, "command": command,
               "revision": provenance.git_revision(), "preset": sizes.preset})
  return text


def main(argv):
  del argv
  started = time.time()
  if _PUBLISH.value and _PRESET.value == "tiny":
    raise app.UsageError("--publish writes the committed results: not with --preset=tiny.")
  sizes = mrcom_configs.get_config(_PRESET.value)
  if _SEEDS.value is not None:
    sizes.seeds = _SEEDS.value
  workdir = os.path.join(_WORKDIR.value, _EMBODIMENT.value.replace("-", "_"))
  try:
    outcome = run(_EMBODIMENT.value, sizes, workdir, _DATA_ROOT.value)
  except (GenerationError, scenario_datasets.VMaxError) as error:  # a stage cannot proceed
    print(f"error: {error}", file=sys.stderr, flush=True)
    return 1
  output_dir = RESULTS_DIR if _PUBLISH.value else (_RESULTS.value or workdir)
  command = "python -m experiments.mrcom.cadm " + " ".join(sys.argv[1:])
  print(write_results(outcome, sizes, _EMBODIMENT.value, output_dir, command, started))


if __name__ == "__main__":
  cli.run(main)
