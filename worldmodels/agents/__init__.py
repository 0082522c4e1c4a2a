"""Agents, one package each (``config``, ``networks``, ``losses``, ``learner``), and the
name-to-constructor registry used by launchers."""

from __future__ import annotations

from typing import Callable, Dict

import ml_collections

from worldmodels.agents.augwm.learner import AugWMLearner
from worldmodels.agents.bc.learner import BCLearner
from worldmodels.agents.cql.learner import CQLLearner
from worldmodels.agents.drqbc.learner import DrQBCLearner
from worldmodels.agents.mopo.learner import MOPOLearner
from worldmodels.agents.offline_dv2.learner import OfflineDV2Learner
from worldmodels.agents.pixel_bc.learner import PixelBCLearner
from worldmodels.agents.sac.learner import SACLearner
from worldmodels.agents.td3bc.learner import TD3BCLearner
from worldmodels.data.spec import DataSpec

REGISTRY: Dict[str, Callable[[ml_collections.ConfigDict, DataSpec], object]] = {
    "sac": SACLearner,
    "bc": BCLearner,
    "td3bc": TD3BCLearner,
    "mopo": MOPOLearner,
    "augwm": AugWMLearner,
    "offline_dv2": OfflineDV2Learner,
    "drqbc": DrQBCLearner,
    "cql": CQLLearner,
    "pixel_bc": PixelBCLearner,
}


def make_agent(name: str, config: ml_collections.ConfigDict, spec: DataSpec):
  """Builds the agent registered under ``name`` from its agent config and data spec."""
  if name not in REGISTRY:
    raise ValueError(f"unknown agent {name!r}; registered agents: {sorted(REGISTRY)}")
  return REGISTRY[name](config, spec)
