"""The throughput benchmarks run end to end at tiny sizes and report in the agreed format.
(Speed itself is measured by `python -m benchmarks.perf NAME`, never asserted in a test.)"""

from __future__ import annotations

import re

import pytest

from benchmarks.perf import common, ensemble, render, rollout, sac


def test_report_line_format():
  line = common.report("sac", 123.456, "updates/s", 0.5)
  assert re.fullmatch(r"sac: 123\.5 updates/s, 0\.500 of matmul peak", line)


def _consistent(rate, flops, r, key="fraction_of_peak"):
  """The reported fraction is the measured rate times the counted work over the peak."""
  assert rate > 0 and r["peak_flops"] > 1e9
  assert abs(r[key] - rate * flops / r["peak_flops"]) <= 1e-6 * r[key]


def test_benchmarks_run_small():
  r = sac.run(updates_per_call=1, repeats=1)
  assert r["reference_updates_per_s"] > 0
  # One SAC update at batch 256 of 256x256 networks: ~10 forward-equivalent passes of ~1e5
  # multiply-adds per row, so some 1e8-1e10 flops, whatever XLA fuses.
  assert 1e8 < r["flops_per_update"] < 1e10
  _consistent(r["updates_per_s"], r["flops_per_update"], r)
  r = ensemble.run(steps_per_call=1, repeats=1)
  # 7 members x 256 rows x (23*200 + 3*200*200 + 200*36) multiply-adds, forward and backward
  # (x3), 2 flops each: 1.42e9; XLA's count must be near it.
  analytic = 2 * 3 * 7 * 256 * (23 * 200 + 3 * 200 * 200 + 200 * 36)
  assert 0.7 * analytic < r["flops_per_step"] < 1.5 * analytic
  assert r["transitions_per_s"] == r["steps_per_s"] * 7 * 256 and r["reference_steps_per_s"] > 0
  _consistent(r["steps_per_s"], r["flops_per_step"], r)
  r = rollout.run(starts=64, horizon=1, repeats=1)
  assert abs(r["transitions_per_s"] - 64 * 1 / r["seconds"]) < 1e-6 * r["transitions_per_s"]
  _consistent(1.0 / r["seconds"], r["flops"], r)


def test_render_benchmark_runs_small(tmp_path):
  speed = render.render_speed(16, frames=4)
  assert speed["from_states"] > 0 and speed["while_stepping"] > 0
  footprint = render.dataset_footprint(20, str(tmp_path), episode_length=10)
  assert footprint["frames"] == 22 and footprint["transitions"] == 20  # 2 episodes of 11 steps
  assert footprint["pixel_bytes"] == 22 * 84 * 84 * 3
  assert 0 < footprint["disk_bytes"] and footprint["array_bytes"] > footprint["pixel_bytes"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sac", "ensemble", "rollout", "render"])
def test_benchmark_mains_run_small(name, capsys):
  """``python -m benchmarks.perf <name> --tiny`` as the docs give it, in process."""
  from benchmarks.perf import __main__ as perf_main  # pylint: disable=import-outside-toplevel
  argv = [name, "--tiny"] + (["--frames", "10000"] if name == "render" else [])
  assert perf_main.main(argv) == 0
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert re.fullmatch(rf"{name}: [0-9.]+ [\w/-]+(, | \()?.*", last), last


def test_evaluation_benchmark_runs_small(capsys):
  """Batched and episode-by-episode grid evaluation and the bare environments, at tiny sizes."""
  from benchmarks.perf import evaluation  # pylint: disable=import-outside-toplevel
  line = evaluation.main(tiny=True)
  out = capsys.readouterr().out
  assert re.search(r"^bare: [0-9]+ env steps/s", out, re.M), out
  assert re.search(r"^episode_by_episode: [0-9]+ env steps/s", out, re.M), out
  assert re.fullmatch(r"evaluation: [0-9]+ env steps/s batched, speed-up [0-9.]+ over episode "
                      r"by episode, [0-9.]+ of the bare environments' rate", line), line


@pytest.mark.slow
def test_seeds_benchmark_runs_small(capsys):
  from benchmarks.perf import seeds  # pylint: disable=import-outside-toplevel
  line = seeds.main(tiny=True)
  out = capsys.readouterr().out
  assert re.search(r"^speed-up [0-9.]+ ", out, re.M), out
  assert re.fullmatch(r"seeds: [0-9.]+ seed-updates/s \(SAC\), [0-9.]+ of matmul peak", line), line


@pytest.mark.slow
def test_rssm_benchmark_runs_small(capsys):
  """Every variant at toy sizes: the state scan and host loop, the plain-JAX reference, pixels."""
  from benchmarks.perf import rssm  # pylint: disable=import-outside-toplevel
  line = rssm.main(tiny=True)
  out = capsys.readouterr().out
  assert "ours / reference = " in out and "16x16 pixels, batch 2x4, im2col" in out, out
  assert re.fullmatch(r"rssm: [0-9.]+ steps/s, [0-9.]+ of matmul peak", line), line


@pytest.mark.slow
def test_drqbc_benchmark_runs_small(capsys):
  """The DrQ+BC benchmark's code at toy sizes (updates, variants, the loaded-dataset memory)."""
  from benchmarks.perf import drqbc  # pylint: disable=import-outside-toplevel
  line = drqbc.main(tiny=True)
  out = capsys.readouterr().out
  assert "ours / reference = " in out and "bilinear shifts" in out and "resident" in out
  assert out.count("project / defaults = ") == 2  # the allocator, at both batch sizes
  assert re.fullmatch(r"drqbc: [0-9.]+ updates/s, [0-9.]+ of matmul peak", line), line
