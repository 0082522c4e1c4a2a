"""RSSM world-model presets for ``experiments.train_model``:
``--config=experiments/configs/rssm.py:<preset>``.

Presets:

* ``paper``: V-D4RL's Offline DV2 model (appendix C.1, DreamerV2's DMC sizes): 64 x 64 pixels,
  GRU 200, 32 x 32 categorical latents, 7 prior heads, MLPs of 4 x 400, CNN depth 48, batch
  64 x 50, 25,000 updates (800 of V-D4RL's offline epochs of a 100k-step dataset: 100,000 /
  (64 x 50) = 31.25 updates per epoch). An accelerator run (about 6 V100-hours in the paper).
* ``default``: the same on the state (proprioceptive) entry.
* ``cpu``: state input, reduced to fit this project's 2-core CPU: GRU 128, 16 x 16 latents,
  MLPs of 2 x 256, batches of 32 x 32, 4,000 updates (15 minutes) (stated in ``experiments/vd4rl/README.md``).
* ``cpu_pixels``: pixels at 32 x 32 (3 convolutions of depth 8), GRU 128, 16 x 16 latents,
  MLPs of 2 x 128, batch 16 x 32, 5,000 updates of Adam 1e-3 (about 16 minutes: 5.4 updates/s
  here, against 3.2 at depth 16; the convolutions are most of an update's cost). At 5,000
  updates, 1e-3 reached a lower reconstruction loss (6.9) than 6,000 updates at depth 16 and the
  paper's 3e-4 (7.8); at depth 8 and 3e-4 (8.8) two of three agent seeds fell below the random
  policy (``experiments/vd4rl/README.md``).
* ``cpu_pixels_long``: ``cpu_pixels`` at depth 16 and Adam 3e-4 for 6,000 updates (about 35
  minutes): the configuration whose agent beat the random policy on every seed.
* ``tiny``: seconds (tests).

``dreamerv3`` after any preset (``rssm.py:cpu,dreamerv3``) switches on DreamerV3's options.
"""

from experiments.configs import common
from worldmodels.models import rssm


def get_config(preset: str = "default"):
  name, _, options = preset.partition(",")
  c = common.model_base_config("rssm", rssm.default_config())
  c.dataset.observation_keys = ("state",)  # the entries the model encodes and reconstructs
  c.steps_per_chunk = 100
  c.checkpoint_every = 1000
  if name == "paper":
    c.dataset.observation_keys = ("pixels",)
  elif name == "cpu":
    c.model.deter, c.model.hidden = 128, 128
    c.model.stoch_vars, c.model.stoch_classes = 16, 16
    c.model.mlp_layers = (256, 256)
    c.model.batch_size, c.model.sequence_length = 32, 32
    c.model.num_steps = 4_000
  elif name in ("cpu_pixels", "cpu_pixels_long"):
    c.dataset.observation_keys = ("pixels",)
    c.model.deter, c.model.hidden = 128, 128
    c.model.stoch_vars, c.model.stoch_classes = 16, 16
    c.model.mlp_layers = (128, 128)
    c.model.cnn_depth, c.model.cnn_layers = 8, 3
    c.model.batch_size, c.model.sequence_length = 16, 32
    c.model.num_steps = 5_000
    c.model.learning_rate = 1e-3  # fewer updates than the paper's: a larger Adam step
    if name == "cpu_pixels_long":
      c.model.cnn_depth, c.model.num_steps, c.model.learning_rate = 16, 6_000, 3e-4
  elif name == "tiny":
    c.model.deter, c.model.hidden = 16, 16
    c.model.stoch_vars, c.model.stoch_classes = 4, 4
    c.model.prior_heads = 3
    c.model.mlp_layers = (32, 32)
    c.model.cnn_depth, c.model.cnn_layers = 4, 2
    c.model.batch_size, c.model.sequence_length = 4, 8
    c.model.num_steps = 20
    c.steps_per_chunk = 10
    c.checkpoint_every = 10
    c.log_every_seconds = 0.0
  elif name != "default":
    raise ValueError(f"unknown rssm preset {name!r}; choose default, paper, cpu, cpu_pixels, "
                     "cpu_pixels_long or tiny (optionally ',dreamerv3')")
  if options == "dreamerv3":
    rssm.dreamerv3_options(c.model)
  elif options:
    raise ValueError(f"unknown rssm option {options!r} in preset {preset!r}; the only option is "
                     "dreamerv3")
  return c
