"""Ensemble training throughput: 7 members of 4 x 200 (swish), batch 256 per member, 17-d
states, 6-d actions; ``K`` Adam steps scanned in one jit, as ``train_ensemble`` runs them; against
the matmul peak and a minimal plain-JAX ensemble step (``reference_ensemble``) in one process."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from benchmarks.perf import common, reference_ensemble
from worldmodels.models import ensemble as ens

POOL = 100_000


def run(state_dim: int = 17, action_dim: int = 6, batch_size: int = 256,
        steps_per_call: int = 200, repeats: int = 3) -> dict:
  config = ens.default_config()
  model_def = ens.Ensemble(state_dim, action_dim, config)
  model = model_def.init(jax.random.PRNGKey(0))
  members = config.num_members
  k1, k2 = jax.random.split(jax.random.PRNGKey(1))
  x = jax.random.normal(k1, (POOL, state_dim + action_dim))
  y = jax.random.normal(k2, (POOL, state_dim + 1))
  optimizer = optax.adam(config.learning_rate)

  def steps(params, opt_state, key, length):
    def body(carry, key):
      params, opt_state = carry
      ids = jax.random.randint(key, (members, batch_size), 0, POOL)
      grads, _ = jax.grad(model_def.loss, has_aux=True)(params, model, x[ids], y[ids])
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None
    return jax.lax.scan(body, (params, opt_state), jax.random.split(key, length))[0]

  def reference_steps(params, opt_state, key, length):
    def body(carry, key):
      params, opt_state = carry
      ids = jax.random.randint(key, (members, batch_size), 0, POOL)
      grads = jax.grad(reference_ensemble.loss)(params, x[ids], y[ids])
      updates, opt_state = reference_ensemble.OPTIMIZER.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None
    return jax.lax.scan(body, (params, opt_state), jax.random.split(key, length))[0]

  chunk = jax.jit(steps, static_argnums=3)
  reference = jax.jit(reference_steps, static_argnums=3)
  opt_state = optimizer.init(model.params)
  ref_params = reference_ensemble.init(jax.random.PRNGKey(3), members, state_dim + action_dim,
                                       state_dim + 1)
  ref_opt_state = reference_ensemble.OPTIMIZER.init(ref_params)
  key = jax.random.PRNGKey(2)
  flops = common.compiled_flops(chunk, model.params, opt_state, key, 1)
  peak = common.matmul_peak()
  seconds = common.time_calls(lambda: chunk(model.params, opt_state, key, steps_per_call),
                              repeats)
  reference_seconds = common.time_calls(
      lambda: reference(ref_params, ref_opt_state, key, steps_per_call), repeats)
  rate = steps_per_call / seconds
  return {"steps_per_s": rate, "transitions_per_s": rate * members * batch_size,
          "flops_per_step": flops, "achieved_flops": rate * flops, "peak_flops": peak,
          "fraction_of_peak": rate * flops / peak,
          "reference_steps_per_s": steps_per_call / reference_seconds}


def main() -> str:
  r = run()
  kind, count = common.describe_devices()
  print(f"device: {kind} x{count}; 7 members of 4x200 swish, batch 256 per member, 17-d "
        "states, 6-d actions, 200 Adam steps per jit call (lax.scan)")
  print(f"train steps/s: {r['steps_per_s']:.1f}; flops/step (XLA count): "
        f"{r['flops_per_step']:.3g}; achieved {r['achieved_flops'] / 1e9:.1f} GFLOP/s; matmul "
        f"peak {r['peak_flops'] / 1e9:.1f} GFLOP/s")
  print(f"minimal plain-JAX ensemble step (same process): {r['reference_steps_per_s']:.1f} "
        f"steps/s; ours / reference = {r['steps_per_s'] / r['reference_steps_per_s']:.2f}")
  line = common.report("ensemble", r["transitions_per_s"], "transitions/s",
                       r["fraction_of_peak"])
  print(line)
  return line
