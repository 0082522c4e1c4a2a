"""Every shipped launcher config builds, and its agent builds from it."""

from __future__ import annotations

import glob
import importlib
import os
import subprocess
import sys
import types

import pytest

from tests.conftest import REPO_ROOT, tiny_rssm, tiny_world_model
from worldmodels.agents import make_agent
from worldmodels.data.spec import DataSpec
from worldmodels.training.loop import LoopConfig

ALL_CONFIG_FILES = sorted(
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(REPO_ROOT, "experiments", "configs", "*.py"))
    if not os.path.basename(p).startswith(("_", "common")))
MODEL_CONFIG_FILES = ("ensemble", "rssm", "cadm")
EXPERIMENT_CONFIG_FILES = ("online_offline", "zero_shot", "mrcom")
CONFIG_FILES = [n for n in ALL_CONFIG_FILES
                if n not in MODEL_CONFIG_FILES + EXPERIMENT_CONFIG_FILES]
PRESETS = ("default", "demo", "tiny")


def test_every_agent_has_a_config():
  from worldmodels.agents import REGISTRY  # pylint: disable=g-import-not-at-top
  assert set(REGISTRY) <= set(CONFIG_FILES)


@pytest.fixture(scope="module")
def world_model_path(tmp_path_factory):
  """A small ensemble artifact for agents that need one (MOPO)."""
  from worldmodels.models.artifacts import save_model  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("model") / "ensemble")
  save_model(path, *tiny_world_model(5, 3))
  rssm_path = str(tmp_path_factory.mktemp("model") / "rssm")
  save_model(rssm_path, *tiny_rssm(5, 3))
  return {"offline_dv2": rssm_path}.get, path


def _presets(module):
  return getattr(module, "PRESETS", PRESETS) + tuple(getattr(module, "TABLE3", {}))


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_builds(name, world_model_path):
  module = importlib.import_module(f"experiments.configs.{name}")
  for preset in _presets(module):
    config = module.get_config(preset)
    assert config.agent_name == name
    LoopConfig(seed=config.seed, **config.loop.to_dict())
    if "model_path" in config.agent:
      by_agent, ensemble_path = world_model_path
      config.agent.model_path = by_agent(name, ensemble_path)
    if "pixels" in config.dataset.observation_keys and "model_path" not in config.agent:
      size = config.env.image_size
      spec = DataSpec({"pixels": ((size, size, 3), "uint8")}, 3, {"pixels": config.frame_stack})
    else:
      spec = DataSpec({"state": ((5,), "float32")}, 3)
    agent = make_agent(config.agent_name, config.agent, spec)
    assert agent.phases()


@pytest.mark.parametrize("preset", ("default", "tiny"))
def test_ensemble_config_builds(preset):
  from worldmodels.models import ensemble  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = importlib.import_module("experiments.configs.ensemble").get_config(preset)
  assert config.model_name == "ensemble" and config.dataset.observation_key == "state"
  model = ensemble.Ensemble(5, 2, config.model).init(jax.random.PRNGKey(0))
  members = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(model.params["params"]["members"])}
  assert members == {config.model.num_members}
  assert model.input_mean.shape == (7,) and model.elites.shape == (config.model.num_elites,)


@pytest.mark.parametrize("preset", ("default", "paper", "cpu", "cpu_pixels", "cpu_pixels_long",
                                    "tiny", "cpu,dreamerv3"))
def test_rssm_config_builds(preset):
  from worldmodels.models import rssm  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = importlib.import_module("experiments.configs.rssm").get_config(preset)
  size = 64 if preset == "paper" else 32
  observations = {key: ((size, size, 3), "uint8") if key == "pixels" else ((24,), "float32")
                  for key in config.dataset.observation_keys}
  model = rssm.RSSM.for_spec(DataSpec(observations, 6), config.model)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))  # every layer, no arithmetic
  assert shapes.net["params"]["prior"]["Dense_1"]["kernel"].shape[0] == config.model.prior_heads


