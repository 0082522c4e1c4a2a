"""Vmapped seeds against the same seeds run one after another: 3 seeds of SAC and of MOPO.

Both sides run the training loop's own offline chunk (``worldmodels.training.loop.
make_offline_chunk``): ``K`` updates scanned in one jit, batches sampled from a 100k-step
episodic data source, one seed's state against a ``[3, ...]`` state vmapped in one call.
Sequential runs cost 3 single-seed chunks, so ``speed-up = 3 * t(one seed) / t(3 seeds)``.

SAC: batch 256, 256x256 networks, 17-d states, 6-d actions (``benchmarks.perf sac``'s sizes).
MOPO: the same SAC on 5% real + 95% model rows, with a 7 x 4 x 200 ensemble rolling out 10,000
starts for 5 steps every 1,000 updates (the CPU experiments' sizes; an untrained ensemble:
the work, not the values, is measured).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.perf import common
from worldmodels.agents.mopo import config as mopo_config
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.agents.sac import config as sac_config
from worldmodels.agents.sac.learner import SACLearner
from worldmodels.data.samplers import TransitionSampler
from worldmodels.data.source import DataSource
from worldmodels.data.spec import DataSpec
from worldmodels.data.types import Steps
from worldmodels.models import ensemble
from worldmodels.training.agent import Phase
from worldmodels.training.loop import make_offline_chunk
from worldmodels.training.seeds import stack_seeds

SEEDS = 3


def _source(obs_dim: int, action_dim: int, episodes: int, length: int) -> DataSource:
  """Random episodes of ``length`` transitions (``length + 1`` steps each)."""
  rng = np.random.default_rng(0)
  n = episodes * (length + 1)
  position = np.arange(n) % (length + 1)
  return DataSource({"random": Steps(
      observation={"state": rng.normal(size=(n, obs_dim)).astype(np.float32)},
      action=rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
      reward=rng.normal(size=n).astype(np.float32), discount=np.ones(n, np.float32),
      is_first=position == 0, is_last=position == length, is_terminal=np.zeros(n, bool))})


def _sac_phase(spec: DataSpec, tiny: bool):
  config = sac_config.tiny_config() if tiny else sac_config.default_config()
  learner = SACLearner(config, spec)
  phase = Phase("sac", "offline", 1, lambda state, batch, frozen: learner.update(state, batch),
                TransitionSampler(config.batch_size))
  return learner, phase


def _mopo_phase(spec: DataSpec, tiny: bool):
  config = mopo_config.tiny_config() if tiny else mopo_config.default_config()
  if not tiny:
    config.rollout_batch_size = 10_000  # the CPU experiments' (experiments/configs/zero_shot)
  model_config = ensemble.default_config()
  if tiny:
    model_config.hidden_sizes, model_config.weight_decays = (16,), (0.0, 0.0)
  model_def = ensemble.Ensemble(spec.observation_shapes["state"][0], spec.action_dim,
                                model_config)
  learner = MOPOLearner(config, spec, world_model=(model_def,
                                                    model_def.init(jax.random.PRNGKey(5))))
  return learner, learner.phases()[0]


def _measure(learner, phase: Phase, source: DataSource, updates: int, repeats: int) -> dict:
  """Seconds per chunk of ``updates`` for one seed and for ``SEEDS`` vmapped seeds."""
  phase.sampler.prepare(source)
  frozen = phase.frozen(source) if phase.frozen is not None else None
  out = {}
  for seeded in (False, True):
    chunk = make_offline_chunk(phase, seeded)
    states = [learner.init(jax.random.PRNGKey(seed)) for seed in range(SEEDS)]
    keys = [jax.random.PRNGKey(100 + seed) for seed in range(SEEDS)]
    held = stack_seeds(list(zip(states, keys))) if seeded else (states[0], keys[0])
    # Fresh buffers, as the loop makes (init may alias target and online parameters).
    held = list(jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), held))
    step = [0]

    def call():  # the loop's form: each chunk continues from the last one's state
      held[0], held[1], metrics, _ = chunk(held[0], held[1], source.arrays, frozen,
                                           np.int32(step[0]), updates)
      step[0] += updates
      return metrics

    out["seeds" if seeded else "one"] = {"seconds": common.time_calls(call, repeats)}
    if not seeded:
      # XLA counts a scan's body once: the work of one update (a chunk of one) times the
      # updates, and S times that vmapped (vmap adds no work); exact for SAC, while MOPO's
      # conditional rollout is counted as XLA counts a conditional.
      per_update = common.lowered_flops(chunk, held[0], held[1], source.arrays, frozen,
                                        np.int32(1), 1)
  out["one"]["flops"] = updates * per_update
  out["seeds"]["flops"] = SEEDS * updates * per_update
  return out


def run(tiny: bool = False, updates_per_call: int = 1000, repeats: int = 2) -> dict:
  spec = DataSpec({"state": ((17,), np.float32)}, 6)
  source = _source(17, 6, episodes=4 if tiny else 100, length=50 if tiny else 1000)
  peak = common.matmul_peak()
  results = {"peak_flops": peak}
  for name, build in (("sac", _sac_phase), ("mopo", _mopo_phase)):
    learner, phase = build(spec, tiny)
    m = _measure(learner, phase, source, updates_per_call, repeats)
    one, seeds = m["one"], m["seeds"]
    results[name] = {
        "one_seed_updates_per_s": updates_per_call / one["seconds"],
        "vmapped_updates_per_s": SEEDS * updates_per_call / seeds["seconds"],
        "speed_up": SEEDS * one["seconds"] / seeds["seconds"],
        "one_seed_fraction_of_peak": one["flops"] / one["seconds"] / peak,
        "vmapped_fraction_of_peak": seeds["flops"] / seeds["seconds"] / peak}
  return results


def main(tiny: bool = False) -> str:
  """Runs the benchmark and prints its figures (``tiny``: a smoke run of the same code, whose
  figures mean nothing)."""
  sizes = {"updates_per_call": 2, "repeats": 1} if tiny else {"updates_per_call": 1000}
  r = run(tiny=tiny, **sizes)
  kind, count = common.describe_devices()
  print(f"device: {kind} x{count}; {SEEDS} seeds vmapped in one jit against {SEEDS} "
        f"sequential single-seed runs; the loop's offline chunk, {sizes['updates_per_call']} "
        "updates per call; "
        f"matmul peak {r['peak_flops'] / 1e9:.1f} GFLOP/s")
  for name in ("sac", "mopo"):
    m = r[name]
    fraction = lambda key: (f" ({m[key]:.3f} of peak)" if name == "sac" else "")
    print(f"{name}: one seed {m['one_seed_updates_per_s']:.1f} updates/s"
          f"{fraction('one_seed_fraction_of_peak')}; {SEEDS} vmapped seeds "
          f"{m['vmapped_updates_per_s']:.1f} seed-updates/s"
          f"{fraction('vmapped_fraction_of_peak')}; speed-up {m['speed_up']:.2f}")
  speed_up = min(r["sac"]["speed_up"], r["mopo"]["speed_up"])
  line = (f"speed-up {speed_up:.2f} (the smaller of SAC {r['sac']['speed_up']:.2f} and MOPO "
          f"{r['mopo']['speed_up']:.2f})")
  print(line)
  final = common.report("seeds", r["sac"]["vmapped_updates_per_s"], "seed-updates/s (SAC)",
                        r["sac"]["vmapped_fraction_of_peak"])
  print(final)
  return final
