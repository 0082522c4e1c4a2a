"""Pixel rendering for the V-D4RL datasets: frames/s and the size of an 84px dataset.

``python -m benchmarks.perf render [--frames 100000] [--workdir DIR]``

1. Frames/s of walker-walk rendered from saved physics states (how ``benchmarks.datasets``
   makes pixel datasets: ``set_physics_state`` + ``render``) at 64x64 and 84x84, against the
   reference in the same process: a pixel environment rendering as it steps (how the
   V-D4RL/DrQ-v2 code renders while collecting). The ratio ours / reference is the figure to
   compare across machines (rendering speed depends on the OpenGL backend: EGL on a GPU, or
   Mesa's llvmpipe on a CPU).
2. A ``--frames``-frame walker-walk dataset (random actions) rendered at 84x84: its size on
   disk (zlib-compressed array_record shards) and in RAM when loaded (``load_dataset``: bytes
   of the arrays and the growth of the process's resident memory).

The last line is ``render: <frames/s at 84> frames/s, <ratio> of reference``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time

import numpy as np

FRAMES_PER_SPEED_TEST = 1000  # ~20 s per measurement at ~50 frames/s; 300 varied by +-15%
WARMUP_FRAMES = 20


def _rss_bytes() -> int:
  """Current resident set size of this process (Linux /proc)."""
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * resource.getpagesize()


def _directory_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(dirpath, name))
             for dirpath, _, names in os.walk(path) for name in names)


def render_speed(image_size: int, frames: int = FRAMES_PER_SPEED_TEST) -> dict:
  """Frames/s from saved physics states and of a rendering environment, at ``image_size``."""
  from benchmarks.envs import make_env
  rng = np.random.default_rng(0)
  stepping = make_env("walker-walk", obs_type="pixels", image_size=image_size,
                      record_physics=True)
  timestep = stepping.reset()
  for _ in range(WARMUP_FRAMES):  # first frames pay for the GL context and shader set-up
    stepping.render()
  actions = rng.uniform(-1, 1, (frames, 6)).astype(np.float32)
  states = []
  start = time.perf_counter()
  for action in actions:  # reference: render while stepping (includes the physics)
    timestep = stepping.step(action)
    if timestep.last():
      timestep = stepping.reset()
    states.append(timestep.observation["physics"])
  reference = frames / (time.perf_counter() - start)
  start = time.perf_counter()
  for state in states:  # ours: re-render saved states
    stepping.set_physics_state(state)
    stepping.render()
  ours = frames / (time.perf_counter() - start)
  stepping.close()
  return {"image_size": image_size, "from_states": ours, "while_stepping": reference}


def dataset_footprint(frames: int, workdir: str, episode_length: int | None = None) -> dict:
  """Disk and RAM footprint of a ``frames``-transition 84px walker-walk dataset (whole
  episodes of ``episode_length`` agent steps; None: the suite's 500)."""
  from benchmarks.datasets import configs, vd4rl
  from worldmodels.data import load_dataset

  config = configs.get_config("walker-walk")
  config.sizes.random = frames
  config.episode_length = episode_length
  state_path = os.path.join(workdir, "state")
  pixel_path = os.path.join(workdir, "84px")
  env = vd4rl._env_factory(config)(0)  # pylint: disable=protected-access
  spec = env.action_spec()
  actor = vd4rl._random_episodes(config, spec.minimum, spec.maximum)  # pylint: disable=protected-access
  vd4rl.collect_rollouts(config, state_path, "random", actor, frames, {"kind": "random"},
                         {"kind": "random"})
  start = time.perf_counter()
  metadata = vd4rl.render_dataset(state_path, pixel_path, 84)
  render_seconds = time.perf_counter() - start
  disk = _directory_bytes(pixel_path)
  before = _rss_bytes()
  start = time.perf_counter()
  steps, _ = load_dataset(pixel_path)
  load_seconds = time.perf_counter() - start
  grown = _rss_bytes() - before
  array_bytes = sum(int(np.asarray(leaf).nbytes) for leaf in
                    [*steps.observation.values(), steps.action, steps.reward, steps.discount,
                     steps.is_first, steps.is_last, steps.is_terminal])
  return {"frames": metadata["num_steps"], "transitions": metadata["num_transitions"],
          "disk_bytes": disk, "array_bytes": array_bytes,
          "pixel_bytes": int(steps.observation["pixels"].nbytes), "rss_growth_bytes": grown,
          "render_seconds": render_seconds, "load_seconds": load_seconds}


def main(argv=None, tiny: bool = False) -> None:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.perf render")
  parser.add_argument("--frames", type=int, default=100_000,
                      help="transitions of the 84px dataset whose footprint is measured")
  parser.add_argument("--workdir", default=None, help="where the dataset is written (default: "
                      "a temporary directory, removed at the end)")
  args = parser.parse_args(argv)
  os.environ.setdefault("MUJOCO_GL", "egl")
  speeds = [render_speed(size, **({"frames": 4} if tiny else {})) for size in (64, 84)]
  for row in speeds:
    print(f"walker-walk {row['image_size']}x{row['image_size']}: {row['from_states']:.1f} "
          f"frames/s from saved physics states; {row['while_stepping']:.1f} frames/s rendering "
          f"while stepping (reference); ratio {row['from_states'] / row['while_stepping']:.2f}",
          flush=True)
  workdir = args.workdir or tempfile.mkdtemp(prefix="render-bench-")
  try:
    footprint = dataset_footprint(20 if tiny else args.frames, workdir,
                                  **({"episode_length": 10} if tiny else {}))
  finally:
    if args.workdir is None:
      shutil.rmtree(workdir, ignore_errors=True)
  mib = 2.0**20
  print(f"84px dataset, {footprint['frames']:,} frames ({footprint['transitions']:,} "
        f"transitions): {footprint['disk_bytes'] / mib:.1f} MiB on disk "
        f"({footprint['disk_bytes'] / footprint['frames']:.0f} B/frame); loaded: "
        f"{footprint['array_bytes'] / mib:.1f} MiB of arrays (pixels "
        f"{footprint['pixel_bytes'] / mib:.1f} MiB), resident memory grew "
        f"{footprint['rss_growth_bytes'] / mib:.1f} MiB; rendered in "
        f"{footprint['render_seconds']:.0f} s, loaded in {footprint['load_seconds']:.1f} s",
        flush=True)
  ours = speeds[1]
  print(f"render: {ours['from_states']:.1f} frames/s, "
        f"{ours['from_states'] / ours['while_stepping']:.3f} of reference")
