r"""The README's main job (``make demo``): AugWM vs MOPO at small scale, zero-shot.

dataset -> world model -> MOPO and AugWM -> zero-shot mass x damping grid, on cheetah-run:

1. Dataset: the replay of online SAC (40,000 env steps, action repeat 2), an episodic dataset.
2. World model: a 7-member probabilistic ensemble (4 x 200), at most 100 epochs (a 20-epoch
   model had holdout MSE 0.50 against 0.30, and its MOPO / AugWM scored 23 / 2).
3. Agents: MOPO and AugWM (DAS augmentation, context appended to actor and critic), 20,000
   updates each, one seed, penalty lambda = 0.1: the lambda sweep's choice on this dataset
   (`experiments/mopo/lambda_sweep/cheetah_run_sac_replay/`; table 3's lambda = 1 was tuned for
   D4RL HalfCheetah, whose rewards are about 4-10 per step; the demo's model rollouts pay about
   0.15) (the `demo` sizes of
   `experiments/configs/zero_shot.py`).
4. Evaluation in the real environment: unshifted returns, then a 3 x 3 grid of mass x damping
   factors {0.5, 1.0, 1.5}; AugWM with the default context (z = 1) and with the test-time
   context of its online linear model (algorithm 2).
5. ``RESULTS.md``, one heatmap per agent, an overview figure and per-cell differences, in
   ``<workdir>/results/demo`` (``--publish``: the committed ``experiments/demo/``).

About 10 minutes on 2 CPU cores (8 min 58 s measured at 3f05e6b). Every stage resumes from its checkpoints when rerun with the same
``--workdir``. The same program at larger sizes is ``experiments.augwm.run`` (same flags).

  python -m experiments.demo [--task=cheetah-run] [--workdir=runs/demo] [--tiny]
"""

from __future__ import annotations

import os

from absl import flags

from experiments import cli
from experiments import zero_shot
from experiments.augwm import run as augwm_run

if __name__ == "__main__":
  _COMMON = zero_shot.CommonFlags(
      os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo"), sizes="demo",
      workdir="runs/demo", seeds=1)
  _NO_CONTEXT = flags.DEFINE_list(
      "no_context_augmentations", [], "Also train these augmentations without context "
      "(rad, rans, das).")
  flags.adopt_module_key_flags(zero_shot)  # --help lists the shared flags
  cli.run(lambda argv: augwm_run.main(argv, _COMMON, _NO_CONTEXT, program="experiments.demo"))
