r"""AugWM experiments (issue 5) on the MOPO pipeline: MOPO vs AugWM (DAS, context) with the
default and the learned test-time context, and optionally augmentations without context
(figure 6), over seeds, on a zero-shot mass x damping grid. Shares ``--workdir`` with
``experiments.mopo.run`` so the dataset, the ensemble and MOPO's seeds are reused. Results go to
``<workdir>/results/augwm`` (``--publish``: the committed ones beside this file).

  python -m experiments.augwm.run [--task=cheetah-run] [--seeds=3] [--workdir=runs/mopo] \
      [--no_context_augmentations=rad,rans,das] [--dataset=vd4rl/cheetah_run/medium/state]

With ``--dataset`` (a directory or a catalog name of ``benchmarks.datasets``) the agents train on
that dataset instead of the SAC replay; ``experiments.augwm.table1`` gathers such runs over
dataset types into the paper's table 1.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List, Sequence

from absl import flags

from benchmarks.envs import GYM_TASKS
from benchmarks.shifts.oracle import OracleContext
from experiments import cli
from experiments import zero_shot
from experiments.configs import augwm as augwm_configs
from experiments.configs import mopo as mopo_configs
from experiments.configs import zero_shot as size_configs
from worldmodels.provenance import git_revision
from worldmodels.agents.augwm import config as augwm_config
from worldmodels.agents.augwm.context import AugWMPolicy


def context_policy(mode: str, episode_length: int):
  return lambda agent: AugWMPolicy(agent, mode=mode, episode_length=episode_length)


def _oracle_policy(task: str, action_repeat: int):
  """The true z of the test dynamics, measured against an unshifted simulator twin."""
  return lambda agent: AugWMPolicy(agent, mode="oracle", oracle=OracleContext(
      task, agent.config.z_low, agent.config.z_high, action_repeat))


def agent_runs(common: zero_shot.CommonFlags, inputs: zero_shot.Prepared,
               no_context: Sequence[str] = ()) -> List[zero_shot.AgentRun]:
  """MOPO, AugWM (DAS, context; rows: default, learned and oracle context) and, for each of
  ``no_context``, that augmentation without context: the runs every AugWM experiment shares
  (same stages, so a shared workdir trains each seed once), with the experiment's sizes. The
  learned context starts after ``k`` steps of the task's evaluation episodes (the agent
  config's ``adapt_after``, else its fraction of the episode)."""
  sizes = common.config()
  steps = inputs.episode_steps(common.task.value)

  def augwm(augmentation: str, use_context: bool):
    def configure(c):
      common.model_based(c)
      c.agent.augmentation, c.agent.use_context = augmentation, use_context
    return configure

  stage = lambda name: zero_shot.model_based_stage(name, sizes)
  runs = [
      zero_shot.AgentRun(stage("mopo"), mopo_configs, sizes.mopo_steps,
                         {"MOPO": zero_shot.default_policy}, common.model_based,
                         needs_model=True),
      zero_shot.AgentRun(stage("augwm-das-context"), augwm_configs,
                         size_configs.augwm_updates(sizes),
                         {"AugWM (DAS, default context)": context_policy("default", steps),
                          "AugWM (DAS, learned context)": context_policy("learned", steps),
                          "AugWM (DAS, oracle context)": _oracle_policy(common.task.value,
                                                                inputs.action_repeat())},
                         augwm("das", True), needs_model=True),
  ]
  for augmentation in no_context:
    runs.append(zero_shot.AgentRun(stage(f"augwm-{augmentation}-nocontext"), augwm_configs,
                                   size_configs.augwm_updates(sizes),
                                   {f"{augmentation.upper()} (no context)":
                                    context_policy("none", steps)},
                                   augwm(augmentation, False), needs_model=True))
  return runs


