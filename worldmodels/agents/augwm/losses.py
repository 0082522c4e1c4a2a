"""AugWM adds no loss: the augmented transitions ``T_z(s, a, r, s')`` with context ``z`` enter
SAC's losses unchanged (``worldmodels.agents.sac.losses``)."""

from worldmodels.agents.sac.losses import actor_loss, alpha_loss, critic_loss

__all__ = ["actor_loss", "alpha_loss", "critic_loss"]
