"""Scenario adaptation adds no loss of its own: model transitions enter SAC's losses through the
mixed batches (``worldmodels.rl.model_buffer``)."""

from worldmodels.agents.sac.losses import actor_loss, alpha_loss, critic_loss

__all__ = ["actor_loss", "alpha_loss", "critic_loss"]
