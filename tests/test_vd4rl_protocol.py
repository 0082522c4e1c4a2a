"""The V-D4RL protocol (benchmarks.protocols.vd4rl): offline epochs, normalised returns, the
paper's table 1 and the ordering check. The table-1 runner itself runs in tests/test_docs.py."""

from __future__ import annotations

import pytest

from benchmarks.protocols import vd4rl as protocol


def test_offline_epochs_reproduce_the_papers_budgets():
  # Offline DV2's model: 800 epochs of a 100k-step dataset are 25,000 updates of 64 x 50.
  assert protocol.offline_epochs(25_000, protocol.transitions_per_update(64, 50),
                                 100_000) == pytest.approx(800.0)
  # DrQ+BC: 100,000 updates of batch 256 are 256 epochs.
  assert protocol.offline_epochs(100_000, protocol.transitions_per_update(256),
                                 100_000) == pytest.approx(256.0)
  assert protocol.offline_epochs(0, 256, 100_000) == 0.0
  with pytest.raises(ValueError, match="dataset_transitions"):
    protocol.offline_epochs(10, 256, 0)
  with pytest.raises(ValueError, match="positive"):
    protocol.transitions_per_update(0)


def test_normalised_return_is_a_tenth_of_the_episode_return():
  assert protocol.normalised_return(1000.0) == 100.0
  assert protocol.normalised_return(41.1) == pytest.approx(4.11)


def test_paper_table1_has_every_cell_and_its_published_values():
  assert set(protocol.PAPER_TABLE1) == {(t, k) for t in protocol.TABLE1_TASKS
                                        for k in protocol.TABLE1_KINDS}
  for row in protocol.PAPER_TABLE1.values():
    assert set(row) == set(protocol.TABLE1_AGENTS) | {"data_mean"}
  walker, cheetah = (protocol.PAPER_TABLE1[(t, "medexp")] for t in ("walker-walk",
                                                                    "cheetah-run"))
  assert walker["drqbc"] == (86.4, 5.6) and walker["bc"] == (47.7, 3.9)
  assert cheetah["drqbc"] == (50.6, 8.2) and cheetah["bc"] == (57.5, 6.3)
  assert walker["data_mean"] == 70.4 and protocol.PAPER_TABLE1[("humanoid-walk", "expert")][
      "data_mean"] == 85.8


def _cell(task, agent, mean, std, kind="medexp", status="done"):
  return {"task": task, "kind": kind, "agent": agent, "status": status, "score_mean": mean,
          "score_std": std}


def test_ordering_statements_compare_with_the_paper_per_task():
  cells = [
      _cell("walker-walk", "drqbc", 60.0, 2.0), _cell("walker-walk", "bc", 40.0, 3.0),
      # The paper has BC above DrQ+BC on cheetah-run medexp; here the opposite, within noise.
      _cell("cheetah-run", "drqbc", 30.0, 5.0), _cell("cheetah-run", "bc", 28.0, 5.0),
      # No BC cell on humanoid: nothing to compare.
      _cell("humanoid-walk", "drqbc", 1.0, 0.1),
      _cell("humanoid-walk", "bc", 0.0, 0.0, status="unavailable"),
  ]
  walker, cheetah = protocol.ordering_statements(cells)
  assert walker.startswith("- walker-walk medexp: ours DrQ+BC 60.0 ± 2.0 > BC 40.0 ± 3.0;")
  assert "paper DrQ+BC 86.4 > BC 47.7" in walker and "**the same ordering**" in walker
  assert "within one std" not in walker
  assert "DrQ+BC 30.0 ± 5.0 > BC 28.0 ± 5.0 (within one std of each other)" in cheetah
  assert "paper DrQ+BC 50.6 < BC 57.5" in cheetah and "**the opposite ordering**" in cheetah
  assert protocol.ordering_statements(cells, kind="medium") == []
