"""CQL learner: the shared DrQ-v2 update with CQL(H)'s critic regulariser."""

from __future__ import annotations

from worldmodels.agents.cql import losses
from worldmodels.rl.drq import DrQLearner, DrQState

__all__ = ["CQLLearner", "DrQState"]


class CQLLearner(DrQLearner):
  """DrQ-v2 whose critic loss adds ``cql_weight * (log E_uniform exp Q - Q(data))``."""

  name = "cql"

  def critic_regulariser(self, critic_params, features, action, q_data, key):
    del action
    c = self.config
    return losses.cql_regulariser(critic_params, self.networks, features, q_data, key,
                                  c.cql_samples, c.cql_weight)
