"""Model rollout throughput: 50,000 start states x horizon 5 in the default ensemble
(7 x 4 x 200), a SAC actor (256 x 256) choosing actions, MOPO penalty; one jit call."""

from __future__ import annotations

import jax

from benchmarks.perf import common
from worldmodels.agents import make_agent
from worldmodels.agents.sac.config import default_config
from worldmodels.models import ensemble as ens
from worldmodels.data.spec import DataSpec


def run(state_dim: int = 17, action_dim: int = 6, starts: int = 50_000, horizon: int = 5,
        repeats: int = 3) -> dict:
  model_def = ens.Ensemble(state_dim, action_dim, ens.default_config())
  model = model_def.init(jax.random.PRNGKey(0))
  agent = make_agent("sac", default_config(), DataSpec({"state": ((state_dim,), "float32")}, action_dim))
  agent_state = agent.init(jax.random.PRNGKey(1))
  start = jax.random.normal(jax.random.PRNGKey(2), (starts, state_dim))

  def run_rollout(model, agent_state, start, key, length):
    policy = lambda s, k: agent.act(agent_state, {"state": s}, k, False)
    return model_def.imagine(model, policy, start, length, key, penalty_coef=1.0)

  run_rollout = jax.jit(run_rollout, static_argnums=4)
  key = jax.random.PRNGKey(3)
  # XLA counts a scan body once, so count one step and scale by the horizon.
  flops = horizon * common.compiled_flops(run_rollout, model, agent_state, start, key, 1)
  seconds = common.time_calls(lambda: run_rollout(model, agent_state, start, key, horizon),
                              repeats)
  peak = common.matmul_peak()
  transitions = starts * horizon
  return {"transitions_per_s": transitions / seconds, "seconds": seconds,
          "flops": flops, "fraction_of_peak": flops / seconds / peak, "peak_flops": peak}


def main(tiny: bool = False) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code, whose
  figures mean nothing)."""
  r = run(**({"starts": 64, "horizon": 1, "repeats": 1} if tiny else {}))
  kind, count = common.describe_devices()
  print(f"device: {kind} x{count}; 50,000 starts x horizon 5; ensemble 7 x (4 x 200) computes "
        "all members (penalty needs them), SAC actor 256 x 256")
  print(f"one rollout: {r['seconds']:.2f} s; flops (XLA count) {r['flops']:.3g}; matmul peak "
        f"{r['peak_flops'] / 1e9:.1f} GFLOP/s")
  line = common.report("rollout", r["transitions_per_s"], "transitions/s", r["fraction_of_peak"])
  print(line)
  return line
