"""V-D4RL generation end to end at tiny size, the selection rule, resume, catalog and CLI."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from benchmarks.datasets import __main__ as cli
from benchmarks.datasets import catalog, configs, vd4rl
from benchmarks.envs import make_env
from tests.conftest import synthetic_steps
from worldmodels.data import DatasetError, dataset_statistics, load_dataset, read_metadata
from worldmodels.provenance import FingerprintError

TASK = "walker-walk"
EPISODE = 20  # agent steps per episode in the tiny preset


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
  """All five datasets of walker-walk at tiny size, pixels at 16x16."""
  root = str(tmp_path_factory.mktemp("catalog"))
  config = configs.get_config(f"{TASK}/tiny")
  paths = vd4rl.generate(config, root, configs.DATASET_KINDS, image_sizes=(16,))
  return root, config, paths


def dict_override(config, key: str, value):
  """``config`` with one dotted field set."""
  catalog.apply_overrides(config, {key: str(value)})
  return config


def _episode_lengths(steps):
  starts = np.flatnonzero(steps.is_first)
  return np.diff(np.append(starts, steps.num_steps)) - 1


def test_all_five_datasets_have_sizes_boundaries_metadata_and_statistics(generated):
  root, config, paths = generated
  selection = json.load(open(os.path.join(vd4rl.task_directory(root, TASK),
                                          vd4rl.BEHAVIOUR_DIR, vd4rl.SELECTION_FILE)))
  # Snapshots every 80 frames = 40 agent steps of a 200-step run; expert is the last one.
  assert [row["step"] for row in selection["evaluations"]] == [40, 80, 120, 160, 200]
  assert selection["expert"]["step"] == 200 and selection["expert"]["frames"] == 400
  assert selection["medium"]["step"] == 40  # tiny threshold -1: the first snapshot

  loaded = {}
  for kind in configs.DATASET_KINDS:
    steps, metadata = load_dataset(paths[kind]["state"])
    loaded[kind] = (steps, metadata)
    lengths = _episode_lengths(steps)
    assert (lengths == EPISODE).all(), kind  # dm_control: time-limit episodes, no terminals
    assert not steps.is_terminal.any()
    assert (steps.is_last == np.roll(steps.is_first, -1)).all()
    assert metadata["task"] == TASK and metadata["action_repeat"] == 2
    assert set(metadata["observation_spec"]) == {"state", "physics"}
    assert metadata["statistics"] == dataset_statistics(metadata["episode_returns"],
                                                        metadata["num_transitions"])
    card = metadata["extra"]["card"]
    assert card["kind"] == kind and card["code_version"]
    assert os.path.isfile(os.path.join(paths[kind]["state"], vd4rl.CARD_FILE))
    # Returns in the metadata are the sums of the stored rewards.
    sums = np.add.reduceat(steps.reward, np.flatnonzero(steps.is_first))
    np.testing.assert_allclose(sums, metadata["episode_returns"], rtol=1e-5)

  for kind in ("random", "medium", "expert"):
    n = loaded[kind][1]["num_transitions"]
    assert config.sizes[kind] <= n < config.sizes[kind] + EPISODE
  medium, expert = loaded["medium"][1], loaded["expert"][1]
  for metadata, kind in ((medium, "medium"), (expert, "expert")):
    policy = metadata["behaviour_policy"]
    assert policy["snapshot_step"] == selection[kind]["step"]
    assert policy["evaluated_return_mean"] == pytest.approx(selection[kind]["return_mean"])
    assert metadata["extra"]["card"]["medium_policy"] == selection["medium"]
  medexp_steps, medexp = loaded["medexp"]
  assert medexp["num_episodes"] == medium["num_episodes"] + expert["num_episodes"]
  assert medexp["episode_returns"] == medium["episode_returns"] + expert["episode_returns"]
  np.testing.assert_array_equal(medexp_steps.action[:loaded["medium"][0].num_steps],
                                loaded["medium"][0].action)

  # Mixed: the training replay up to the medium snapshot (step 40 = the first 2 episodes).
  mixed_steps, mixed = loaded["mixed"]
  replay, _ = load_dataset(os.path.join(vd4rl.task_directory(root, TASK), vd4rl.BEHAVIOUR_DIR,
                                        vd4rl.TRAINING_REPLAY))
  assert mixed["num_transitions"] == 40 and mixed["behaviour_policy"]["replay_until_step"] == 40
  np.testing.assert_array_equal(mixed_steps.observation["state"],
                                replay.observation["state"][:mixed_steps.num_steps])


def test_pixels_are_rendered_from_the_saved_physics_states(generated):
  _, _, paths = generated
  steps, metadata = load_dataset(paths["expert"]["16px"])
  state_steps, state_metadata = load_dataset(paths["expert"]["state"])
  assert steps.observation["pixels"].shape == (steps.num_steps, 16, 16, 3)
  assert steps.observation["pixels"].dtype == np.uint8
  assert steps.observation["pixels"].std() > 0  # not blank frames
  np.testing.assert_array_equal(steps.observation["state"], state_steps.observation["state"])
  assert metadata["episode_returns"] == state_metadata["episode_returns"]
  assert metadata["extra"]["card"]["image_size"] == 16
  env = make_env(TASK, obs_type="pixels", image_size=16)
  for t in (0, 7, steps.num_steps - 1):
    env.set_physics_state(steps.observation["physics"][t])
    np.testing.assert_array_equal(env.render(), steps.observation["pixels"][t])
  # The recorded state observation is what the simulator shows in that physics state.
  with_state = make_env(TASK, record_physics=True)
  with_state.set_physics_state(steps.observation["physics"][5])
  suite_obs = with_state._env.task.get_observation(with_state.physics)  # pylint: disable=protected-access
  flat = np.concatenate([np.asarray(v, np.float32).ravel() for v in suite_obs.values()])
  np.testing.assert_allclose(flat, steps.observation["state"][5], atol=1e-4)


def test_rollouts_resume_to_exactly_the_uninterrupted_dataset(tmp_path):
  config = configs.get_config(f"{TASK}/tiny")
  env = make_env(TASK)
  bounds = (env.action_spec().minimum, env.action_spec().maximum)
  card = {"kind": "random"}
  reference = str(tmp_path / "reference")
  vd4rl.collect_rollouts(config, reference, "random", vd4rl._random_episodes(config, *bounds),
                         100, {"kind": "random"}, card)

  run_episode = vd4rl._random_episodes(config, *bounds)

  def dies_in_episode_3(env, episode):
    if episode == 3:  # killed halfway through the episode
      env.step = lambda action: (_ for _ in ()).throw(KeyboardInterrupt())
    return run_episode(env, episode)

  interrupted = str(tmp_path / "interrupted")
  with pytest.raises(KeyboardInterrupt):
    vd4rl.collect_rollouts(config, interrupted, "random", dies_in_episode_3, 100,
                           {"kind": "random"}, card)
  # One shard of 2 committed; readers refuse the incomplete dataset, its writer resumes it.
  assert read_metadata(interrupted, allow_incomplete=True)["num_episodes"] == 2
  with pytest.raises(DatasetError, match="incomplete"):
    read_metadata(interrupted)
  vd4rl.collect_rollouts(config, interrupted, "random", vd4rl._random_episodes(config, *bounds),
                         100, {"kind": "random"}, card)
  a, meta_a = load_dataset(reference)
  b, meta_b = load_dataset(interrupted)
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  assert meta_a["episode_returns"] == meta_b["episode_returns"]
  # A different seed gives different episodes.
  config.seed = 1
  other = str(tmp_path / "other")
  vd4rl.collect_rollouts(config, other, "random", vd4rl._random_episodes(config, *bounds), 20,
                         {"kind": "random"}, card)
  assert not np.array_equal(load_dataset(other)[0].action[:20], a.action[:20])


def test_selection_rule():
  rows = [{"step": s, "return_mean": r, "return_std": 1.0}
          for s, r in ((5000, 120.0), (10000, 499.0), (15000, 530.0), (20000, 480.0),
                       (25000, 900.0))]
  chosen = vd4rl.choose_medium_and_expert(rows, 500.0, action_repeat=2)
  assert chosen["medium"] == {"step": 15000, "frames": 30000, "return_mean": 530.0,
                              "return_std": 1.0}
  assert chosen["expert"]["step"] == 25000
  with pytest.raises(vd4rl.GenerationError, match=r"above the medium threshold 950 \(best: "
                     r"900.0 at step 25000\).*--set behaviour.medium_threshold="):
    vd4rl.choose_medium_and_expert(rows, 950.0, action_repeat=2)


def test_mixed_keeps_the_latest_whole_episodes_before_the_medium_step():
  replay = synthetic_steps((10, 10, 10, 10, 10))  # episodes end at steps 10, 20, ..., 50
  steps, info = vd4rl.mixed_episodes(replay, medium_step=35, size=25)
  assert info == {"episodes": 2, "transitions": 20, "first_episode": 1}
  np.testing.assert_array_equal(steps.observation["state"],
                                np.asarray(replay.observation["state"])[11:33])
  with pytest.raises(vd4rl.GenerationError, match="smaller than one episode"):
    vd4rl.mixed_episodes(replay, medium_step=35, size=5)


def test_render_refuses_datasets_without_physics(tmp_path):
  from worldmodels.data import write_dataset
  write_dataset(tmp_path / "plain", synthetic_steps((5,)), task=TASK, behaviour_policy="x",
                action_repeat=2, seed=0)
  with pytest.raises(DatasetError, match=r"plain.*no 'physics' observation"):
    vd4rl.render_dataset(str(tmp_path / "plain"), str(tmp_path / "px"), 16)
  assert not os.path.exists(tmp_path / "px")


def test_train_and_train_model_accept_a_catalog_name(generated, tmp_path):
  """``--config.dataset.path=vd4rl/...`` trains on the catalog's directory, and the run
  evaluates on the dataset's task."""
  from experiments import train, train_model  # pylint: disable=import-outside-toplevel
  from experiments.configs import ensemble as ensemble_configs  # pylint: disable=import-outside-toplevel
  from experiments.configs import td3bc as td3bc_configs  # pylint: disable=import-outside-toplevel
  from worldmodels.models.artifacts import read_model_metadata  # pylint: disable=import-outside-toplevel
  root, _, paths = generated
  name = "vd4rl/walker_walk/medium/state"
  config = td3bc_configs.get_config("tiny")
  config.dataset.path, config.dataset.root = name, root
  config.env.task = None  # the dataset's task
  config.workdir = str(tmp_path / "td3bc")
  config.agent.num_steps, config.loop.eval_episodes = 20, 1
  summary = train.run(config)
  assert summary["task"] == TASK and np.isfinite(summary["final_return_mean"])
  recorded = json.load(open(tmp_path / "td3bc" / "fingerprint.json"))
  assert paths["medium"]["state"] in json.dumps(recorded)  # trained on the catalog's directory
  model_config = ensemble_configs.get_config("tiny")
  model_config.dataset.path, model_config.dataset.root = name, root
  model_config.output = str(tmp_path / "model")
  train_model.run(model_config)
  provenance = read_model_metadata(str(tmp_path / "model"))["provenance"]
  assert provenance["task"] == "walker-walk"
  assert os.path.samefile(provenance["dataset"], paths["medium"]["state"])