def settings_text(common: zero_shot.CommonFlags, inputs: zero_shot.Prepared,
                  runs: Sequence[zero_shot.AgentRun], factors: Sequence[float]) -> str:
  """The settings paragraph of RESULTS.md, from the configs the stages ran with and, for what
  was reduced, the paper preset's sizes."""
  sizes, paper = inputs.sizes, size_configs.get_config("paper")
  mopo, augwm = (zero_shot.stage_config(run, 0, common.task.value, inputs, common.workdir.value)
                 for run in runs[:2])
  m, a = mopo.agent, augwm.agent
  suite = "D4RL-style" if common.task.value in GYM_TASKS else "dm_control"
  table3 = f"AugWM table 3, {common.preset.value}"
  if sizes.penalty_coef is not None:  # e.g. the lambda sweep's choice
    penalty_source = (f" (h: {table3}; lambda: --penalty_coef or the `{sizes.preset}` sizes, "
                      "chosen by experiments.mopo.lambda_sweep)" if sizes.table3 else
                      " (lambda: --penalty_coef or the sizes preset)")
  else:
    penalty_source = f" ({table3})" if sizes.table3 else ""
  source = (f"the {suite} {common.task.value} dataset `{common.dataset.value}`"
            if common.dataset.value else f"a {suite} {common.task.value} SAC replay dataset")
  text = (
      f"Mass and damping factors {list(factors)}. Both agents: (h, lambda) = ({m.horizon}, "
      f"{m.penalty_coef})" + penalty_source
      + f", {m.rollout_batch_size} rollout starts every {m.rollout_every} updates, "
      f"{m.real_ratio:.0%} real data, SAC {'x'.join(map(str, m.sac.hidden_sizes))}; MOPO "
      f"{m.num_steps}, AugWM {a.num_steps} updates per seed. AugWM: {a.augmentation.upper()} "
      f"with z ~ U[{a.z_low}, {a.z_high}]^|S| per transition, context appended to actor and "
      f"critic inputs; learned context after k = "
      f"{augwm_config.adapt_after(a, inputs.episode_steps(common.task.value))} steps of "
      f"{inputs.episode_steps(common.task.value)} (online linear model on "
      f"{'[s, a, 1]' if a.linear_features == 'state_action' else '[s, 1]'}), clipped to "
      f"[{a.context_clip[0]}, {a.context_clip[1]}]; oracle context: the true per-dimension "
      "scale of the test dynamics against an unshifted simulator twin, clipped to "
      f"[{a.z_low}, {a.z_high}]. Sizes: the `{sizes.preset}` preset of "
      "experiments/configs/zero_shot.py and the flags given. ")
  if sizes.preset == "paper":
    return text + f"Paper scale (AugWM table 4): {sizes.seeds} seeds, {source}."
  paper_rollouts = mopo_configs.get_config("default").agent.rollout_batch_size
  thousands = lambda n: f"{n / 1000:g}k"
  reduced = [f"{source} instead of D4RL HalfCheetah",
             f"the ensemble capped at {sizes.model_max_epochs} epochs",
             f"{thousands(a.num_steps)} instead of {thousands(size_configs.augwm_updates(paper))} "
             f"AugWM ({thousands(m.num_steps)} instead of {thousands(paper.mopo_steps)} MOPO) "
             "updates"]
  if m.rollout_batch_size != paper_rollouts:
    reduced.append(f"{thousands(m.rollout_batch_size)} instead of {thousands(paper_rollouts)} "
                   "rollout starts")
  paper_grid = 7 if common.task.value.lower().startswith(("cheetah", "halfcheetah")) else 5
  if len(factors) != paper_grid:
    reduced.append(f"a {len(factors)} x {len(factors)} instead of {paper_grid} x {paper_grid} "
                   "grid")
  if sizes.grid_episodes != paper.grid_episodes:
    reduced.append(f"{sizes.grid_episodes} instead of {paper.grid_episodes} episodes per cell")
  if sizes.seeds != paper.seeds:
    reduced.append(f"{sizes.seeds} instead of {paper.seeds} seeds")
  return text + "Reduced from the paper to fit a 2-core CPU: " + ", ".join(reduced) + "."


def main(argv, common: zero_shot.CommonFlags, no_context,
         program: str = "experiments.augwm.run"):
  """Runs the experiment with the parsed flags; ``program`` is named in RESULTS.md."""
  del argv
  started, revision = time.time(), git_revision()
  inputs = common.prepare()
  runs = agent_runs(common, inputs, no_context.value)
  factors = common.grid_factors()
  unshifted, grids, linear_r2 = zero_shot.run_agents(common.task.value, inputs,
                                                     common.workdir.value, runs, factors)
  comparisons = [(row, "MOPO") for row in grids if row != "MOPO"]
  table = zero_shot.write_results(
      common.output_dir(),
      f"AugWM vs MOPO on {common.task.value} (zero-shot mass x damping)",
      f"python -m {program} " + " ".join(sys.argv[1:]), revision, started,
      common.task.value, inputs.sizes, inputs.dataset, inputs.model, unshifted, grids,
      comparisons, settings_text(common, inputs, runs, factors), linear_r2)
  print(table)


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.dirname(os.path.abspath(__file__)))
  _NO_CONTEXT = flags.DEFINE_list(
      "no_context_augmentations", [], "Also train these augmentations without context "
      "(rad, rans, das).")
  flags.adopt_module_key_flags(zero_shot)  # --help lists the shared flags
  cli.run(lambda argv: main(argv, _COMMON, _NO_CONTEXT))
