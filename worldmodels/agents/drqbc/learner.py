"""DrQ+BC learner: the shared DrQ-v2 update with TD3+BC's actor objective."""

from __future__ import annotations

from worldmodels.agents.drqbc import losses
from worldmodels.rl.drq import DrQLearner, DrQState

__all__ = ["DrQBCLearner", "DrQState"]


class DrQBCLearner(DrQLearner):
  """DrQ-v2 whose actor also regresses the dataset's actions (lambda = alpha / mean|Q|)."""

  name = "drqbc"

  def actor_loss(self, actor_params, critic_params, features, action, stddev, key):
    c = self.config
    return losses.actor_loss(actor_params, self.networks, critic_params, features, action,
                             stddev, c.stddev_clip, c.alpha, key)