@pytest.mark.parametrize("preset", ("default", "cpu", "tiny"))
def test_cadm_config_builds(preset):
  from worldmodels.agents.cadm.model import CaDM  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = importlib.import_module("experiments.configs.cadm").get_config(preset)
  assert config.model_name == "cadm" and config.dataset.observation_key == "state"
  shapes = jax.eval_shape(CaDM(5, 2, config.model).init, jax.random.PRNGKey(0))
  members = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(
      shapes.params["params"]["forward_model"]) if leaf.ndim == 3}  # [E, in, out] kernels
  assert members == {config.model.num_members}


def test_offline_dv2_experiment_presets_agree_with_the_configs():
  """The experiment's preset -> catalog observation map matches what both configs encode."""
  from experiments.vd4rl import offline_dv2 as experiment  # pylint: disable=g-import-not-at-top
  for preset, observation in experiment.PRESETS.items():
    model = importlib.import_module("experiments.configs.rssm").get_config(preset)
    agent = importlib.import_module("experiments.configs.offline_dv2").get_config(preset)
    keys = ("state",) if observation == "state" else ("pixels",)
    assert tuple(model.dataset.observation_keys) == tuple(agent.dataset.observation_keys) == keys
    if observation != "state":
      assert agent.env.obs_type == "pixels" and f"{agent.env.image_size}px" == observation
    else:
      assert agent.env.obs_type == "state"


def test_every_config_file_is_tested():
  assert set(ALL_CONFIG_FILES) == (set(CONFIG_FILES) | set(MODEL_CONFIG_FILES)
                                   | set(EXPERIMENT_CONFIG_FILES))


@pytest.mark.parametrize("name", ALL_CONFIG_FILES)
def test_unknown_preset_names_the_choices(name):
  module = importlib.import_module(f"experiments.configs.{name}")
  with pytest.raises(ValueError, match="unknown .* preset 'huge'"):
    module.get_config("huge")


