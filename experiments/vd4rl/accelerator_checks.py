r"""Offline DV2's accelerator checks, a few minutes on one GPU (issue 13).

At the ``paper`` presets (64 x 64 pixels, batch 64 x 50, V-D4RL appendix C.1 sizes) on a
synthetic 64 px dataset built in memory (no dataset generation needed), through the common
loop's offline chunk: the wall time per 1,000 model updates and per 1,000 agent updates, and
the extrapolation to the paper's budget (25,000 model + 75,000 agent updates for a 100k-step
dataset) against its 10 V100-hours. Prints Markdown lines for ``benchmarks/perf/RESULTS.md``.

  python -m experiments.vd4rl.accelerator_checks [--updates=200] [--frames=20000]

``experiments/vd4rl/accelerator_checks.sh`` installs the carried wheels and runs this and
``python -m benchmarks.perf rssm``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from experiments.configs import offline_dv2 as dv2_configs
from experiments.configs import rssm as rssm_configs
from worldmodels.agents.offline_dv2.learner import OfflineDV2Learner
from worldmodels.data.source import DataSource
from worldmodels.data.types import Steps
from worldmodels.models.rssm_learner import RSSMLearner
from worldmodels.training.loop import make_offline_chunk

PAPER_MODEL_UPDATES, PAPER_AGENT_UPDATES, PAPER_HOURS = 25_000, 75_000, 10.0


def synthetic_pixels(frames: int, episode: int = 501, action_dim: int = 6) -> DataSource:
  """``frames`` steps of random 64 x 64 frames in episodes of ``episode`` steps."""
  rng = np.random.default_rng(0)
  t = np.arange(frames) % episode
  steps = Steps({"pixels": rng.integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8)},
                rng.uniform(-1, 1, (frames, action_dim)).astype(np.float32),
                rng.uniform(0, 1, frames).astype(np.float32), np.ones(frames, np.float32),
                t == 0, (t == episode - 1) | (np.arange(frames) == frames - 1),
                np.zeros(frames, bool))
  return DataSource({"synthetic": steps})


def seconds_per_update(learner, source: DataSource, updates: int, chunk: int = 50) -> float:
  """Wall seconds per update of ``learner``'s first phase, as the loop runs it (chunks of
  ``chunk`` updates scanned in one jit), after one warm-up chunk."""
  phase = learner.phases()[0]
  phase.sampler.prepare(source)
  frozen = phase.frozen(source) if phase.frozen is not None else None
  run = make_offline_chunk(phase, False, None)
  state, key = learner.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)
  state, key, _, _ = run(state, key, source.arrays, frozen, np.int32(0), chunk)
  jax.block_until_ready(state)
  started, done = time.perf_counter(), 0
  while done < updates:
    state, key, _, _ = run(state, key, source.arrays, frozen, np.int32(done), chunk)
    done += chunk
  jax.block_until_ready(state)
  return (time.perf_counter() - started) / done


def main() -> None:
  parser = argparse.ArgumentParser(prog="python -m experiments.vd4rl.accelerator_checks")
  parser.add_argument("--updates", type=int, default=200, help="timed updates per phase")
  parser.add_argument("--frames", type=int, default=20_000, help="synthetic dataset size")
  parser.add_argument("--preset", default="paper")
  args = parser.parse_args()
  source = synthetic_pixels(args.frames)
  model_config = rssm_configs.get_config(args.preset).model
  model_learner = RSSMLearner.from_source(model_config, source, observation_keys=("pixels",))
  model_seconds = seconds_per_update(model_learner, source, args.updates)
  params = model_learner.init(jax.random.PRNGKey(0)).params
  agent_config = dv2_configs.get_config(args.preset).agent
  agent = OfflineDV2Learner(agent_config, source.spec(), world_model=(model_learner.model,
                                                                       params))
  agent_seconds = seconds_per_update(agent, source, args.updates)
  hours = (PAPER_MODEL_UPDATES * model_seconds + PAPER_AGENT_UPDATES * agent_seconds) / 3600
  device = jax.devices()[0]
  print(f"device: {device.device_kind} x{jax.device_count()} ({jax.default_backend()}), jax "
        f"{jax.__version__}; preset {args.preset}; {args.updates} timed updates per phase")
  print(f"| RSSM model, 64 px, batch {model_config.batch_size} x "
        f"{model_config.sequence_length} | {1000 * model_seconds:.1f} s per 1k updates |")
  print(f"| Offline DV2 agent, horizon {agent_config.horizon}, batch "
        f"{agent_config.batch_size} x {agent_config.sequence_length} | "
        f"{1000 * agent_seconds:.1f} s per 1k updates |")
  print(f"| paper budget ({PAPER_MODEL_UPDATES:,} model + {PAPER_AGENT_UPDATES:,} agent "
        f"updates, 100k steps) | {hours:.2f} h here vs {PAPER_HOURS:.0f} V100-hours in the "
        f"paper ({PAPER_HOURS / hours:.1f}x) |")


if __name__ == "__main__":
  main()
