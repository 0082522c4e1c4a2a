"""The V-D4RL benchmark protocol (Lu et al. 2023, section 4 and appendix C.6).

* Evaluation: ``EVAL_EPISODES`` (10) episodes per trained agent at the end of training, with
  deterministic actions; the table reports the mean over seeds of each seed's mean return, with
  the std over seeds.
* Normalised return: the undiscounted return of a 1000-frame DMC episode divided by 10
  (:func:`normalised_return`), so a perfect episode scores 100, as in the paper's tables.
* Offline epochs (appendix C.6): training progress of every algorithm on one common axis, the
  transitions its gradient steps have consumed divided by the dataset's size
  (:func:`offline_epochs`). The paper's own budgets read this way: Offline DV2's 800 model
  epochs of a 100k-step dataset are 25,000 updates of 64 x 50 transitions; DrQ+BC's 100,000
  updates of batch 256 are 256 epochs.
* Table 1: agents x tasks x dataset kinds (``TABLE1_AGENTS``, ``TABLE1_TASKS``,
  ``TABLE1_KINDS``) plus the data-mean column; the paper's values are ``PAPER_TABLE1``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

TABLE1_AGENTS = ("offline_dv2", "drqbc", "cql", "bc")
"""Table 1's agents, by the names this protocol uses (``bc`` is the pixel BC agent)."""
TABLE1_TASKS = ("walker-walk", "cheetah-run", "humanoid-walk")
TABLE1_KINDS = ("random", "mixed", "medium", "medexp", "expert")
EVAL_EPISODES = 10
AGENT_LABELS = {"offline_dv2": "Offline DV2", "drqbc": "DrQ+BC", "cql": "CQL", "bc": "BC"}
DMC_RETURN_SCALE = 10.0
"""The divisor of a 1000-frame DMC episode's return (rewards in [0, 1] per frame)."""

_ROWS = {  # V-D4RL table 1: (Offline DV2, DrQ+BC, CQL, BC) as (mean, std), then the data mean
    ("walker-walk", "random"): ((28.7, 13.0), (5.5, 0.9), (14.4, 12.4), (2.0, 0.2), 4.2),
    ("walker-walk", "mixed"): ((56.5, 18.1), (28.7, 6.9), (11.4, 12.4), (16.5, 4.3), 14.5),
    ("walker-walk", "medium"): ((34.1, 19.7), (46.8, 2.3), (14.8, 16.1), (40.9, 3.1), 44.0),
    ("walker-walk", "medexp"): ((43.9, 34.4), (86.4, 5.6), (56.4, 38.4), (47.7, 3.9), 70.4),
    ("walker-walk", "expert"): ((4.8, 0.6), (68.4, 7.5), (89.6, 6.0), (91.5, 3.9), 97.0),
    ("cheetah-run", "random"): ((31.7, 2.7), (5.8, 0.6), (5.9, 8.4), (0.0, 0.0), 0.7),
    ("cheetah-run", "mixed"): ((61.6, 1.0), (44.8, 3.6), (10.7, 12.8), (25.0, 3.6), 19.1),
    ("cheetah-run", "medium"): ((17.2, 3.5), (53.0, 3.0), (40.9, 5.1), (51.6, 1.4), 52.4),
    ("cheetah-run", "medexp"): ((10.4, 3.5), (50.6, 8.2), (20.9, 5.5), (57.5, 6.3), 70.7),
    ("cheetah-run", "expert"): ((10.9, 3.2), (34.5, 8.3), (61.5, 4.3), (67.4, 6.8), 89.1),
    ("humanoid-walk", "random"): ((0.1, 0.0), (0.1, 0.0), (0.2, 0.1), (0.1, 0.0), 0.1),
    ("humanoid-walk", "mixed"): ((0.2, 0.1), (15.9, 3.8), (0.1, 0.0), (18.8, 4.2), 27.6),
    ("humanoid-walk", "medium"): ((0.2, 0.1), (6.2, 2.4), (0.1, 0.0), (13.5, 4.1), 57.3),
    ("humanoid-walk", "medexp"): ((0.1, 0.0), (7.0, 2.3), (0.1, 0.0), (17.2, 4.7), 71.6),
    ("humanoid-walk", "expert"): ((0.2, 0.1), (2.7, 0.9), (1.6, 0.5), (6.1, 3.7), 85.8),
}
PAPER_TABLE1: Dict[Tuple[str, str], Dict[str, object]] = {
    cell: {**dict(zip(TABLE1_AGENTS, values[:4])), "data_mean": values[4]}
    for cell, values in _ROWS.items()}
