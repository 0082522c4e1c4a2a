"""MOPO adds no loss of its own: the penalised reward ``r - lambda * u(s, a)`` enters SAC's soft
TD loss through the model transitions (``worldmodels.models.rollouts``)."""

from worldmodels.agents.sac.losses import actor_loss, alpha_loss, critic_loss

__all__ = ["actor_loss", "alpha_loss", "critic_loss"]
