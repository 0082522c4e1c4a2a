r"""MOPO's penalty coefficient, chosen on MOPO's own unshifted return (issue 17).

  python -m experiments.mopo.lambda_sweep --task=HalfCheetah-v5 \
      --dataset=d4rl/halfcheetah/medium --lambdas=0.1,0.3,1,3 [--seeds=3] [--steps=30000] \
      [--workdir=runs/mopo-halfcheetah-medium] [--publish]

The penalised reward ``r - lambda * u`` weighs the model's uncertainty ``u`` against rewards
whose scale depends on the task: a ``lambda`` tuned for D4RL HalfCheetah (rewards of 4-10 per
step) is far too strong for dm_control's cheetah-run (at most 1 per step). So ``lambda`` is not
taken from a table but chosen on the data, by the rule written here once (:func:`choose`):

1. Train one ensemble, then MOPO for every ``lambda`` of ``--lambdas`` (the horizon ``h`` of
   ``--preset``, AugWM table 3), ``--seeds`` seeds each, and evaluate every seed on the
   unshifted environment.
2. The chosen ``lambda`` has the highest mean unshifted return over seeds.
3. That MOPO is *accepted* as a baseline only when its mean return at least matches the
   behaviour data's mean episode return or TD3+BC's mean return on the same data (TD3+BC is
   trained here too); otherwise the results say plainly that it is not.

Also reported per ``lambda``: the mean raw model reward and the mean penalty ``lambda * u`` of
the last logged model rollouts, the scale mismatch the rule is about.

Writes ``RESULTS.md`` and ``results.json`` to ``<workdir>/results/lambda_sweep/<dataset>``
(``--publish``: ``experiments/mopo/lambda_sweep/<dataset>/``; ``<dataset>`` is
``<task>_sac_replay`` without ``--dataset``). Every stage resumes or is reused
from the workdir, as in ``experiments.mopo.run``, which can share it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import flags
import numpy as np

from experiments import cli
from experiments import zero_shot
from experiments.configs import mopo as mopo_configs
from experiments.configs import td3bc as td3bc_configs
from worldmodels.data import format_statistics_table, read_metadata
from worldmodels.errors import ConfigError
from worldmodels.io import atomic_text
from worldmodels.provenance import git_revision
from worldmodels.training.logging import read_jsonl

_LAMBDAS = flags.DEFINE_list("lambdas", ["0.1", "0.3", "1", "3"],
                             "MOPO penalty coefficients to sweep.")


def choose(returns: Dict[float, Sequence[float]], data_mean: float,
           td3bc_mean: Optional[float]) -> dict:
  """The rule: the ``lambda`` of highest mean unshifted return, accepted when that mean is at
  least the data's mean episode return or TD3+BC's mean return.

  Args:
    returns: lambda -> unshifted returns per seed.
    data_mean: the behaviour data's mean episode return.
    td3bc_mean: TD3+BC's mean unshifted return on the same data (None: not trained).

  Returns:
    ``{"lambda", "mean", "accepted", "matches"}``: the chosen coefficient, its mean return,
    whether it is accepted, and what it matched (``"data"``, ``"td3bc"``, both or neither).
  """
  if not returns:
    raise ConfigError("--lambdas is empty: give at least one penalty coefficient.")
  means = {lam: float(np.mean(values)) for lam, values in returns.items()}
  best = max(means, key=lambda lam: means[lam])
  matches = [name for name, bar in (("data", data_mean), ("td3bc", td3bc_mean))
             if bar is not None and means[best] >= bar]
  return {"lambda": best, "mean": means[best], "accepted": bool(matches), "matches": matches}


def parse_lambdas(values: Sequence[str]) -> List[float]:
  """``--lambdas`` as floats (distinct, each >= 0)."""
  try:
    lambdas = [float(v) for v in values]
  except ValueError as error:
    raise ConfigError(f"--lambdas={','.join(values)}: expected numbers ({error}).") from None
  if any(lam < 0 for lam in lambdas) or len(set(lambdas)) != len(lambdas):
    raise ConfigError(f"--lambdas={','.join(values)}: expected distinct values >= 0.")
  return lambdas


def rollout_scale(workdir: str) -> Dict[str, float]:
  """The last logged model rollouts of a MOPO run: mean raw reward and mean penalty ``u``."""
  rows = [r for r in read_jsonl(os.path.join(workdir, "train.jsonl")) if "model_penalty" in r]
  if not rows:
    return {}
  return {"model_reward": float(rows[-1]["model_reward"]),
          "model_penalty": float(rows[-1]["model_penalty"])}


def main(argv, common: zero_shot.CommonFlags):
  del argv
  started, revision = time.time(), git_revision()
  lambdas = parse_lambdas(_LAMBDAS.value)
  inputs = common.prepare()
  sizes = inputs.sizes

  def mopo_run(lam: float) -> zero_shot.AgentRun:
    def configure(c):
      common.model_based(c)
      c.agent.penalty_coef = lam
    return zero_shot.AgentRun(f"mopo-lambda{lam:g}", mopo_configs, sizes.mopo_steps,
                              {f"MOPO, lambda = {lam:g}": zero_shot.default_policy}, configure,
                              needs_model=True)

  runs = [mopo_run(lam) for lam in lambdas]
  runs.append(zero_shot.AgentRun("td3bc", td3bc_configs, sizes.td3bc_steps,
                                 {"TD3+BC": zero_shot.default_policy}))
  unshifted, _, _ = zero_shot.run_agents(common.task.value, inputs, common.workdir.value, runs,
                                         settings=())
  returns = {lam: unshifted[f"MOPO, lambda = {lam:g}"] for lam in lambdas}
  metadata = read_metadata(inputs.dataset)
  data_mean = float(metadata["statistics"]["return_mean"])
  td3bc = unshifted["TD3+BC"]
  choice = choose(returns, data_mean, float(np.mean(td3bc)))
  scales = {lam: rollout_scale(zero_shot.run_workdir(run, sizes, common.workdir.value))
            for lam, run in zip(lambdas, runs)}
  horizon = zero_shot.stage_config(runs[0], 0, common.task.value, inputs,
                                   common.workdir.value).agent.horizon
  name = common.dataset.value or f"{common.task.value} SAC replay"
  results_dir = os.path.join(common.output_dir(), zero_shot.slug(name))
  os.makedirs(results_dir, exist_ok=True)
  text = render(name, common.task.value, "python -m experiments.mopo.lambda_sweep "
                + " ".join(sys.argv[1:]), revision, time.time() - started, sizes, horizon,
                returns, td3bc, scales, choice, metadata)
  with atomic_text(os.path.join(results_dir, "RESULTS.md")) as f:
    f.write(text)
  with atomic_text(os.path.join(results_dir, "results.json")) as f:
    json.dump({"dataset": name, "task": common.task.value, "horizon": horizon,
               "returns": {f"{lam:g}": v for lam, v in returns.items()}, "td3bc": td3bc,
               "data_mean": data_mean, "choice": choice,
               "rollouts": {f"{lam:g}": s for lam, s in scales.items()}}, f, indent=1)
  print(text)


def _mean_std(values: Sequence[float]) -> str:
  values = np.asarray(values, float)
  return f"{values.mean():.1f} ± {values.std():.1f}" if values.size > 1 else f"{values[0]:.1f}"


def render(name, task, command, revision, wall, sizes, horizon, returns, td3bc, scales, choice,
           metadata) -> str:
  """The sweep's Markdown: the dataset, one row per lambda, TD3+BC, the rule and its verdict."""
  lines = ["| lambda | Unshifted return | Per seed | Model reward | Penalty lambda * u |",
           "| ---: | ---: | --- | ---: | ---: |"]
  for lam, values in returns.items():
    scale = scales.get(lam, {})
    reward = f"{scale['model_reward']:.3f}" if scale else "-"
    penalty = f"{lam * scale['model_penalty']:.3f}" if scale else "-"
    mark = " (chosen)" if lam == choice["lambda"] else ""
    lines.append(f"| {lam:g}{mark} | {_mean_std(values)} | "
                 f"{', '.join(f'{v:.1f}' for v in values)} | {reward} | {penalty} |")
  lines.append(f"| TD3+BC | {_mean_std(td3bc)} | {', '.join(f'{v:.1f}' for v in td3bc)} | - "
               "| - |")
  data_mean = metadata["statistics"]["return_mean"]
  verdict = (f"**Accepted**: MOPO with lambda = {choice['lambda']:g} returns "
             f"{choice['mean']:.1f}, at least " + " and ".join(
                 f"the data's mean ({data_mean:.1f})" if m == "data" else
                 f"TD3+BC's mean ({np.mean(td3bc):.1f})" for m in choice["matches"]) + "."
             if choice["accepted"] else
             f"**Not accepted**: the best MOPO (lambda = {choice['lambda']:g}) returns "
             f"{choice['mean']:.1f}, below both the data's mean ({data_mean:.1f}) and TD3+BC's "
             f"({np.mean(td3bc):.1f}). No lambda of this sweep gives a sound MOPO baseline on "
             "this dataset at these budgets.")
  label = zero_shot.dataset_label(task, metadata)
  return (f"# MOPO's penalty coefficient on {name}\n\n"
          f"Command: `{command.strip()}`; git revision `{revision}`; wall time of this "
          f"invocation {wall / 60:.1f} min (stages found done in the workdir are reused).\n\n"
          f"## Dataset\n\n{format_statistics_table(metadata['statistics'], label)}\n\n"
          f"## Sweep\n\nMOPO: horizon h = {horizon}, {sizes.mopo_steps} updates, "
          f"{sizes.seeds} seeds (vmapped); TD3+BC: {sizes.td3bc_steps} updates. Unshifted "
          f"return: {sizes.eval_episodes} episodes per seed on the default dynamics; ± is the "
          "std over seeds. Model reward and penalty: means over the last logged batch of "
          "model rollouts (penalty u: the ensemble's largest predicted std, "
          "`max_aleatoric`).\n\n" + "\n".join(lines) + "\n\n"
          "## Rule\n\nThe chosen lambda has the highest mean unshifted return over seeds. It "
          "is accepted as the MOPO baseline only when that mean is at least the data's mean "
          "episode return or TD3+BC's mean return (`experiments/mopo/lambda_sweep.py`, "
          f"`choose`).\n\n{verdict}\n")


if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "lambda_sweep"),
                                  workdir="runs/mopo")
  flags.adopt_module_key_flags(zero_shot)
  cli.run(lambda argv: main(argv, _COMMON))
