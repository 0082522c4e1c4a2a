"""The offline zero-shot experiment pipeline shared by the MOPO and AugWM experiments.

dataset (SAC replay) -> ensemble artifact -> offline agents over seeds -> unshifted returns and a
zero-shot mass x damping grid -> Markdown results, heatmaps and a Welch t-test comparison. Every
stage is skipped or resumed when its output already exists in the workdir, so experiments that
share a workdir share their dataset, model and finished agents. The dataset is loaded once per
process (one ``DataSource``) and shared by the ensemble and every agent and seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import flags
import numpy as np

from benchmarks.datasets import catalog
from benchmarks.envs import (DEFAULT_EPISODE_LENGTH, GYM_TASKS, SUITE_EPISODE_FRAMES,
                             make_env_factory, make_gym_env_factory)
from benchmarks.datasets.report import D4RL_REFERENCE_RETURNS
from benchmarks.protocols.zero_shot import (GridResult, aggregate_scores, evaluate_grid,
                                            merge_seeds, overview_figure, shared_scale)
from benchmarks.shifts import (CHEETAH_GRID_FACTORS, WALKER_GRID_FACTORS, grid,
                               make_shifted_env_factory)
from experiments import train as train_launcher
from experiments import train_model as model_launcher
from experiments.configs import ensemble as ensemble_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import sac as sac_configs
from experiments.configs import zero_shot as size_configs
from worldmodels.io import atomic_text
from worldmodels.data import format_statistics_table, read_metadata
from worldmodels.data.source import DataSource
from worldmodels.errors import ConfigError
from worldmodels.models.artifacts import read_model_metadata
from worldmodels.provenance import FINGERPRINT_FILE, digest, file_digest, refuse_unless_same
from worldmodels.training.seeds import unstack_seeds

PolicyFactory = Callable[[Any], Any]  # trained agent -> the stateful policy evaluated


@dataclasses.dataclass
class AgentRun:
  """One trained agent (over seeds) and the ways it is evaluated.

  Attributes:
    stage: workdir prefix (``<stage>-seed0``, or ``<stage>-seeds0-<k>`` for vmapped seeds).
    configs: the agent's launcher config module (``get_config(preset)``).
    steps: updates per seed.
    configure: extra config edits (e.g. MOPO's horizon), applied after the defaults.
    evaluations: table row name -> policy factory for the grid (e.g. AugWM with the default
      and with the learned context), each row evaluated unshifted and on the grid.
    needs_model: set ``agent.model_path``.
  """

  stage: str
  configs: Any
  steps: int
  evaluations: Dict[str, PolicyFactory]
  configure: Callable[[Any], None] = lambda c: None
  needs_model: bool = False


def default_policy(agent):
  """The agent's own policy."""
  return agent


_SIZE_FLAGS = (
    # (flag, kind, config fields it sets, help)
    ("seeds", "integer", ("seeds",), "Seeds per agent."),
    ("seeds_per_run", "integer", ("seeds_per_run",), "Seeds vmapped in one run: the seeds are "
     "trained in runs of this many (seeds 0-2, then 3-4, ...), so a finished 3-seed run is "
     "reused when --seeds grows to 5."),
    ("penalty_coef", "float", ("penalty_coef",), "MOPO's penalty lambda for every "
     "model-based agent, e.g. the one the lambda sweep chose (their stages are then named "
     "<stage>-lambda<value>, as the sweep's). Default: AugWM table 3's for --preset."),
    ("sac_steps", "integer", ("sac_steps",),
     "Env steps of the behaviour SAC whose replay is the dataset."),
    ("model_max_epochs", "integer", ("model_max_epochs",),
     "Cap on ensemble epochs (early stopping may end it sooner)."),
    ("steps", "integer", ("mopo_steps",), "MOPO updates per seed (AugWM's follow at the "
     "preset's augwm_budget_ratio: 2.25 x, the paper's, unless --augwm_steps)."),
    ("augwm_steps", "integer", ("augwm_steps",), "AugWM updates per seed."),
    ("td3bc_steps", "integer", ("td3bc_steps",), "TD3+BC updates per seed."),
    ("bc_steps", "integer", ("bc_steps",), "BC updates per seed."),
    ("rollout_batch", "integer", ("rollout_batch",), "Model rollout starts."),
    ("factors", "list", ("factors",), "Mass and damping factors of the grid."),
    ("grid_episodes", "integer", ("grid_episodes",), "Episodes per grid cell and seed."),
    ("eval_episodes", "integer", ("eval_episodes",), "Unshifted evaluation episodes per seed."),
)


class CommonFlags:
  """The flags every zero-shot experiment program shares (define once, in ``__main__`` only).

  The experiment's sizes come from one preset of ``experiments/configs/zero_shot.py``
  (``--sizes``, or ``--tiny`` / ``--paper_scale``); every size flag left unset takes the
  preset's value, a set one overrides it (:meth:`config`).
  """

  def __init__(self, publish_dir: str, flag_values: flags.FlagValues = flags.FLAGS, *,
               sizes: str = "cpu", workdir: str = "runs/mopo", seeds: Optional[int] = None):
    """Defines the flags (in ``flag_values``).

    Args:
      publish_dir: where ``--publish`` writes the results (the committed ones, beside the
        experiment).
      flag_values: the flag registry.
      sizes: default ``--sizes`` preset (the demo's is ``demo``).
      workdir: default ``--workdir``.
      seeds: default ``--seeds`` (None: the preset's), e.g. the demo's one seed at any size.
    """
    define = lambda kind, name, value, text: getattr(flags, f"DEFINE_{kind}")(
        name, value, text, flag_values=flag_values)
    self.task = define("string", "task", "cheetah-run", "dm_control task.")
    self.workdir = define("string", "workdir", workdir,
                          "Runs, dataset and model (shared by the MOPO and AugWM runs).")
    self.results_dir = define("string", "results_dir", None, "Where the results are written "
                              "(default: <workdir>/results/<experiment>; see --publish).")
    self.publish = define("bool", "publish", False, f"Write the results into {publish_dir}, "
                          "the committed results beside the experiment, instead of the workdir.")
    self._publish_dir = publish_dir
    self.preset = define("string", "preset", "halfcheetah-mixed",
                         "AugWM table-3 preset giving (h, lambda).")
    self.sizes = flags.DEFINE_enum(
        "sizes", sizes, list(size_configs.PRESETS), "Experiment sizes: a preset of "
        "experiments/configs/zero_shot.py; the size flags override it.", flag_values=flag_values)
    self.tiny = define("bool", "tiny", False, "Smoke-test sizes (seconds): --sizes=tiny.")
    self.paper_scale = define(
        "bool", "paper_scale", False, "The AugWM paper's sizes, for accelerators "
        "(--sizes=paper): 5 seeds, MOPO 400k / AugWM 900k updates (table 4), 50k rollout "
        "starts, the paper's 7 x 7 (cheetah) or 5 x 5 (walker) grid with 5 episodes per cell, "
        "the ensemble trained until early stopping.")
    program_defaults = {"seeds": seeds}
    self._size_flags = {
        name: define(kind, name, program_defaults.get(name),
                     f"{text} Default: the --sizes preset's." if name not in program_defaults
                     or program_defaults[name] is None else text)
        for name, kind, _, text in _SIZE_FLAGS}
    self.dataset = define(
        "string", "dataset", None, "Train on this dataset instead of the SAC replay: a dataset "
        "directory or a catalog name such as vd4rl/cheetah_run/medium/state "
        "(benchmarks.datasets).")
    self.data_root = define("string", "data_root", None, "Catalog root for --dataset names "
                            "(default $WORLDMODELS_DATA or ~/.worldmodels/datasets).")

  def output_dir(self) -> str:
    """Where results go: ``--results_dir``, the committed directory with ``--publish``, else
    ``<workdir>/results/<experiment>`` (default runs never overwrite committed results, and
    the programs sharing a workdir keep their own results).

    Raises:
      ConfigError: both ``--publish`` and ``--results_dir``.
    """
    if self.publish.value and self.results_dir.value:
      raise ConfigError("--publish and --results_dir both say where the results go; give one.")
    if self.publish.value:
      return self._publish_dir
    return self.results_dir.value or os.path.join(
        self.workdir.value, "results", os.path.basename(os.path.normpath(self._publish_dir)))

  def config(self):
    """The experiment's sizes: the preset with the size flags that were set applied."""
    preset = ("tiny" if self.tiny.value else "paper" if self.paper_scale.value
              else self.sizes.value)
    c = size_configs.get_config(preset)
    for name, _, fields, _ in _SIZE_FLAGS:
      value = self._size_flags[name].value
      if value is not None:
        for field in fields:
          c[field] = tuple(float(v) for v in value) if name == "factors" else value
    return c

  def grid_factors(self) -> List[float]:
    factors = self.config().factors
    if factors is None:  # the paper's grid of the task
      return list(CHEETAH_GRID_FACTORS if self.task.value.lower().startswith(("cheetah",
                                                                             "halfcheetah"))
                  else WALKER_GRID_FACTORS)
    return [float(f) for f in factors]

  def model_based(self, c) -> None:
    """Table-3 (h, lambda) (unless the sizes keep the stage preset's) and the rollout batch
    (None: the stage preset's, e.g. the agent default 50,000 at paper scale)."""
    sizes = self.config()
    if sizes.table3:
      c.agent.horizon, c.agent.penalty_coef = mopo_configs.TABLE3[self.preset.value]
    if sizes.penalty_coef is not None:
      c.agent.penalty_coef = float(sizes.penalty_coef)
    if sizes.rollout_batch is not None:
      c.agent.rollout_batch_size = sizes.rollout_batch

  def prepare(self) -> "Prepared":
    """The sizes, the dataset (loaded once) and the model, building what is missing (after
    checking the flags, so that bad ones fail before any training)."""
    self.output_dir()
    sizes = self.config()
    if self.dataset.value:
      dataset = catalog.dataset_path(self.dataset.value, self.data_root.value)
    else:
      dataset = ensure_dataset(self.task.value, sizes, self.workdir.value)
    source = load_source(dataset)
    recorded_task = source.metadata().get("task")
    if recorded_task is not None and recorded_task != self.task.value:
      raise ConfigError(f"--dataset={self.dataset.value} was recorded on {recorded_task}, but "
                        f"--task is {self.task.value}: pass --task={recorded_task}.")
    model = ensure_model(dataset, self.workdir.value, sizes, source)
    return Prepared(sizes, dataset, model, source)


@dataclasses.dataclass
class Prepared:
  """What every agent of an experiment trains from.

  Attributes:
    sizes: the experiment's sizes (``experiments/configs/zero_shot.py``).
    dataset: the dataset directory.
    model: the ensemble artifact directory.
    source: the dataset, loaded once (state observations).
  """

  sizes: Any
  dataset: str
  model: str
  source: DataSource

  def action_repeat(self) -> int:
    """The dataset's action repeat (2 when it records none: the dm_control default)."""
    return int(self.source.metadata().get("action_repeat") or 2)

  def episode_steps(self, task: str) -> int:
    """Agent steps of an evaluation episode of ``task`` at these sizes and the dataset's
    action repeat."""
    return episode_steps(task, self.sizes.episode_length, self.action_repeat())


def load_source(dataset: str) -> DataSource:
  """The dataset's state observations as a data source, timed (loaded once per process)."""
  started = time.time()
  source = DataSource.load(dataset, observation_keys=("state",))
  print(f"== data: {dataset} loaded in {time.time() - started:.2f} s "
        f"({source.nbytes() / 2**20:.1f} MiB on the device)", flush=True)
  return source


def _configure(c, task, sizes, workdir, stage, steps, seed):
  c.env.task = task
  c.env.episode_length = sizes.episode_length
  c.seed = seed
  c.workdir = os.path.join(workdir, f"{stage}-seed{seed}")
  c.agent.num_steps = steps
  c.loop.eval_episodes = sizes.eval_episodes
  c.loop.eval_every = max(steps // 3, 1)
  c.loop.checkpoint_every = max(steps // 3, 1)
  return c


def dataset_label(task: str, metadata: dict) -> str:
  """The dataset's name in statistics tables: ``<task> <kind>`` from its card, else
  ``<task> SAC replay``."""
  card = metadata.get("extra", {}).get("card", {})
  return f"{task} {card['kind']}" if card else f"{task} SAC replay"


def describe_dataset(metadata: dict, sac_steps: int) -> str:
  """One sentence on where a dataset came from (its card, else the SAC replay of a run)."""
  card = metadata.get("extra", {}).get("card", {})
  if card:
    procedure = "D4RL" if "differences_from_d4rl" in card else "V-D4RL"
    return (f"{procedure}-procedure dataset `{card.get('kind')}` of {metadata['task']} "
            f"(`benchmarks.datasets`): {card.get('policy', '')}.")
  return (f"The replay of online SAC ({sac_steps} env steps, action repeat 2), a mixed / "
          "medium-replay style dataset.")


def _refuse_unless_same(path: str, recorded: Optional[dict], asked: dict, what: str,
                       workdir: str) -> None:
  refuse_unless_same(path, recorded, asked, what,
                     f"give the experiment another --workdir than {workdir}")


def ensure_dataset(task: str, sizes, workdir: str) -> str:
  """The replay of an online SAC run (a mixed / medium-replay style dataset); an existing one
  is reused only when the same SAC configuration made it."""
  path = os.path.join(workdir, "dataset")
  sac = _configure(sac_configs.get_config(sizes.stage_preset), task, sizes, workdir, "sac",
                   sizes.sac_steps, 0)
  sac.save_replay = path
  sac.loop.replay_capacity = sizes.sac_steps + sizes.sac_steps // 10 + 10
  if os.path.exists(path):
    train_launcher.resolve_config(sac)
    _refuse_unless_same(path, read_metadata(path)["extra"].get("fingerprint"),
                        train_launcher.run_fingerprint(sac, None), "dataset", workdir)
    return path
  print(f"== dataset: SAC online on {task}, {sizes.sac_steps} env steps", flush=True)
  train_launcher.run(sac)
  return path


def ensure_model(dataset: str, workdir: str, sizes, source: Optional[DataSource] = None) -> str:
  """The ensemble artifact trained on ``dataset`` with the sizes' model preset
  (``sizes.model_max_epochs`` caps training when early stopping has not ended it; ``source``:
  the dataset, already loaded)."""
  path = os.path.join(workdir, "ensemble")
  mc = ensemble_configs.get_config(sizes.model_preset)
  mc.dataset.path, mc.output = dataset, path
  if sizes.model_max_epochs is not None:
    mc.model.max_epochs = sizes.model_max_epochs
  if os.path.exists(path):
    recorded = read_model_metadata(path)["provenance"].get("fingerprint")
    _refuse_unless_same(path, recorded, model_launcher.model_fingerprint(mc, source),
                        "world model", workdir)
    return path
  print("== ensemble", flush=True)
  model_launcher.run(mc, source)
  return path


def slug(name: str) -> str:
  return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def _cached(path: str, compute: Callable[[], GridResult]) -> GridResult:
  """Loads a saved evaluation, or computes and saves it (evaluations resume too)."""
  if os.path.exists(path):
    return GridResult.load(path)
  result = compute()
  result.save(path)
  return result


def stage_config(run: AgentRun, seed: int, task: str, inputs: Prepared, workdir: str):
  """The launcher config of seed ``seed`` of ``run``: its stage preset, the sizes, the
  dataset and model, then the run's own edits."""
  c = _configure(run.configs.get_config(inputs.sizes.stage_preset), task, inputs.sizes, workdir,
                 run.stage, run.steps, seed)
  c.dataset.path = inputs.dataset
  if run.needs_model:
    c.agent.model_path = inputs.model
  run.configure(c)
  return c


def model_based_stage(stage: str, sizes) -> str:
  """A model-based agent's stage name: ``stage``, or ``<stage>-lambda<value>`` when the sizes
  set MOPO's penalty (``--penalty_coef``), the lambda sweep's names."""
  return stage if sizes.penalty_coef is None else f"{stage}-lambda{sizes.penalty_coef:g}"


def seed_groups(sizes) -> List[range]:
  """The seeds ``0 .. sizes.seeds - 1`` in runs of ``sizes.seeds_per_run`` (None: one run)."""
  per_run = sizes.seeds if sizes.seeds_per_run is None else sizes.seeds_per_run
  if per_run < 1:
    raise ConfigError(f"--seeds_per_run={per_run}: must be at least 1.")
  return [range(first, min(first + per_run, sizes.seeds))
          for first in range(0, sizes.seeds, per_run)]


def _group_workdir(stage: str, seeds: range, workdir: str) -> str:
  return os.path.join(workdir, f"{stage}-seeds{seeds[0]}-{seeds[-1]}" if len(seeds) > 1
                      else f"{stage}-seed{seeds[0]}")


def run_workdir(run: AgentRun, sizes, workdir: str) -> str:
  """Where ``run`` trains its first seeds: ``<stage>-seeds0-<k>`` for several vmapped seeds,
  else ``<stage>-seed0`` (the later runs of :func:`seed_groups` are ``<stage>-seeds<i>-<j>``)."""
  return _group_workdir(run.stage, seed_groups(sizes)[0], workdir)


def trained_agents(run: AgentRun, task: str, inputs: Prepared, workdir: str):
  """Trains the seeds ``0 .. sizes.seeds - 1`` of ``run`` (or restores the finished runs from
  the workdir), in the runs of :func:`seed_groups`: several seeds as one vmapped run
  (``--config.num_seeds``, workdir ``<stage>-seeds<i>-<j>``), one seed as its own run
  (``<stage>-seed<i>``).

  Returns:
    ``(agent, final state per seed, launcher config per seed)``.
  """
  states, configs = [], []
  for seeds in seed_groups(inputs.sizes):
    c = stage_config(run, seeds[0], task, inputs, workdir)
    if len(seeds) > 1:
      c.num_seeds = len(seeds)
    c.workdir = _group_workdir(run.stage, seeds, workdir)
    print(f"== {run.stage} " + (f"seeds {seeds[0]}-{seeds[-1]}, vmapped" if len(seeds) > 1
                                else f"seed {seeds[0]}") + f": {run.steps} updates", flush=True)
    _, agent, result = train_launcher.run_with_agent(c, inputs.source)
    group = unstack_seeds(result.state) if len(seeds) > 1 else [result.state]
    states.extend(group)
    configs.extend([c] * len(group))
  return agent, states, configs


def _linear_r2(carry) -> Optional[float]:
  """The episode's R^2 of AugWM's online linear model (None for other policies)."""
  return carry.linear.r2() if hasattr(carry, "linear") and carry.step > 2 else None


def evaluation_env_factory(task: str, episode_length: Optional[int],
                           action_repeat: Optional[int] = None):
  """``seed -> env`` of ``task`` (a gymnasium ``GYM_TASKS`` id or a dm_control task) that also
  observes its physics state, for policies that consult the simulator (the oracle context); the
  agents read only their observation key.

  Args:
    episode_length: agent steps (None: the suite's, 1000 for gymnasium, 500 for dm_control).
    action_repeat: the dataset's (None: 1 for gymnasium, 2 for dm_control).
  """
  settings = {"record_physics": True}
  if episode_length is not None:
    settings["episode_length"] = episode_length
  if action_repeat is not None:
    settings["action_repeat"] = action_repeat
  if task in GYM_TASKS:
    return make_gym_env_factory(task, **settings)
  return make_env_factory(task, **settings)


def episode_steps(task: str, episode_length: Optional[int],
                  action_repeat: Optional[int] = None) -> int:
  """Agent steps of an evaluation episode of ``task``: ``episode_length`` when set, else the
  suite's (gymnasium: 1000; dm_control: 1000 frames at the action repeat, 2 when None)."""
  if episode_length is not None:
    return episode_length
  if task in GYM_TASKS:
    return DEFAULT_EPISODE_LENGTH
  return SUITE_EPISODE_FRAMES // (action_repeat or 2)


def run_agents(task: str, inputs: Prepared, workdir: str, runs: Sequence[AgentRun],
               factors: Sequence[float] = (), settings: Optional[Sequence[Any]] = None,
               tag: str = "grid"):
  """Trains every run over seeds and evaluates each evaluation row on the settings.

  Args:
    factors: mass x damping factors of the grid (used when ``settings`` is None).
    settings: the perturbations to evaluate on (any list, e.g. crippled actuators); empty
      (with no ``factors``): the unshifted evaluation only.
    tag: names the cached per-seed evaluations (``<tag>-<row>-<digest>.json`` in each run's
      workdir; the digest covers the trained run, the settings and the episodes).

  Returns:
    ``(unshifted, results, linear_r2)``: row name -> per-seed unshifted returns; row name ->
    GridResult over the settings; row name -> per-episode R^2 of the online linear model
    (learned-context rows).
  """
  sizes = inputs.sizes
  settings = grid(factors, factors) if settings is None else list(settings)
  base_factory = evaluation_env_factory(task, sizes.episode_length,
                                        inputs.source.metadata().get("action_repeat"))
  factory_for = lambda setting: make_shifted_env_factory(base_factory, setting)
  unshifted: Dict[str, List[float]] = {}
  seed_grids: Dict[str, List[GridResult]] = {}
  linear_r2: Dict[str, List[float]] = {}
  for run in runs:
    agent, states, configs = trained_agents(run, task, inputs, workdir)
    for seed, (state, c) in enumerate(zip(states, configs)):
      # Runs of several seeds share a workdir: their cached evaluations are named per seed.
      seed_part = [f"seed {seed}"] if len(states) > 1 else []
      for row, policy_for in run.evaluations.items():
        policy = policy_for(agent)
        r2: List[float] = []  # per episode evaluated in this process
        keep_r2 = lambda cell, episode, result: r2.append(_linear_r2(result.carry))
        # Cached evaluations are named after what makes them: the trained run, the row, the
        # settings and the episodes, so a changed grid is never served from an old cache.
        run_digest = file_digest(os.path.join(c.workdir, FINGERPRINT_FILE))
        name = lambda kind, *parts: (
            f"{kind}-{slug(row)}-"
            f"{digest([run_digest, row, sizes.episode_length, *seed_part, *parts])[:8]}.json")
        # Unshifted: the default dynamics, with this row's policy (e.g. its test-time context).
        default = _cached(os.path.join(c.workdir, name("unshifted", sizes.eval_episodes,
                                                       "seeds 10000+1000k")),
                          lambda: evaluate_grid(policy, state, factory_for, grid([1.0], [1.0]),
                                                sizes.eval_episodes, seed=10_000 + 1000 * seed,
                                                on_episode=keep_r2))
        unshifted.setdefault(row, []).append(float(default.returns.mean()))
        if not settings:
          continue
        seed_grid = _cached(os.path.join(c.workdir, name(tag, [s.name for s in settings],
                                                         sizes.grid_episodes)),
                            lambda: evaluate_grid(policy, state, factory_for, settings,
                                                  sizes.grid_episodes, seed=20_000 + 100 * seed,
                                                  on_episode=keep_r2))
        seed_grids.setdefault(row, []).append(seed_grid)
        r2 = [value for value in r2 if value is not None]
        r2_path = os.path.join(c.workdir, name("r2", [s.name for s in settings],
                                               sizes.grid_episodes, sizes.eval_episodes))
        if tag == "grid" and r2:
          with atomic_text(r2_path) as f:  # AugWM's online linear model on the episodes
            json.dump(r2, f)
        if os.path.exists(r2_path):
          with open(r2_path) as f:
            linear_r2.setdefault(row, []).extend(json.load(f))
  return unshifted, {row: merge_seeds(g) for row, g in seed_grids.items()}, linear_r2


def plot_grids(results_dir: str, grids: Dict[str, GridResult], title: str,
               task: str) -> Optional[tuple]:
  """One heatmap per row on one colour scale, and the overview figure (every row, and its
  difference to MOPO); returns the scale (None, and no figure, for settings off a grid)."""
  if not all(g.is_grid for g in grids.values()):
    return None
  scale = shared_scale(list(grids.values()))
  for name, result in grids.items():
    result.heatmap(os.path.join(results_dir, f"grid_{slug(name)}.png"),
                   f"{name} on {task}: mass x damping, zero-shot", scale)
  overview_figure(grids, os.path.join(results_dir, "overview.png"),
                  f"{title}: every agent's zero-shot grid on one scale, and its difference "
                  "to MOPO", baseline="MOPO" if "MOPO" in grids else None)
  return scale


def score_normalisation(task: str, episode_steps_: int, action_repeat: int) -> tuple:
  """``(low, high, description)`` mapping a return of ``task`` to a normalised score: D4RL's
  random and expert references for the gymnasium tasks, dm_control's return range (at most 1
  per frame) otherwise."""
  if task in D4RL_REFERENCE_RETURNS:
    low, high = D4RL_REFERENCE_RETURNS[task]
    return low, high, f"D4RL's random ({low:g}) and expert ({high:g}) reference returns"
  frames = episode_steps_ * action_repeat
  return 0.0, float(frames), f"dm_control's return range, 0 to {frames} (1 per frame)"


def aggregates_section(grids: Dict[str, GridResult], normalisation: tuple) -> tuple:
  """The rliable-style aggregates over cells of every row with at least 2 seeds: Markdown and
  a JSON-able dict (empty when no row has 2 seeds)."""
  low, high, description = normalisation
  rows, values = [], {}
  for name, result in grids.items():
    if len(result.seeds) < 2:
      continue
    aggregates = aggregate_scores(result.normalised_scores(low, high))
    values[name] = {k: dataclasses.asdict(v) for k, v in aggregates.items()}
    rows.append(f"| {name} | {aggregates['IQM'].text()} | "
                f"{aggregates['Optimality gap'].text()} |")
  if not rows:
    return "", values
  return ("### Aggregates over cells\n\nrliable-style, over every (seed, cell) score: the "
          "interquartile mean (IQM) and the optimality gap (the mean shortfall below a score "
          "of 1), each with a 95% stratified-bootstrap percentile interval (2,000 resamples; "
          "each cell's seeds resampled on their own, `scipy.stats.bootstrap`). Score: a "
          f"seed's mean return in a cell, normalised by {description} to 0 and 1.\n\n"
          "| Agent | IQM [95% CI] | Optimality gap [95% CI] |\n| --- | ---: | ---: |\n"
          + "\n".join(rows) + "\n\n"), values


def write_results(results_dir: str, title: str, command: str, revision: str, started: float,
                  task: str,
                  sizes, dataset: str, model_path: str, unshifted, grids,
                  comparisons: Sequence[tuple], settings_text: str,
                  linear_r2: Optional[Dict[str, List[float]]] = None) -> str:
  """Writes ``RESULTS.md``, one heatmap per row, and ``results.json``; returns the main table.

  ``revision`` is the code's git revision, taken when the run started (before any result file
  was rewritten).
  """
  os.makedirs(results_dir, exist_ok=True)
  dataset_metadata = read_metadata(dataset)
  stats = dataset_metadata["statistics"]
  label = dataset_label(task, dataset_metadata)
  model_meta = read_model_metadata(model_path)
  report = model_meta["report"]
  lines = ["| Agent | Seeds | Unshifted return | Per seed | Grid mean |",
           "| --- | ---: | ---: | --- | ---: |"]
  for name, values in unshifted.items():
    values = np.asarray(values)
    gm, gs = grids[name].overall_mean_std()
    if len(values) > 1:  # ± over seeds
      unshifted_text, grid_text = f"{values.mean():.1f} ± {values.std():.1f}", f"{gm:.1f} ± {gs:.1f}"
    else:  # one seed: no spread over seeds to show
      unshifted_text = f"{values.mean():.1f}"
      grid_text = f"{gm:.1f} (± {gs:.1f} over episodes)"
    lines.append(f"| {name} | {len(values)} | {unshifted_text} | "
                 f"{', '.join(f'{v:.1f}' for v in values)} | {grid_text} |")
  main_table = "\n".join(lines)
  for name, result in grids.items():
    result.save(os.path.join(results_dir, f"grid_{slug(name)}.json"))  # per-seed returns
  scale = plot_grids(results_dir, grids, title, task)
  action_repeat = int(dataset_metadata.get("action_repeat") or 2)
  aggregates_text, aggregates = aggregates_section(grids, score_normalisation(
      task, episode_steps(task, sizes.episode_length, action_repeat), action_repeat))
  seeds = sorted({len(v) for v in unshifted.values()})
  wall = time.time() - started
  with atomic_text(os.path.join(results_dir, "RESULTS.md")) as f:
    f.write(f"# {title}\n\nCommand: `{command.strip()}`; git revision `{revision}`; "
            f"{platform.machine()}, {os.cpu_count()} CPU cores; wall time of this invocation "
            f"{wall / 60:.1f} min (stages found done in the workdir are not re-run).\n\n"
            f"## Dataset\n\n{describe_dataset(dataset_metadata, sizes.sac_steps)}\n\n"
            f"{format_statistics_table(stats, label)}\n\n"
            "## World model (holdout)\n\n"
            f"Ensemble {model_meta['config']['num_members']} x "
            f"{model_meta['config']['hidden_sizes']}, {report['epochs']} epochs, "
            f"{report['transitions']} transitions, elites {report['elites']}.\n\n"
            f"- holdout MSE per member: {np.round(report['holdout_mse'], 5).tolist()}\n"
            f"- holdout NLL per member (nats/dim): {np.round(report['holdout_nll'], 3).tolist()}\n"
            f"- elites' MSE per dimension (delta_s..., r): "
            f"{np.round(report['elite_mse_per_dim'], 5).tolist()}\n"
            f"- elites' calibration (MSE / predicted variance; 1 = calibrated): "
            f"{np.round(report['elite_calibration'], 2).tolist()}\n\n"
            f"## Returns\n\nGrid: {len(next(iter(grids.values())).settings)} "
            f"cells, {sizes.grid_episodes} episodes per cell and seed; unshifted (default "
            f"dynamics): {sizes.eval_episodes} episodes per seed, each row with its own "
            "policy (e.g. its test-time context). The unshifted episodes use the env seeds of "
            "the training loop's final evaluation (10,000 + 1,000 x seed). Evaluated in one "
            "batch (evaluations cached before `3f05e6b`: one by one), an agent acting with its "
            "own policy matches the loop's episode-by-episode returns only up to float rounding, "
            "which long chaotic episodes amplify (HalfCheetah-v5: 2-4% per seed mean); ± is "
            "the std over seeds"
            + (" (one seed: the grid's ± is over its episodes, and the unshifted return has "
               "none)" if seeds == [1] else "") + ".\n\n"
            f"{main_table}\n\n"
            + ("![every agent on one scale, and minus MOPO](overview.png)\n\n"
               if scale is not None else "") + aggregates_text)
    for name, result in grids.items():
      f.write(f"### {name} on the grid ({result.samples_label})\n\n{result.returns_table()}"
              "\n\n" + (f"![{name}](grid_{slug(name)}.png)\n\n" if scale is not None else ""))
    for name, values in (linear_r2 or {}).items():
      values = np.asarray(values, float)
      values = values[np.isfinite(values)]
      if values.size:
        f.write(f"Online linear model of {name} (paper figure 4): one-step-ahead R^2 over an "
                f"episode, mean {values.mean():.3f}, median {np.median(values):.3f}, min "
                f"{values.min():.3f} over {values.size} evaluation episodes.\n\n")
    if comparisons:
      f.write("The t-tests are two-sided: an agent can also be worse than its baseline (RANS "
              "was, in experiments/augwm/RESULTS.md), and a one-sided test would halve the "
              "p-values in the one direction it presumes. They are Welch's, because the "
              "agents' spreads over seeds differ.\n\n")
    for a, b in comparisons:
      over = "seeds" if len(grids[a].seeds) > 1 else "episodes (one seed)"
      f.write(f"### {a} minus {b} per cell (two-sided Welch t-test over {over}; ★ p < 0.05)\n\n"
              f"{grids[a].compare(grids[b]).table()}\n\n")
    f.write(f"## Settings\n\n{settings_text}\n")
  with atomic_text(os.path.join(results_dir, "results.json")) as f:
    json.dump({"title": title, "task": task, "unshifted": unshifted,
               "grid_overall": {k: g.overall_mean_std() for k, g in grids.items()},
               "aggregates": aggregates}, f, indent=1)
  return main_table