def test_helpfull_lists_the_flags():
  out = subprocess.run([sys.executable, "-m", "experiments.train", "--helpfull"],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
  # absl's --helpfull exits with status 1 after printing every flag.
  assert out.returncode in (0, 1), out.stderr
  assert "--config" in out.stdout and "experiments.train" in out.stdout
  assert "Traceback" not in out.stderr


def test_paper_scale_flags_give_the_papers_sizes():
  """``--paper_scale`` (for accelerators): 5 seeds, MOPO 400k / AugWM 900k updates, the paper's
  grid per task with 5 episodes per cell, agent-default 50k rollout starts; without it, the CPU
  sizes; a size flag overrides its preset."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from benchmarks.shifts import CHEETAH_GRID_FACTORS, WALKER_GRID_FACTORS  # pylint: disable=import-outside-toplevel
  from experiments import zero_shot  # pylint: disable=import-outside-toplevel
  from experiments.augwm import run as augwm_run  # pylint: disable=import-outside-toplevel
  from experiments.configs.zero_shot import augwm_updates  # pylint: disable=import-outside-toplevel
  from experiments.configs import mopo as mopo_configs  # pylint: disable=import-outside-toplevel

  values = flags.FlagValues()  # a private registry, not the process's flags
  common = zero_shot.CommonFlags("/tmp/results", flag_values=values)
  values(["prog", "--paper_scale", "--task=cheetah-run", "--preset=halfcheetah-medium"])
  five_hundred_steps = types.SimpleNamespace(episode_steps=lambda task: 500,
                                             action_repeat=lambda: 2)
  assert [run.steps for run in augwm_run.agent_runs(common, five_hundred_steps)] == [
      400_000, 900_000]
  sizes = common.config()
  assert (sizes.seeds, sizes.stage_preset, sizes.grid_episodes) == (5, "default", 5)
  assert common.grid_factors() == list(CHEETAH_GRID_FACTORS)
  c = mopo_configs.get_config(sizes.stage_preset)
  common.model_based(c)
  assert (c.agent.horizon, c.agent.penalty_coef, c.agent.rollout_batch_size) == (1, 1.0, 50_000)
  values.unparse_flags()
  values(["prog", "--paper_scale", "--task=walker-walk"])
  assert common.grid_factors() == list(WALKER_GRID_FACTORS)
  values.unparse_flags()
  values(["prog", "--task=cheetah-run"])  # the CPU default
  # AugWM trains for the paper's 2.25 x MOPO's updates.
  assert [run.steps for run in augwm_run.agent_runs(common, five_hundred_steps)] == [
      30_000, 67_500]
  assert common.grid_factors() == [0.5, 1.0, 1.5] and common.config().seeds == 3
  values.unparse_flags()
  values(["prog", "--sizes=demo", "--steps=123", "--factors=1,2"])
  sizes = common.config()
  assert (sizes.seeds, sizes.mopo_steps, augwm_updates(sizes)) == (1, 123, 123)  # demo: 1 x
  assert common.grid_factors() == [1.0, 2.0]
  values.unparse_flags()
  values(["prog", "--paper_scale", "--augwm_steps=7"])
  assert augwm_updates(common.config()) == 7
  values.unparse_flags()
  values(["prog", "--paper_scale"])
  assert augwm_updates(common.config()) == 900_000
  values.unparse_flags()
  values(["prog", "--tiny", "--seeds=3"])
  sizes = common.config()
  assert (sizes.stage_preset, sizes.seeds, sizes.mopo_steps, sizes.table3) == (
      "tiny", 3, 40, False)


def test_penalty_flag_sets_every_model_based_agent_and_names_its_stages():
  """--penalty_coef overrides table 3's lambda and names the stages as the lambda sweep does
  (the demo's sizes carry the sweep's choice, 0.1); --seeds_per_run splits the seeds into
  vmapped runs."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from experiments import zero_shot  # pylint: disable=import-outside-toplevel
  from experiments.augwm import run as augwm_run  # pylint: disable=import-outside-toplevel
  from experiments.configs import augwm as augwm_configs  # pylint: disable=import-outside-toplevel
  from worldmodels.errors import ConfigError  # pylint: disable=import-outside-toplevel

  values = flags.FlagValues()
  common = zero_shot.CommonFlags("/tmp/results", flag_values=values)
  inputs = types.SimpleNamespace(episode_steps=lambda task: 1000, action_repeat=lambda: 1)
  values(["prog", "--preset=halfcheetah-medium", "--penalty_coef=0.3", "--seeds=5",
          "--seeds_per_run=3"])
  runs = augwm_run.agent_runs(common, inputs, no_context=["rad"])
  assert [run.stage for run in runs] == ["mopo-lambda0.3", "augwm-das-context-lambda0.3",
                                         "augwm-rad-nocontext-lambda0.3"]
  c = augwm_configs.get_config("demo")
  runs[1].configure(c)
  assert (c.agent.horizon, c.agent.penalty_coef) == (1, 0.3)  # table 3's h, the flag's lambda
  sizes = common.config()
  assert [list(g) for g in zero_shot.seed_groups(sizes)] == [[0, 1, 2], [3, 4]]
  assert zero_shot.run_workdir(runs[0], sizes, "w") == "w/mopo-lambda0.3-seeds0-2"
  values.unparse_flags()
  values(["prog", "--sizes=demo"])
  assert common.config().penalty_coef == 0.1
  assert [list(g) for g in zero_shot.seed_groups(common.config())] == [[0]]
  assert augwm_run.agent_runs(common, inputs)[0].stage == "mopo-lambda0.1"
  values.unparse_flags()
  values(["prog", "--seeds=4"])  # no table-3 override: the stage keeps its name
  assert [list(g) for g in zero_shot.seed_groups(common.config())] == [[0, 1, 2, 3]]
  assert augwm_run.agent_runs(common, inputs)[0].stage == "mopo"
  values.unparse_flags()
  values(["prog", "--seeds_per_run=0"])
  with pytest.raises(ConfigError, match="--seeds_per_run=0"):
    zero_shot.seed_groups(common.config())


@pytest.mark.parametrize("preset", ("cpu", "demo", "paper", "tiny"))
def test_experiment_size_presets_build(preset):
  from experiments.configs import zero_shot as size_configs  # pylint: disable=import-outside-toplevel
  sizes = size_configs.get_config(preset)
  model = importlib.import_module("experiments.configs.ensemble").get_config(sizes.model_preset)
  assert model.model_name == "ensemble"
  for agent in ("sac", "mopo", "augwm", "td3bc", "bc"):
    config = importlib.import_module(f"experiments.configs.{agent}").get_config(sizes.stage_preset)
    assert config.agent_name == agent and config.agent.num_steps > 0
