"""RSSM training throughput (Offline DV2's model, V-D4RL appendix C.1 sizes: GRU 200, 32 x 32
categorical latents, 7 prior heads, MLPs of 4 x 400, CNN depth 48), batches of 64 sequences of
50 steps, against the matmul peak measured in the same process.

* State input (24-d, walker-walk): ``K`` updates of :class:`RSSMLearner` scanned in one jit (as
  the training loop runs them), and a minimal plain-JAX RSSM step of the same sizes
  (``reference_rssm``) scanned the same way.
* 64 x 64 pixels: the variants the choice of implementation rests on, each timed here: the scan
  over updates or a host loop of single jitted updates, each with im2col + matmul or XLA's own
  convolutions (``worldmodels.models.conv``). On this CPU a pixel update at the paper's batch
  takes tens of seconds, so ``--pixel_batch`` (default 64) can shrink it for a quick look.

Options: ``--pixel_batch=B``, ``--skip_pixels``, ``--steps=K`` (updates per timed call).
"""

from __future__ import annotations

import argparse
from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.perf import common, reference_rssm
from worldmodels.data.samplers import SequenceBatch
from worldmodels.data.spec import ArraySpec, DataSpec
from worldmodels.models import rssm
from worldmodels.models.rssm_learner import RSSMLearner

STATE_DIM, ACTION_DIM = 24, 6


def _batch(spec: DataSpec, b: int, t: int) -> SequenceBatch:
  rng = np.random.default_rng(0)
  obs = {}
  for key, entry in spec.observations.items():
    if entry.is_image:
      obs[key] = jnp.asarray(rng.integers(0, 255, (b, t) + entry.shape, dtype=np.uint8))
    else:
      obs[key] = jnp.asarray(rng.normal(size=(b, t) + entry.shape), jnp.float32)
  first = np.zeros((b, t), bool)
  first[:, 0] = True
  return SequenceBatch(obs, jnp.asarray(rng.uniform(-1, 1, (b, t, ACTION_DIM)), jnp.float32),
                       jnp.asarray(rng.normal(size=(b, t)), jnp.float32), jnp.ones((b, t)),
                       jnp.asarray(first), jnp.zeros((b, t), bool), jnp.zeros((b, t), bool))


def _learner(spec: DataSpec, config) -> RSSMLearner:
  stats = {k: np.zeros(v.shape, np.float32) for k, v in spec.observations.items()
           if not v.is_image}
  spec = DataSpec(spec.observations, spec.action_dim, observation_mean=stats,
                  observation_std={k: np.ones_like(v) for k, v in stats.items()})
  return RSSMLearner(rssm.RSSM.for_spec(spec, config), spec, num_steps=1)


def time_variants(spec: DataSpec, config, batch: SequenceBatch, steps: int,
                  repeats: int) -> Dict[str, float]:
  """Updates/s of the scan over ``steps`` updates and of a host loop of single jitted updates,
  and the XLA flop count of one update."""
  learner = _learner(spec, config)
  state = learner.init(jax.random.PRNGKey(0))

  def scanned(state, batch):
    return jax.lax.scan(lambda s, _: (learner.update(s, batch)[0], None), state, None,
                        length=steps)[0]

  chunk = jax.jit(scanned)
  # One compilation serves both the flop count and the host loop.
  single = jax.jit(lambda s, b: learner.update(s, b)[0]).lower(state, batch).compile()
  analysis = single.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  flops = float((analysis or {}).get("flops", 0.0))

  def host_loop():
    s = state
    for _ in range(steps):
      s = single(s, batch)
    return s

  return {"scan": steps / common.time_calls(lambda: chunk(state, batch), repeats),
          "host_loop": steps / common.time_calls(host_loop, repeats), "flops": flops}


