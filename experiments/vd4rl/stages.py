"""Stages shared by the V-D4RL experiments (``offline_dv2.py``, ``table1.py``); no flags here,
so each launcher defines its own."""

from __future__ import annotations

import json
import os
from typing import List, Optional

from experiments import train_model as model_launcher
from experiments.configs import rssm as rssm_configs
from worldmodels import provenance
from worldmodels.data.source import DataSource


def paper_lambda3_kinds(task: str) -> List[str]:
  """V-D4RL appendix C.1's exceptions to lambda 10 on ``task``: both random datasets and
  walker-walk mixed (trained here with lambda 3)."""
  return ["random", "mixed"] if task == "walker-walk" else ["random"]


def rssm_artifact(name: str, preset: str, source: DataSource, model_path: str,
                  data_root: Optional[str], fresh_hint: str) -> str:
  """The RSSM artifact of ``rssm.py:<preset>`` on catalog dataset ``name`` at ``model_path``:
  reused when it is the model this call would train (else a ``FingerprintError`` ending with
  ``fresh_hint``), trained there when missing.

  Args:
    name: the dataset's catalog name (recorded in the artifact's provenance).
    preset: an ``experiments/configs/rssm.py`` preset.
    source: the loaded dataset, with the preset's observation keys.
    model_path: where the artifact lives.
    data_root: the catalog root (None: ``$WORLDMODELS_DATA``).
    fresh_hint: how to get a fresh artifact instead of the refused one.
  """
  model_config = rssm_configs.get_config(preset)
  model_config.dataset.path, model_config.dataset.root = name, data_root
  model_config.output = model_path
  if os.path.exists(model_path):  # reused only if it is the model this run would train
    with open(os.path.join(model_path, "model.json")) as f:
      recorded = json.load(f).get("provenance", {}).get("fingerprint")
    provenance.refuse_unless_same(model_path, recorded, model_launcher.model_fingerprint(
        model_config, source), "model artifact", fresh_hint)
  else:
    print(f"training the RSSM on {name} -> {model_path}", flush=True)
    model_launcher.run(model_config, source)
  return model_path
