"""MrCoM's scenario datasets (benchmarks.scenarios.datasets): v_max, datasets generated inside a
scenario, their cards and fingerprints, the statistics report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.datasets import catalog
from benchmarks.scenarios import datasets
from benchmarks.scenarios.suite import Scenario
from tests.conftest import REPO_ROOT
from worldmodels.data import load_dataset, read_metadata


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("scenarios"))


def test_v_max_is_measured_once_and_never_replaced(root):
  first = datasets.measure_v_max("walker-walk", root, "tiny", episodes=2)
  assert first["v_max"] > 0 and first["episodes"] == 2 and first["expert_step"] == 200
  path = os.path.join(root, "mrcom", "walker_walk", datasets.V_MAX_FILE)
  assert json.load(open(path))["v_max"] == first["v_max"]
  assert datasets.measure_v_max("walker-walk", root, "tiny", episodes=2) == first
  with pytest.raises(datasets.VMaxError, match="measured with other settings"):
    datasets.measure_v_max("walker-walk", root, "tiny", episodes=3)


def test_dynamics_change_the_states_and_objectives_only_the_rewards(root):
  """Same seeds and random actions: a torso-scaled scenario visits other states; a scenario
  with another target speed visits the same states and is paid differently."""
  base, faster = Scenario("walker-walk"), Scenario("walker-walk", rho=0.5)
  longer = Scenario("walker-walk", torso_length=1.2, torso_size=0.8)
  built = datasets.generate_scenario_datasets([base, faster, longer], 0.5, root, ("random",),
                                              "tiny")
  steps = {name.split("/")[2]: load_dataset(path)[0] for name, path in built.items()}
  s = {k: np.asarray(v.observation["state"]) for k, v in steps.items()}
  r = {k: np.asarray(v.reward) for k, v in steps.items()}
  np.testing.assert_array_equal(s[base.name], s[faster.name])
  assert not np.allclose(r[base.name], r[faster.name])
  assert np.abs(s[base.name] - s[longer.name]).max() > 1e-3
  meta = read_metadata(built[datasets.dataset_name(longer, "random")])
  card = meta["extra"]["card"]
  assert card["scenario"]["torso_length"] == 1.2 and card["scenario"]["v_max"] == 0.5
  assert meta["extra"]["fingerprint"]["scenario"]["name"] == longer.name
  path = built[datasets.dataset_name(longer, "random")]
  assert path == os.path.join(root, "mrcom", "walker_walk", longer.name, "random", "state")
  assert "torso length x1.200" in open(os.path.join(path, "CARD.md")).read()
  # The V-D4RL dataset of the task is elsewhere and untouched.
  assert not os.path.exists(os.path.join(root, "vd4rl", "walker_walk", "random"))


@pytest.mark.slow  # a behaviour SAC; also run by the documented command's slow test
def test_a_learned_kind_trains_its_behaviour_policy_inside_the_scenario(root):
  scenario = Scenario("walker-walk", torso_length=0.9, rho=0.8)
  built = datasets.generate_scenario_datasets([scenario], 0.5, root, ("mixed",), "tiny")
  path = built[datasets.dataset_name(scenario, "mixed")]
  behaviour = os.path.join(root, "mrcom", "walker_walk", scenario.name, "behaviour")
  assert os.path.isfile(os.path.join(behaviour, "selection.json"))
  assert read_metadata(path)["behaviour_policy"]["kind"] == "mixed"
  with pytest.raises(ValueError, match="state-only"):
    datasets.vd4rl.generate_dataset(datasets.scenario_config(scenario, 0.5, "tiny"), root,
                                    "random", image_sizes=(16,))


def test_scenario_dataset_names_resolve_like_catalog_names(root):
  name = datasets.dataset_name(Scenario("walker-walk", rho=0.5), "random")
  path = catalog.dataset_path(name, root)
  assert path == os.path.join(root, name, "state") and read_metadata(path)["num_transitions"]
  with pytest.raises(catalog.DatasetNotBuiltError, match="benchmarks.scenarios generate"):
    catalog.dataset_path(name.replace("random", "expert"), root)
  with pytest.raises(ValueError, match="bad scenario dataset name"):
    catalog.dataset_path("mrcom/walker_walk/random", root)


def test_the_report_lists_v_max_and_every_scenario_dataset(root):
  text = datasets.report(root, "python -m benchmarks.scenarios report")
  assert "| walker-walk |" in text
  for name in (Scenario("walker-walk").name, Scenario("walker-walk", rho=0.5).name):
    assert f"mrcom/walker_walk/{name}/random" in text
  assert text.count("| mrcom/") == len(datasets.scenario_datasets(root)) >= 3


@pytest.mark.slow  # a behaviour SAC per scenario and four adaptation runs: about two minutes
def test_the_documented_commands_run_small(tmp_path):
  """WORKSPACE.md's scenario-datasets and CaDM commands at tiny size: the second builds on
  the first's datasets, and a rerun reuses every stage and reports the same numbers."""
  env = dict(os.environ, MUJOCO_GL="egl", PYTHONHASHSEED="0")
  data, runs = str(tmp_path / "data"), str(tmp_path / "runs")
  generate = [sys.executable, "-m", "benchmarks.scenarios", "generate", "--embodiment",
              "walker-walk", "--split", "id-dynamics", "--count", "2", "--kinds", "random,mixed",
              "--scale", "tiny", "--root", data]
  subprocess.run(generate, check=True, env=env, cwd=REPO_ROOT)
  assert len(datasets.scenario_datasets(data)) == 4
  cadm = [sys.executable, "-m", "experiments.mrcom.cadm", "--preset=tiny", f"--workdir={runs}",
          f"--data_root={data}"]
  subprocess.run(cadm, check=True, env=env, cwd=REPO_ROOT)
  results = json.load(open(os.path.join(runs, "walker_walk", "results_cadm.json")))
  assert [r["split"] for r in results["rows"]] == ["in-distribution", "out-of-distribution"]
  for row in results["rows"]:
    assert all(len(v) == 2 and np.isfinite(v).all() for v in row["returns"].values())
  again = subprocess.run(cadm, check=True, env=env, cwd=REPO_ROOT, capture_output=True,
                         text=True)
  assert "training CaDM" not in again.stdout
  assert json.load(open(os.path.join(runs, "walker_walk", "results_cadm.json")))["rows"] == \
      results["rows"]
  failed = subprocess.run(cadm + ["--publish"], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True)
  assert failed.returncode != 0 and "not with --preset=tiny" in failed.stderr
