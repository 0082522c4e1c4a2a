"""CQL(H) on DrQ-v2 (V-D4RL appendices B.3 and C.4): DrQ+BC's networks and settings, the
critic regularised towards the data with a fixed weight, and DrQ-v2's actor."""

import ml_collections

from worldmodels.rl import pixels

TABLE10 = {
    ("walker-walk", "random"): 0.5, ("walker-walk", "mixed"): 0.5,
    ("walker-walk", "medium"): 2.0, ("walker-walk", "medexp"): 2.0,
    ("walker-walk", "expert"): 5.0,
    ("cheetah-run", "random"): 0.5, ("cheetah-run", "mixed"): 0.5,
    ("cheetah-run", "medium"): 10.0, ("cheetah-run", "medexp"): 1.0,
    ("cheetah-run", "expert"): 20.0,
}
"""V-D4RL table 10: the CQL trade-off factor per dataset (a sweep per environment; the paper
gives none for humanoid-walk)."""


def default_config() -> ml_collections.ConfigDict:
  c = pixels.pixel_config()
  c.cql_weight = 1.0  # the per-dataset values: TABLE10
  c.cql_samples = 10  # uniform actions per state for the log-partition estimate
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = pixels.tiny_pixel_config(default_config())
  c.cql_samples = 3
  return c


def table10_weight(task: str, kind: str) -> float:
  """The paper's CQL weight for ``task`` (e.g. ``walker-walk``) and dataset ``kind``."""
  if (task, kind) not in TABLE10:
    raise ValueError(f"V-D4RL table 10 has no CQL weight for {task} {kind}; it covers "
                     f"{sorted({t for t, _ in TABLE10})} x random, mixed, medium, medexp, "
                     "expert. Set --config.agent.cql_weight.")
  return TABLE10[(task, kind)]