def reference_rate(config, batch: SequenceBatch, steps: int, repeats: int) -> float:
  """Updates/s of the plain-JAX reference (state input, same sizes), scanned like ours."""
  c = config
  params = reference_rssm.init(jax.random.PRNGKey(1), STATE_DIM, ACTION_DIM, c.deter, c.hidden,
                               c.stoch_vars, c.stoch_classes, c.prior_heads, c.mlp_layers)
  optimizer = reference_rssm.optimizer()
  opt_state = optimizer.init(params)
  obs = batch.observation["state"]

  def body(carry, key):
    params, opt_state = carry
    grads = jax.grad(reference_rssm.loss)(params, obs, batch.action, batch.reward, key,
                                          c.stoch_vars, c.stoch_classes)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (jax.tree_util.tree_map(jnp.add, params, updates), opt_state), None

  run = jax.jit(lambda p, o, k: jax.lax.scan(body, (p, o), jax.random.split(k, steps))[0])
  key = jax.random.PRNGKey(2)
  return steps / common.time_calls(lambda: run(params, opt_state, key), repeats)


def run(steps: int = 5, repeats: int = 2, batch_size: int = 64, length: int = 50,
        pixel_batch: int = 64, pixels: bool = True, tiny: bool = False) -> dict:
  config = rssm.default_config()
  image, impls = 64, ("im2col", "lax")
  if tiny:  # the same code at toy sizes, one convolution implementation
    config.deter = config.hidden = 16
    config.stoch_vars = config.stoch_classes = 4
    config.prior_heads, config.mlp_layers, config.cnn_depth = 2, (16, 16), 4
    config.cnn_layers, image, impls = 2, 16, ("im2col",)
  peak = common.matmul_peak()
  state_spec = DataSpec({"state": ArraySpec((STATE_DIM,), np.float32)}, ACTION_DIM)
  batch = _batch(state_spec, batch_size, length)
  out = {"peak": peak, "state": time_variants(state_spec, config, batch, steps, repeats),
         "reference": reference_rate(config, batch, steps, repeats)}
  if pixels:
    pixel_spec = DataSpec({"pixels": ArraySpec((image, image, 3), np.uint8)}, ACTION_DIM)
    pixel_batch_data = _batch(pixel_spec, pixel_batch, length)
    for impl in impls:
      c = config.copy_and_resolve_references()
      c.conv_impl = impl
      out[f"pixels_{impl}"] = time_variants(pixel_spec, c, pixel_batch_data, 1 if not tiny
                                            else steps, 1)
  return out


def main(tiny: bool = False, argv: Sequence[str] = ()) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code at toy
  sizes, whose figures mean nothing)."""
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf rssm")
  parser.add_argument("--pixel_batch", type=int, default=64)
  parser.add_argument("--skip_pixels", action="store_true")
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args(list(argv))
  sizes = dict(steps=1, repeats=1, batch_size=2, length=4, pixel_batch=2) if tiny else dict(
      steps=args.steps, pixel_batch=args.pixel_batch)
  r = run(pixels=not args.skip_pixels, tiny=tiny, **sizes)
  kind, count = common.describe_devices()
  b, t = (2, 4) if tiny else (64, 50)
  state = r["state"]
  sizes_text = ("toy sizes (--tiny: the figures mean nothing)" if tiny else
                "GRU 200, 32x32 categorical, 7 prior heads, MLPs 4x400, CNN depth 48")
  print(f"device: {kind} x{count}; RSSM {sizes_text}, batch {b}x{t}; matmul peak "
        f"{r['peak'] / 1e9:.1f} GFLOP/s")
  print(f"state input ({STATE_DIM}-d): scan {state['scan']:.2f} updates/s, host loop "
        f"{state['host_loop']:.2f} updates/s; flops/update (XLA count) {state['flops']:.3g}")
  print(f"minimal plain-JAX RSSM step (same process, same sizes): {r['reference']:.2f} "
        f"updates/s; ours / reference = {state['scan'] / r['reference']:.2f}")
  for impl in ("im2col", "lax"):
    if f"pixels_{impl}" in r:
      p = r[f"pixels_{impl}"]
      pb = 2 if tiny else args.pixel_batch
      side = 16 if tiny else 64
      print(f"{side}x{side} pixels, batch {pb}x{t}, {impl} convolutions: scan {p['scan']:.3f} "
            f"updates/s, host loop {p['host_loop']:.3f} updates/s; flops/update "
            f"{p['flops']:.3g}, {p['scan'] * p['flops'] / r['peak']:.3f} of matmul peak (scan)")
  line = common.report("rssm", state["scan"], "steps/s", state["scan"] * state["flops"] / r["peak"])
  print(line)
  return line
