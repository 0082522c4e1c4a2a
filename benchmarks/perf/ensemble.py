"""Ensemble training throughput: 7 members of 4 x 200 (swish), batch 256 per member, 17-d
states, 6-d actions; ``K`` updates of the ensemble's training phase
(``worldmodels.models.ensemble_learner``: per-member epochs, holdout checks at epoch ends)
scanned in one jit, as the training loop runs them; against the matmul peak and a minimal
plain-JAX ensemble step (``reference_ensemble``) in one process."""

from __future__ import annotations

import jax
import numpy as np
import optax

from benchmarks.perf import common, reference_ensemble
from worldmodels.models import ensemble as ens
from worldmodels.models.ensemble_learner import EnsembleLearner, model_data

POOL = 100_000


def run(state_dim: int = 17, action_dim: int = 6, batch_size: int = 256,
        steps_per_call: int = 200, repeats: int = 3) -> dict:
  config = ens.default_config()
  config.batch_size = batch_size
  members = config.num_members
  rng = np.random.default_rng(1)
  s = rng.normal(size=(POOL, state_dim)).astype(np.float32)
  data = model_data(s, rng.uniform(-1, 1, (POOL, action_dim)).astype(np.float32),
                    rng.normal(size=POOL).astype(np.float32),
                    s + 0.1 * rng.normal(size=(POOL, state_dim)).astype(np.float32))
  learner = EnsembleLearner(ens.Ensemble(state_dim, action_dim, config), data)
  update = learner.phases()[0].update

  def steps(state, frozen, length):
    return jax.lax.scan(lambda st, _: (update(st, None, frozen)[0], None), state, None,
                        length=length)[0]

  x = jax.random.normal(jax.random.PRNGKey(1), (POOL, state_dim + action_dim))
  y = jax.random.normal(jax.random.PRNGKey(2), (POOL, state_dim + 1))

  def reference_steps(params, opt_state, key, length):
    def body(carry, key):
      params, opt_state = carry
      ids = jax.random.randint(key, (members, batch_size), 0, POOL)
      grads = jax.grad(reference_ensemble.loss)(params, x[ids], y[ids])
      updates, opt_state = reference_ensemble.OPTIMIZER.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None
    return jax.lax.scan(body, (params, opt_state), jax.random.split(key, length))[0]

  chunk = jax.jit(steps, static_argnums=2)
  reference = jax.jit(reference_steps, static_argnums=3)
  state = learner.init(jax.random.PRNGKey(0))
  ref_params = reference_ensemble.init(jax.random.PRNGKey(3), members, state_dim + action_dim,
                                       state_dim + 1)
  ref_opt_state = reference_ensemble.OPTIMIZER.init(ref_params)
  key = jax.random.PRNGKey(2)
  # XLA counts both branches of the epoch-end `cond` (a holdout pass run once an epoch), so the
  # work of a step is counted on the gradient step alone.
  batch = ens.ModelBatch(data.state[:members * batch_size].reshape(members, batch_size, -1),
                         data.action[:members * batch_size].reshape(members, batch_size, -1),
                         data.target[:members * batch_size].reshape(members, batch_size, -1),
                         data.terminal[:members * batch_size].reshape(members, batch_size))
  optimizer = optax.adam(config.learning_rate)

  def gradient_step(model, opt_state, batch):
    grads = jax.grad(lambda p: learner.ensemble.loss(model.replace(params=p), batch)[0])(
        model.params)
    return optimizer.update(grads, opt_state, model.params)

  flops = common.compiled_flops(jax.jit(gradient_step), state.model, state.opt_state, batch)
  peak = common.matmul_peak()
  seconds = common.time_calls(lambda: chunk(state, data, steps_per_call), repeats)
  reference_seconds = common.time_calls(
      lambda: reference(ref_params, ref_opt_state, key, steps_per_call), repeats)
  rate = steps_per_call / seconds
  return {"steps_per_s": rate, "transitions_per_s": rate * members * batch_size,
          "flops_per_step": flops, "achieved_flops": rate * flops, "peak_flops": peak,
          "fraction_of_peak": rate * flops / peak,
          "reference_steps_per_s": steps_per_call / reference_seconds}


def main(tiny: bool = False) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code, whose
  figures mean nothing)."""
  r = run(**({"steps_per_call": 1, "repeats": 1} if tiny else {}))
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
