"""D4RL-style datasets of the gymnasium tasks: physics recording, D4RL's medium rule, the
generator end to end at tiny size on HalfCheetah-v5, the catalog names and the cards."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.datasets import catalog, configs, report, vd4rl
from benchmarks.envs import GymMujocoEnv
from worldmodels.data import load_dataset, read_metadata

TASK = "HalfCheetah-v5"


def test_gym_env_records_its_mujoco_state():
  env = GymMujocoEnv(TASK, seed=3, episode_length=5, record_physics=True)
  spec = env.observation_spec()
  assert spec["physics"].shape == (env.model.nq + env.model.nv,)
  timestep = env.step(np.zeros(6, np.float32))  # resets first
  timestep = env.step(np.full(6, 0.5, np.float32))
  physics = timestep.observation["physics"]
  np.testing.assert_array_equal(physics, np.concatenate([env.data.qpos, env.data.qvel])
                                .astype(np.float32))
  # HalfCheetah's state is qpos without the root x, then qvel.
  np.testing.assert_allclose(timestep.observation["state"], physics[1:], rtol=1e-6)
  assert "physics" not in GymMujocoEnv(TASK).observation_spec()


def _rows(returns):
  return [{"step": 1000 * (i + 1), "return_mean": r, "return_std": 1.0}
          for i, r in enumerate(returns)]


def test_d4rl_medium_is_the_first_snapshot_at_a_third_of_the_expert():
  chosen = vd4rl.choose_medium_and_expert(_rows([-50.0, 200.0, 300.0, 350.0, 120.0, 900.0]),
                                          None, 1, fraction_of_expert=1 / 3)
  assert chosen["threshold"] == pytest.approx(300.0)
  assert chosen["medium"]["step"] == 3000  # 300 reaches the third (>=); 200 does not
  assert chosen["expert"]["step"] == 6000
  with pytest.raises(vd4rl.GenerationError, match="needs a positive expert return"):
    vd4rl.choose_medium_and_expert(_rows([-50.0, -10.0]), None, 1, fraction_of_expert=1 / 3)
  with pytest.raises(ValueError, match="needs a threshold or a fraction"):
    vd4rl.choose_medium_and_expert(_rows([1.0]), None, 1)


def test_every_d4rl_preset_builds():
  for name, task in configs.D4RL_TASKS.items():
    for scale in configs.SCALES:
      for preset in (f"{name}/{scale}", f"{task}/{scale}"):
        config = configs.get_config(preset)
        assert config.task == task and config.action_repeat == 1
        assert config.sizes.mixed == config.behaviour.num_steps == config.sac.num_steps
  cpu = configs.get_config("halfcheetah/cpu")
  assert cpu.behaviour.medium_threshold is None
  assert cpu.behaviour.medium_fraction_of_expert == pytest.approx(1 / 3)
  assert configs.get_config("walker-walk/cpu").behaviour.get("medium_fraction_of_expert") is None


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("d4rl"))
  config = configs.get_config("halfcheetah/tiny")
  return root, config, vd4rl.generate(config, root, ("random", "mixed", "medexp"))


def test_halfcheetah_datasets_end_to_end(generated):
  root, config, paths = generated
  for kind in ("random", "mixed", "medium", "expert", "medexp"):
    path = os.path.join(root, "d4rl", "halfcheetah", kind, "state")
    assert os.path.isfile(os.path.join(path, "metadata.json")), kind
  steps, metadata = load_dataset(paths["random"]["state"])
  assert metadata["task"] == TASK and metadata["action_repeat"] == 1
  assert steps.observation["state"].shape[1:] == (17,)
  assert steps.observation["physics"].shape[1:] == (18,)
  assert not steps.is_terminal.any()  # HalfCheetah never terminates: time limits only
  starts = np.flatnonzero(steps.is_first)
  assert (np.diff(np.append(starts, steps.num_steps)) - 1 == config.episode_length).all()
  # mixed is the whole replay up to the medium snapshot (the tiny medium: the first one).
  mixed = read_metadata(paths["mixed"]["state"])
  selection = read_metadata(paths["medexp"]["state"])["extra"]["card"]["medium_policy"]
  assert mixed["num_transitions"] == selection["step"]
  medexp = read_metadata(paths["medexp"]["state"])
  assert medexp["num_transitions"] == config.sizes.medium + config.sizes.expert
  card = open(os.path.join(paths["random"]["state"], vd4rl.CARD_FILE)).read()
  assert "Differences from D4RL" in card and "uniform random actions" in card
  assert "gymnasium HalfCheetah-v5" in card
  assert "medium-replay" in open(os.path.join(paths["mixed"]["state"], vd4rl.CARD_FILE)).read()


def test_catalog_names_of_the_d4rl_datasets(generated):
  root, _, paths = generated
  assert "d4rl/halfcheetah/medexp" in catalog.catalog_names()
  name = catalog.parse_name("d4rl/halfcheetah/mixed")
  assert (name.task, name.kind, str(name)) == (TASK, "mixed", "d4rl/halfcheetah/mixed")
  assert catalog.resolve("d4rl/halfcheetah/mixed", root=root, scale="tiny") == \
      paths["mixed"]["state"]
  assert catalog.dataset_path("d4rl/halfcheetah/random", root) == paths["random"]["state"]
  with pytest.raises(catalog.DatasetNotBuiltError, match="generate hopper/full --kinds medium"):
    catalog.dataset_path("d4rl/hopper/medium", root)
  for bad, message in (("d4rl/humanoid/medium", "unknown D4RL task 'humanoid'"),
                       ("d4rl/halfcheetah/great", "unknown kind 'great'"),
                       ("d4rl/halfcheetah/medium/state", "expected d4rl/<name>/<kind>")):
    with pytest.raises(ValueError, match=message):
      catalog.parse_name(bad)


def test_report_puts_the_datasets_on_d4rls_normalised_scale(generated, tmp_path):
  root, _, paths = generated
  assert report.d4rl_normalised_score(TASK, -280.178953) == pytest.approx(0.0)
  assert report.d4rl_normalised_score(TASK, 12135.0) == pytest.approx(100.0)
  output = str(tmp_path / "RESULTS_d4rl.md")
  text = report.write_report(root, ["halfcheetah"], output, "python -m benchmarks.datasets report")
  assert text.startswith("# D4RL-style datasets") and "## halfcheetah (HalfCheetah-v5)" in text
  mean = read_metadata(paths["random"]["state"])["statistics"]["return_mean"]
  assert f"random {report.d4rl_normalised_score(TASK, mean):.1f}" in text
  assert "expert 12135.0" in text and open(output).read() == text
  with pytest.raises(ValueError, match="separate files"):
    report.write_report(root, ["halfcheetah", "walker-walk"], output, "report")
