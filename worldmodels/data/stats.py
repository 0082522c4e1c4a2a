"""Dataset statistics in the layout of the V-D4RL appendix A table."""

from __future__ import annotations

from typing import Sequence

import numpy as np

RETURN_STATISTICS = ("mean", "std", "min", "p25", "median", "p75", "max")
"""Per-episode return statistics, in table order (keys ``return_<name>``)."""


def dataset_statistics(episode_returns: Sequence[float], timesteps: int) -> dict:
  """Size and per-episode return statistics of a dataset.

  Args:
    episode_returns: ``[E]`` return (sum of rewards) of each episode.
    timesteps: number of transitions in the dataset.

  Returns:
    JSON-ready dict: ``timesteps``, ``episodes`` and ``return_mean``, ``return_std`` (population
    std), ``return_min``, ``return_p25``, ``return_median``, ``return_p75``, ``return_max``
    (floats; None when there are no episodes).
  """
  returns = np.asarray(episode_returns, dtype=np.float64).reshape(-1)
  statistics = {"timesteps": int(timesteps), "episodes": int(returns.size)}
  if returns.size:
    p25, median, p75 = np.percentile(returns, [25, 50, 75])
    values = (returns.mean(), returns.std(), returns.min(), p25, median, p75, returns.max())
  else:
    values = (None,) * len(RETURN_STATISTICS)
  for name, value in zip(RETURN_STATISTICS, values):
    statistics[f"return_{name}"] = None if value is None else float(value)
  return statistics


def format_statistics_table(statistics: dict, name: str) -> str:
  """Markdown table of one dataset's statistics (``dataset_statistics`` output).

  Args:
    statistics: output of ``dataset_statistics``.
    name: dataset name, shown in the first column.

  Returns:
    A header row, a separator row and one row for the dataset (no trailing newline).
  """
  header = ["Dataset", "Timesteps", "Episodes"] + [
      f"Return {stat}" for stat in RETURN_STATISTICS]
  returns = [statistics[f"return_{stat}"] for stat in RETURN_STATISTICS]
  row = [name, f"{statistics['timesteps']:,}", f"{statistics['episodes']:,}"] + [
      "-" if value is None else f"{round(value, 1) + 0.0:.1f}" for value in returns]  # No "-0.0".
  lines = [header, ["---"] + ["---:"] * (len(header) - 1), row]
  return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
