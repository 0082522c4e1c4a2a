"""AugWM hyperparameters (Ball et al., "Augmented World Models"; AugWM paper tables 3 and 4).

AugWM is MOPO plus dynamics augmentation of every policy-training transition and, optionally,
the augmentation ``z`` as a context input of the actor and critics.
"""

from typing import Optional

import ml_collections
from ml_collections import config_dict

from worldmodels.agents.mopo import config as mopo_config



def default_config() -> ml_collections.ConfigDict:
  c = mopo_config.default_config()
  c.augmentation = "das"  # none (= MOPO), rad, rans, das
  c.z_low, c.z_high = 0.5, 1.5  # train range of z ~ U[a, b]^|S|
  # None: z ~ U[z_low, z_high]^|S| per transition; |S| values: that z for every transition and
  # as the default context (the paper's oracle experiment: the true z of a target environment).
  c.train_z = config_dict.placeholder(tuple)
  c.use_context = True  # append z to the actor's and critics' inputs
  c.num_steps = 900_000  # AugWM table 4: 900 offline epochs of 1000 steps
  # Test time (algorithm 2).
  c.test_context = "learned"  # default: z = 1; learned: online linear model
  # k, the steps before the learned context is used: adapt_after when set, else
  # adapt_after_fraction of the evaluation episode (the paper's k = 300 of 1000 steps).
  c.adapt_after = config_dict.placeholder(int)
  c.adapt_after_fraction = 0.3
  c.context_clip = (0.93, 1.07)  # z test range
  c.linear_ridge = 1e-3  # ridge of the online least-squares fit
  c.linear_features = "state"  # the paper's [s, 1]; "state_action": [s, a, 1] (ours)
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


LINEAR_FEATURES = ("state", "state_action")


def adapt_after(c: ml_collections.ConfigDict, episode_length: Optional[int]) -> int:
  """``k``: ``c.adapt_after`` when set, else ``c.adapt_after_fraction`` of ``episode_length``
  (rounded, at least 1).

  Raises:
    ValueError: neither is given, a fraction outside [0, 1], or unknown ``linear_features``.
  """
  if c.linear_features not in LINEAR_FEATURES:
    raise ValueError(f"linear_features must be one of {LINEAR_FEATURES}, got "
                     f"{c.linear_features!r}")
  if c.adapt_after is not None:
    return int(c.adapt_after)
  if not 0.0 <= c.adapt_after_fraction <= 1.0:
    raise ValueError(f"adapt_after_fraction must be in [0, 1], got {c.adapt_after_fraction}")
  if episode_length is None:
    raise ValueError("the learned context needs k: set adapt_after, or give the evaluation "
                     "episode length so that k = adapt_after_fraction x episode length")
  return max(1, round(c.adapt_after_fraction * episode_length))