def test_catalog_names_resolve_and_list(generated, tmp_path):
  root, _, paths = generated
  name = "vd4rl/walker_walk/medium/16px"
  assert str(catalog.parse_name(name)) == name
  assert catalog.parse_name(name).image_size == 16
  assert catalog.resolve(name, root=root) == paths["medium"]["16px"]
  for bad, problem in (("vd4rl/walker_walk/great/state", "unknown kind 'great'"),
                       ("vd4rl/dog_walk/medium/state", "unknown task 'dog_walk'"),
                       ("vd4rl/walker_walk/medium/large", "observation 'large'"),
                       ("d5rl/walker_walk/medium", "expected vd4rl/")):
    with pytest.raises(ValueError, match=problem):
      catalog.parse_name(bad)
  asked = []
  with pytest.raises(catalog.DatasetNotBuiltError,
                     match=r"generate walker-walk/cpu --kinds expert --pixels 84"):
    catalog.resolve("vd4rl/walker_walk/expert/84px", root=str(tmp_path), scale="cpu",
                    confirm=lambda message: asked.append(message) or False)
  assert "trains a SAC behaviour policy for 100,000" in asked[0]
  assert not os.listdir(tmp_path)  # refusing builds nothing
  # A missing random dataset is built on request (no behaviour policy needed).
  path = catalog.resolve("vd4rl/walker_walk/random/state", root=str(tmp_path), build=True,
                         scale="tiny", overrides={"sizes.random": "40"})
  assert read_metadata(path)["num_transitions"] == 40
  # A tiny build is never served as another scale or with other settings; any scale is
  # served when none is asked for (the card says which).
  assert catalog.resolve("vd4rl/walker_walk/random/state", root=str(tmp_path), scale="tiny",
                         overrides={"sizes.random": "40"}) == path
  with pytest.raises(FingerprintError, match=r"another configuration.*size: 40 -> 100000"):
    catalog.resolve("vd4rl/walker_walk/random/state", root=str(tmp_path), scale="full")
  with pytest.raises(FingerprintError, match=r"seed: 0 -> 3"):
    catalog.resolve("vd4rl/walker_walk/random/state", root=str(tmp_path), scale="tiny",
                    overrides={"sizes.random": "40", "seed": "3"})
  assert catalog.resolve("vd4rl/walker_walk/random/state", root=str(tmp_path)) == path
  with pytest.raises(FingerprintError, match="sizes.expert"):  # the CLI's generate checks too
    vd4rl.generate_dataset(dict_override(configs.get_config(f"{TASK}/tiny"), "sizes.expert",
                                         41), root, "expert")
  rows = {row["name"]: row for row in catalog.list_datasets(root, observations=("state",))}
  assert rows["vd4rl/walker_walk/expert/state"]["status"] == "built"
  assert rows["vd4rl/cheetah_run/expert/state"]["status"] == "missing"
  with pytest.raises(ValueError, match="unknown config field 'sizes.huge'"):
    catalog.apply_overrides(configs.get_config("walker-walk/tiny"), {"sizes.huge": "1"})
  with pytest.raises(ValueError, match="'seed' expects int; got 'x'"):
    catalog.apply_overrides(configs.get_config("walker-walk/tiny"), {"seed": "x"})


