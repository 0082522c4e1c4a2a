"""DrQ+BC update throughput (V-D4RL table 9 sizes: 84 x 84 frames, 3 stacked, DrQ-v2's encoder,
trunks of 50, actor and twin critics of 1024, n-step batches) at batch 256 and 64, against
references measured in the same process: the matmul peak and a minimal plain-JAX DrQ+BC update
(``reference_drqbc``); plus the memory of a loaded pixel dataset against its raw frames.

Variants timed, the choices rest on them (at the second batch size):
* the scan over ``K`` updates in one jit (the training loop's form) or a host loop of single
  jitted updates;
* im2col + matmul convolutions or XLA's own (``worldmodels.models.conv``);
* integer random shifts or DrQ-v2's bilinear sampling (``worldmodels.rl.pixels``).

The allocator: the update at each batch size is also timed in two fresh processes, one with
glibc's default malloc and one with the tuned settings of ``third_party/glibc_tunables`` (one
arena, no per-buffer mmap, the heap kept), neither with a preloaded allocator;
``--skip_allocators`` leaves this out.

Options: ``--batch_sizes=256,64``, ``--steps=K`` (updates per timed call), ``--skip_variants``,
``--ram_steps=N`` (steps of the synthetic 84 px dataset written and loaded for the memory
figure; 0 skips it), ``--ram_dir`` (where it is written; default a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.perf import common, reference_drqbc
from worldmodels.agents.drqbc import config as drqbc_config
from worldmodels.agents.drqbc.learner import DrQBCLearner
from worldmodels.data.samplers import Transition
from worldmodels.data.spec import DataSpec

ACTION_DIM, FRAMES = 6, 3


def _batch(batch_size: int, image: int) -> Transition:
  rng = np.random.default_rng(0)
  frames = lambda: jnp.asarray(rng.integers(0, 256, (batch_size, image, image, 3 * FRAMES),
                                            dtype=np.uint8))
  return Transition({"pixels": frames()},
                    jnp.asarray(rng.uniform(-1, 1, (batch_size, ACTION_DIM)), jnp.float32),
                    jnp.asarray(rng.normal(size=batch_size), jnp.float32),
                    jnp.full((batch_size,), 0.99 ** 3, jnp.float32), {"pixels": frames()})


def _agent(config, image: int) -> DrQBCLearner:
  spec = DataSpec({"pixels": ((image, image, 3), np.uint8)}, ACTION_DIM, {"pixels": FRAMES})
  return DrQBCLearner(config, spec)


def time_ours(config, image: int, batch: Transition, steps: int, repeats: int,
              scan: bool = True) -> Dict[str, float]:
  """Updates/s of the host loop of single jitted updates (and of the scan over ``steps``
  updates when ``scan``), and the XLA flop count of one update."""
  agent = _agent(config, image)
  state = agent.init(jax.random.PRNGKey(0))
  single = jax.jit(lambda s, b: agent.update(s, b)[0]).lower(state, batch).compile()
  analysis = single.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  out = {"flops": float((analysis or {}).get("flops", 0.0))}

  def host_loop():
    s = state
    for _ in range(steps):
      s = single(s, batch)
    return s

  out["host_loop"] = steps / common.time_calls(host_loop, repeats)
  if scan:
    chunk = jax.jit(lambda s, b: jax.lax.scan(lambda s, _: (agent.update(s, b)[0], None), s,
                                              None, length=steps)[0])
    out["scan"] = steps / common.time_calls(lambda: chunk(state, batch), repeats)
  return out


def time_reference(config, image: int, batch: Transition, steps: int, repeats: int) -> float:
  """Updates/s of the plain-JAX reference at the same sizes, a host loop like ours."""
  state = reference_drqbc.init(jax.random.PRNGKey(1), image, 3 * FRAMES, ACTION_DIM,
                               config.encoder_depth, config.encoder_layers, config.feature_dim,
                               config.hidden_sizes[0])
  b = batch
  step = jax.jit(lambda s, k: reference_drqbc.update(
      s, b.observation["pixels"], b.action, b.reward, b.discount,
      b.next_observation["pixels"], k))
  keys = jax.random.split(jax.random.PRNGKey(2), steps)

  def host_loop():
    s = state
    for k in keys:
      s = step(s, k)
    return s

  return steps / common.time_calls(host_loop, repeats)


_LOAD_AND_MEASURE = """
import json, sys
import jax
from worldmodels.data.source import DataSource

