"""The throughput benchmarks run end to end at tiny sizes and report in the agreed format.
(Speed itself is measured by `python -m benchmarks.perf NAME`, never asserted in a test.)"""

from __future__ import annotations

import re

from benchmarks.perf import common, ensemble, render, rollout, sac


def test_report_line_format():
  line = common.report("sac", 123.456, "updates/s", 0.5)
  assert re.fullmatch(r"sac: 123\.5 updates/s, 0\.500 of matmul peak", line)


def test_benchmarks_run_small():
  r = sac.run(updates_per_call=2, repeats=1)
  assert r["updates_per_s"] > 0 and r["reference_updates_per_s"] > 0
  assert 0 < r["fraction_of_peak"] and r["flops_per_update"] > 1e8
  r = ensemble.run(steps_per_call=2, repeats=1)
  assert r["transitions_per_s"] > 0 and r["flops_per_step"] > 1e8
  assert r["reference_steps_per_s"] > 0
  r = rollout.run(starts=64, horizon=2, repeats=1)
  assert r["transitions_per_s"] > 0


def test_render_benchmark_runs_small(tmp_path):
  speed = render.render_speed(16, frames=4)
  assert speed["from_states"] > 0 and speed["while_stepping"] > 0
  footprint = render.dataset_footprint(20, str(tmp_path), episode_length=10)
  assert footprint["frames"] == 22 and footprint["transitions"] == 20  # 2 episodes of 11 steps
  assert footprint["pixel_bytes"] == 22 * 84 * 84 * 3
  assert 0 < footprint["disk_bytes"] and footprint["array_bytes"] > footprint["pixel_bytes"]
