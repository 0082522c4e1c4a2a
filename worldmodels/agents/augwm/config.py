"""AugWM hyperparameters (Ball et al., "Augmented World Models"; AugWM paper tables 3 and 4).

AugWM is MOPO plus dynamics augmentation of every policy-training transition and, optionally,
the augmentation ``z`` as a context input of the actor and critics.
"""

import ml_collections

from worldmodels.agents.mopo import config as mopo_config



def default_config() -> ml_collections.ConfigDict:
  c = mopo_config.default_config()
  c.augmentation = "das"  # none (= MOPO), rad, rans, das
  c.z_low, c.z_high = 0.5, 1.5  # train range of z ~ U[a, b]^|S|
  c.use_context = True  # append z to the actor's and critics' inputs
  c.num_steps = 900_000  # AugWM table 4: 900 offline epochs of 1000 steps
  # Test time (algorithm 2).
  c.test_context = "learned"  # default: z = 1; learned: online linear model
  c.adapt_after = 300  # k: steps before the learned context is used
  c.context_clip = (0.93, 1.07)  # z test range
  c.linear_ridge = 1e-3  # ridge of the online least-squares fit
  c.min_abs_delta = 1e-3  # |delta_hat| below this: that dimension keeps z = 1
  return c


def tiny_config() -> ml_collections.ConfigDict:
  c = default_config()
  tiny = mopo_config.tiny_config()
  for key in ("sac", "horizon", "rollout_batch_size", "rollout_every", "model_retain_epochs",
              "batch_size", "num_steps"):
    c[key] = tiny[key]
  c.adapt_after = 5
  return c