def test_cli(generated, capsys, tmp_path):
  root, _, _ = generated
  assert cli.main(["list", "--root", root]) == 0
  out = capsys.readouterr().out
  assert "| vd4rl/walker_walk/medexp/state | built |" in out
  assert cli.main(["stats", "vd4rl/walker_walk/random/state", "--root", root]) == 0
  assert "| vd4rl/walker_walk/random/state | 60 | 3 |" in capsys.readouterr().out
  assert cli.main(["generate", "walker-walk/tiny", "--kinds", "great", "--root", root]) == 1
  assert "unknown kind(s) ['great']" in capsys.readouterr().err
  assert cli.main(["generate", "walker-walk/tiny", "--pixels", "64,big"]) == 1
  assert "--pixels expects comma-separated positive image sizes" in capsys.readouterr().err
  assert cli.main(["generate", "walker-walk/tiny", "--set", "behaviour.bogus=1"]) == 1
  assert "unknown config field 'behaviour.bogus'" in capsys.readouterr().err
  assert cli.main(["stats", str(tmp_path / "nothing")]) == 1
  assert "no such dataset" in capsys.readouterr().err
  output = tmp_path / "RESULTS.md"
  output.write_text("old tables\n## Reading\nkept text\n")
  assert cli.main(["report", "--root", root, "--tasks", "walker-walk",
                   "--output", str(output)]) == 0
  text = output.read_text()
  assert "| medium | 40 | 80 |" in text and "| random | ours | 60 | 3 |" in text
  assert "| random | paper | 100K | - | 42.3 | 8.7 |" in text
  assert "old tables" not in text and text.endswith("## Reading\nkept text\n")