"""V-D4RL table 1 (normalised returns; mean and std over seeds, full size, 64 x 64 pixels for
Offline DV2 and 84 x 84 for the others): ``PAPER_TABLE1[(task, kind)][agent] = (mean, std)``
and ``["data_mean"]``."""


def normalised_return(episode_return: float, scale: float = DMC_RETURN_SCALE) -> float:
  """The tables' score: a 1000-frame DMC episode's return / 10 (100 is a perfect episode)."""
  return float(episode_return) / scale


def transitions_per_update(batch_size: int, sequence_length: Optional[int] = None) -> int:
  """Dataset transitions one gradient step consumes: ``batch_size`` (x ``sequence_length`` for
  sequence models such as the RSSM and Offline DV2's agent)."""
  if batch_size < 1 or (sequence_length is not None and sequence_length < 1):
    raise ValueError(f"batch_size {batch_size} and sequence_length {sequence_length} must be "
                     "positive.")
  return batch_size * (sequence_length or 1)


def offline_epochs(updates: float, transitions_per_step: int, dataset_transitions: int) -> float:
  """Appendix C.6's offline epochs: ``updates * transitions_per_step / dataset_transitions``.

  Args:
    updates: gradient steps taken.
    transitions_per_step: see :func:`transitions_per_update`.
    dataset_transitions: the dataset's size in transitions.
  """
  if dataset_transitions < 1:
    raise ValueError(f"dataset_transitions must be positive, got {dataset_transitions}.")
  return float(updates) * transitions_per_step / dataset_transitions


def ordering(first: float, second: float) -> str:
  """``">"`` or ``"<"`` (``"="`` on a tie) between two scores."""
  return ">" if first > second else "<" if first < second else "="


def format_score(mean: float, std: float) -> str:
  """``mean ± std`` with one decimal."""
  return f"{mean:.1f} ± {std:.1f}"


def ordering_statements(cells: List[Dict[str, Any]], first: str = "drqbc", second: str = "bc",
                        kind: str = "medexp") -> List[str]:
  """The paper's qualitative ordering of ``first`` against ``second`` on ``kind``, checked on
  every task where both cells finished: one Markdown line each.

  Args:
    cells: table cells, dicts with ``task``, ``kind``, ``agent``, ``status`` ("done" for a
      finished cell) and, when done, ``score_mean`` and ``score_std`` (normalised returns).
    first, second: agents of ``TABLE1_AGENTS``.
    kind: the dataset kind compared.
  """
  done = {(c["task"], c["kind"], c["agent"]): c for c in cells if c["status"] == "done"}
  lines = []
  for task in dict.fromkeys(c["task"] for c in cells):
    a, b = done.get((task, kind, first)), done.get((task, kind, second))
    if a is None or b is None:
      continue
    paper = PAPER_TABLE1[(task, kind)]
    ours_order = ordering(a["score_mean"], b["score_mean"])
    paper_order = ordering(paper[first][0], paper[second][0])
    separated = abs(a["score_mean"] - b["score_mean"]) > a["score_std"] + b["score_std"]
    lab_a, lab_b = AGENT_LABELS[first], AGENT_LABELS[second]
    lines.append(
        f"- {task} {kind}: ours {lab_a} {format_score(a['score_mean'], a['score_std'])} "
        f"{ours_order} {lab_b} {format_score(b['score_mean'], b['score_std'])}"
        f"{'' if separated else ' (within one std of each other)'}; paper {lab_a} "
        f"{paper[first][0]} {paper_order} {lab_b} {paper[second][0]}: "
        + ("**the same ordering**." if ours_order == paper_order else "**the opposite "
           "ordering**." if "=" not in (ours_order, paper_order) else "a tie on one side."))
  return lines