def rss():
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

jax.numpy.zeros(1).block_until_ready()  # the runtime's own memory is not the dataset's
before = rss()
source = DataSource.load(sys.argv[1], frame_stack=int(sys.argv[2]))
jax.block_until_ready(source.arrays)
print(json.dumps({"before": before, "after": rss()}))
"""


def dataset_memory(num_steps: int, image: int, directory: str) -> Dict[str, float]:
  """Writes a ``num_steps``-step pixel dataset (episodes of 501 steps, frames ``uint8``) in the
  documented format, loads it as the launchers do in a fresh process (so that the writer's
  garbage is not counted), and returns that process's resident-memory growth against the raw
  frame bytes."""
  from worldmodels.data.writer import EpisodeWriter  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, f"synthetic-{image}px-{num_steps}")
  if not os.path.isdir(path):
    rng = np.random.default_rng(0)
    writer = EpisodeWriter(path, observation_spec={"pixels": ((image, image, 3), np.uint8)},
                           action_dim=ACTION_DIM, task="walker-walk",
                           behaviour_policy="synthetic (memory benchmark)", action_repeat=2,
                           seed=0)
    written = 0
    while written < num_steps:
      n = min(501, num_steps - written)
      first, last = np.zeros(n, bool), np.zeros(n, bool)
      first[0], last[-1] = True, True
      writer.add_episode({
          "observation": {"pixels": rng.integers(0, 256, (n, image, image, 3), np.uint8)},
          "action": rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32),
          "reward": rng.uniform(0, 1, n).astype(np.float32),
          "discount": np.ones(n, np.float32), "is_first": first, "is_last": last,
          "is_terminal": np.zeros(n, bool)})
      written += n
    writer.close()
  result = subprocess.run([sys.executable, "-c", _LOAD_AND_MEASURE, path, str(FRAMES)],
                          check=True, capture_output=True, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  measured = json.loads(result.stdout.strip().splitlines()[-1])
  raw = num_steps * image * image * 3
  grown = measured["after"] - measured["before"]
  return {"raw_bytes": raw, "resident_bytes": grown, "ratio": grown / raw, "steps": num_steps}


TUNABLES_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "third_party", "glibc_tunables")


def project_tunables() -> str:
  """The tuned glibc malloc settings (``third_party/glibc_tunables``; an opt-in for pixel
  training, see ``third_party/README.md``)."""
  with open(TUNABLES_FILE, encoding="utf-8") as f:
    return f.read().strip()


def allocator_comparison(batch_sizes: Sequence[int], steps: int, tiny: bool) -> Dict[str, dict]:
  """Updates/s (scan and host loop) per batch size in a fresh process per allocator setting:
  ``"default"`` (glibc's defaults) and ``"project"`` (:func:`project_tunables`)."""
  base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD")}
  out = {}
  for name, env in (("default", base), ("project", dict(base, GLIBC_TUNABLES=project_tunables()))):
    command = [sys.executable, "-m", "benchmarks.perf", "drqbc", "--child_json",
               f"--batch_sizes={','.join(map(str, batch_sizes))}", f"--steps={steps}"]
    result = subprocess.run(command + (["--tiny"] if tiny else []), check=True,
                            capture_output=True, text=True, env=env)
    out[name] = json.loads(result.stdout.strip().splitlines()[-1])
  return out


def run(batch_sizes=(256, 64), steps: int = 3, repeats: int = 1, variants: bool = True,
        ram_steps: int = 100_000, ram_dir: str = "", tiny: bool = False,
        allocators: bool = True) -> dict:
  config = drqbc_config.default_config()
  image = 84
  if tiny:  # the same code at toy sizes
    config = drqbc_config.tiny_config()
    image = 16
  peak = common.matmul_peak()
  out = {"peak": peak, "image": image, "batches": {}}
  for i, batch_size in enumerate(batch_sizes):
    batch = _batch(batch_size, image)
    ours = time_ours(config, image, batch, steps, repeats)
    ours["reference"] = time_reference(config, image, batch, steps, repeats)
    out["batches"][batch_size] = ours
    if variants and i == len(batch_sizes) - 1:
      for name, field, value in (("lax convolutions", "conv_impl", "lax"),
                                 ("bilinear shifts", "shift_method", "bilinear")):
        c = config.copy_and_resolve_references()
        setattr(c, field, value)
        out.setdefault("variants", {})[name] = time_ours(
            c, image, batch, steps, repeats, scan=field != "conv_impl")
      out["variant_batch"] = batch_size
  if allocators:
    out["allocators"] = allocator_comparison(batch_sizes, steps, tiny)
  if ram_steps:
    with tempfile.TemporaryDirectory(dir=ram_dir or None) as scratch:
      out["memory"] = dataset_memory(ram_steps, image, scratch)
  return out


def main(tiny: bool = False, argv: Sequence[str] = ()) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code at toy
  sizes, whose figures mean nothing)."""
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf drqbc")
  parser.add_argument("--batch_sizes", default="256,64")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--skip_variants", action="store_true")
  parser.add_argument("--ram_steps", type=int, default=100_000)
  parser.add_argument("--ram_dir", default="")
  parser.add_argument("--skip_allocators", action="store_true")
  parser.add_argument("--child_json", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(list(argv))
  batch_sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b)
  if not batch_sizes:
    parser.error("--batch_sizes: give at least one batch size, e.g. 256,64")
  options = dict(batch_sizes=(8, 4), steps=1, ram_steps=600) if tiny else dict(
      batch_sizes=batch_sizes, steps=args.steps, ram_steps=args.ram_steps)
  if args.child_json:  # one allocator setting of allocator_comparison: this process's timings
    config, image = ((drqbc_config.tiny_config(), 16) if tiny else
                     (drqbc_config.default_config(), 84))
    timings = {b: time_ours(config, image, _batch(b, image), options["steps"], 1)
               for b in options["batch_sizes"]}
    line = json.dumps(timings)
    print(line)
    return line
  r = run(variants=not args.skip_variants, ram_dir=args.ram_dir, tiny=tiny,
          allocators=not args.skip_allocators, **options)
  kind, count = common.describe_devices()
  sizes = ("toy sizes (--tiny: the figures mean nothing)" if tiny else
           "encoder 4 x 32, trunk 50, MLPs 1024 x 1024")
  print(f"device: {kind} x{count}; DrQ+BC, {r['image']}x{r['image']} frames x {FRAMES}, "
        f"{sizes}; matmul peak {r['peak'] / 1e9:.1f} GFLOP/s")
  first = None
  for batch_size, b in r["batches"].items():
    fraction = b["scan"] * b["flops"] / r["peak"]
    first = first or (b, fraction)
    print(f"batch {batch_size}: scan {b['scan']:.2f} updates/s, host loop {b['host_loop']:.2f} "
          f"updates/s; flops/update (XLA count) {b['flops']:.3g}, {fraction:.3f} of matmul peak; "
          f"minimal plain-JAX DrQ+BC {b['reference']:.2f} updates/s, ours / reference = "
          f"{b['host_loop'] / b['reference']:.2f}")
  for name, v in r.get("variants", {}).items():
    rates = f"host loop {v['host_loop']:.2f}" + (f", scan {v['scan']:.2f}" if "scan" in v else "")
    print(f"variant at batch {r['variant_batch']}, {name}: {rates} updates/s")
  if "allocators" in r:
    default, project = r["allocators"]["default"], r["allocators"]["project"]
    for batch_size in default:
      d, p = default[batch_size], project[batch_size]
      print(f"allocator at batch {batch_size}: glibc defaults scan {d['scan']:.2f} / host loop "
            f"{d['host_loop']:.2f} updates/s, the project's settings ({project_tunables()}) "
            f"scan {p['scan']:.2f} / host loop {p['host_loop']:.2f}: project / defaults = "
            f"{p['scan'] / d['scan']:.2f} (scan), {p['host_loop'] / d['host_loop']:.2f} "
            "(host loop)")
  if "memory" in r:
    m = r["memory"]
    print(f"loaded {m['steps']:,}-step {r['image']} px dataset: {m['resident_bytes'] / 2**20:.0f} "
          f"MiB resident for {m['raw_bytes'] / 2**20:.0f} MiB of raw frames "
          f"({m['ratio']:.2f}x)")
  b, fraction = first
  line = common.report("drqbc", b["scan"], "updates/s", fraction)
  print(line)
  return line