def test_every_generation_preset_builds():
  for task in configs.TASK_PRESETS:
    for scale in configs.SCALES:
      config = configs.get_config(f"{task}/{scale}")
      assert config.sac.num_steps == config.behaviour.num_steps
  assert configs.get_config("cheetah-run").sizes.mixed == 200_000
  assert configs.get_config("humanoid-walk").sizes.mixed == 600_000
  with pytest.raises(ValueError, match="unknown dataset task preset 'dog-run'"):
    configs.get_config("dog-run")


@pytest.mark.slow  # walker and cheetah cover the generator in the default suite
def test_humanoid_and_hopper_generate_at_tiny_size(tmp_path):
  """The presets beyond walker and cheetah run end to end (random and a snapshot rollout)."""
  for task in ("humanoid-walk", "hopper-hop"):
    config = configs.get_config(f"{task}/tiny")
    config.behaviour.num_steps = 80
    config.sizes.expert = 20
    paths = vd4rl.generate(config, str(tmp_path), ("expert",))
    metadata = read_metadata(paths["expert"]["state"])
    assert metadata["task"] == task and metadata["num_transitions"] == 20


def test_another_medium_threshold_reuses_the_behaviour_run(generated, monkeypatch):
  """The threshold picks snapshots; it does not change the run, so the run is not retrained
  (nor is one whose recorded fingerprint still holds a threshold, as older code wrote)."""
  root, config, _ = generated
  other = dict_override(config.copy_and_resolve_references(), "behaviour.medium_threshold", 3.0)
  monkeypatch.setattr(vd4rl.behaviour, "train", lambda *a, **k: pytest.fail("retrained"))
  workdir = vd4rl.train_behaviour(other, root)
  replay = os.path.join(workdir, vd4rl.TRAINING_REPLAY)
  metadata_path = os.path.join(replay, "metadata.json")
  metadata = json.load(open(metadata_path))
  assert "medium_threshold" not in metadata["extra"]["fingerprint"]["behaviour"]
  original = open(metadata_path).read()
  try:  # the older form of the same run
    metadata["extra"]["fingerprint"]["behaviour"]["medium_threshold"] = -1.0
    with open(metadata_path, "w") as f:
      json.dump(metadata, f)
    assert vd4rl.train_behaviour(other, root) == workdir
    changed = dict_override(other.copy_and_resolve_references(), "behaviour.num_steps", 240)
    with pytest.raises(FingerprintError, match="num_steps"):
      vd4rl.train_behaviour(changed, root)
  finally:
    with open(metadata_path, "w") as f:
      f.write(original)
