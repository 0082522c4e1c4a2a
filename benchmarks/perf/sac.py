"""SAC update throughput: ``K`` updates of batch 256, 256x256 networks, 17-d states, 6-d
actions, scanned inside one jit (the training loop's form), against two references measured in
the same process: the matmul peak and a minimal plain-JAX SAC update (``reference_sac``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.perf import common
from benchmarks.perf import reference_sac
from worldmodels.agents import make_agent
from worldmodels.agents.sac.config import default_config
from worldmodels.data.samplers import Transition
from worldmodels.data.spec import DataSpec

POOL = 100_000  # transitions the batches are drawn from


def _pool(key, obs_dim, action_dim) -> Transition:
  k1, k2, k3, k4 = jax.random.split(key, 4)
  return Transition(
      observation={"state": jax.random.normal(k1, (POOL, obs_dim))},
      action=jax.random.uniform(k2, (POOL, action_dim), minval=-1, maxval=1),
      reward=jax.random.normal(k3, (POOL,)), discount=jnp.ones((POOL,)),
      next_observation={"state": jax.random.normal(k4, (POOL, obs_dim))})


def _scanned(update_fn, data: Transition, batch_size: int):
  """``(state, key, length) -> state`` running ``length`` updates on sampled batches."""

  def run(state, key, length):
    def body(state, key):
      ids = jax.random.randint(key, (batch_size,), 0, POOL)
      batch = jax.tree_util.tree_map(lambda x: x[ids], data)
      return update_fn(state, batch, key), None
    return jax.lax.scan(body, state, jax.random.split(key, length))[0]

  return jax.jit(run, static_argnums=2)


def run(obs_dim: int = 17, action_dim: int = 6, batch_size: int = 256,
        updates_per_call: int = 1000, repeats: int = 3) -> dict:
  data = _pool(jax.random.PRNGKey(1), obs_dim, action_dim)
  key = jax.random.PRNGKey(2)

  config = default_config()
  config.batch_size = batch_size
  agent = make_agent("sac", config, DataSpec({"state": ((obs_dim,), "float32")}, action_dim))
  ours = _scanned(lambda s, b, k: agent.update(s, b)[0], data, batch_size)
  state = agent.init(jax.random.PRNGKey(0))
  flops = common.compiled_flops(ours, state, key, 1)
  ours_s = common.time_calls(lambda: ours(state, key, updates_per_call), repeats)

  def reference_update(s, b, k):
    batch = (b.observation["state"], b.action, b.reward, b.discount,
             b.next_observation["state"])
    return reference_sac.update(s, batch, k, action_dim)

  reference = _scanned(reference_update, data, batch_size)
  ref_state = reference_sac.init(jax.random.PRNGKey(0), obs_dim, action_dim)
  reference_s = common.time_calls(lambda: reference(ref_state, key, updates_per_call), repeats)

  peak = common.matmul_peak()
  rate = updates_per_call / ours_s
  return {"updates_per_s": rate, "reference_updates_per_s": updates_per_call / reference_s,
          "flops_per_update": flops, "achieved_flops": rate * flops, "peak_flops": peak,
          "fraction_of_peak": rate * flops / peak}


def main(tiny: bool = False) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code, whose
  figures mean nothing)."""
  r = run(**({"updates_per_call": 1, "repeats": 1} if tiny else {}))
  kind, count = common.describe_devices()
  print(f"device: {kind} x{count}; batch 256, 256x256 MLPs, 17-d states, 6-d actions, "
        "1000 updates per jit call (lax.scan)")
  print(f"flops/update (XLA count): {r['flops_per_update']:.3g}; achieved "
        f"{r['achieved_flops'] / 1e9:.1f} GFLOP/s; matmul peak {r['peak_flops'] / 1e9:.1f} GFLOP/s")
  print(f"minimal plain-JAX SAC (same process): {r['reference_updates_per_s']:.1f} updates/s; "
        f"ours / reference = {r['updates_per_s'] / r['reference_updates_per_s']:.2f}")
  line = common.report("sac", r["updates_per_s"], "updates/s", r["fraction_of_peak"])
  print(line)
  return line
