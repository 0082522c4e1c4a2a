"""SAC update throughput: ``K`` updates of batch 256, 256x256 networks, 17-d states, 6-d
actions, scanned inside one jit (the training loop's form)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.perf import common
from worldmodels.agents import make_agent
from worldmodels.agents.sac.config import default_config
from worldmodels.data.samplers import Transition
from worldmodels.training.agent import AgentSpec


def run(obs_dim: int = 17, action_dim: int = 6, batch_size: int = 256,
        updates_per_call: int = 1000, repeats: int = 3) -> dict:
  config = default_config()
  config.batch_size = batch_size
  agent = make_agent("sac", config, AgentSpec({"state": (obs_dim,)}, action_dim))
  state = agent.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(1)
  k1, k2, k3, k4 = jax.random.split(key, 4)
  # A fixed pool of transitions; each update draws a batch of indices from it.
  pool = 100_000
  data = Transition(
      observation={"state": jax.random.normal(k1, (pool, obs_dim))},
      action=jax.random.uniform(k2, (pool, action_dim), minval=-1, maxval=1),
      reward=jax.random.normal(k3, (pool,)), discount=jnp.ones((pool,)),
      next_observation={"state": jax.random.normal(k4, (pool, obs_dim))})

  def updates(state, key, length):
    def body(state, key):
      ids = jax.random.randint(key, (batch_size,), 0, pool)
      batch = jax.tree_util.tree_map(lambda x: x[ids], data)
      return agent.update(state, batch)
    return jax.lax.scan(body, state, jax.random.split(key, length))

  chunk = jax.jit(updates, static_argnums=2)
  single_flops = common.compiled_flops(jax.jit(updates, static_argnums=2), state, key, 1)
  seconds = common.time_calls(lambda: chunk(state, key, updates_per_call), repeats)
  peak = common.matmul_peak()
  rate = updates_per_call / seconds
  achieved = rate * single_flops
  return {"updates_per_s": rate, "flops_per_update": single_flops, "achieved_flops": achieved,
          "peak_flops": peak, "fraction_of_peak": achieved / peak}


def main() -> str:
  result = run()
  kind, count = common.describe_devices()
  print(f"device: {kind} x{count}")
  print(f"flops/update: {result['flops_per_update']:.3g}  achieved: "
        f"{result['achieved_flops'] / 1e9:.2f} GFLOP/s  matmul peak: "
        f"{result['peak_flops'] / 1e9:.2f} GFLOP/s")
  line = common.report("sac", result["updates_per_s"], "updates/s", result["fraction_of_peak"])
  print(line)
  return line
