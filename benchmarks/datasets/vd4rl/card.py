"""Dataset cards, and how a dataset is finished: completion checks and atomic writes."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import ml_collections

from worldmodels.data import DatasetError, read_metadata
from worldmodels.data.stats import format_statistics_table
from worldmodels.io import atomic_write, fault_point
from worldmodels.provenance import refuse_unless_same

from benchmarks.datasets.vd4rl.paths import CARD_FILE, PARTIAL_SUFFIX


def generation_fingerprint(config: ml_collections.ConfigDict, kind: str) -> dict:
  """The settings that decide dataset ``kind`` of a generation config (scale, seed and every
  ``--set`` included): what a finished dataset is checked against before it is reused."""
  c = config.to_dict()
  common = {k: c[k] for k in ("task", "seed", "action_repeat", "episode_length",
                              "episodes_per_shard")}
  if c.get("scenario") is not None:  # MrCoM's scenarios (V-D4RL configs have none)
    common["scenario"] = c["scenario"]
  if kind == "random":
    return {"kind": kind, **common, "size": c["sizes"]["random"]}
  learned = {**common, "sac": c["sac"], "behaviour": c["behaviour"]}
  if kind == "training_replay":  # the selection threshold decides datasets, not the run
    behaviour = {k: v for k, v in c["behaviour"].items()
                 if k not in ("medium_threshold", "medium_fraction_of_expert")}
    return {"kind": kind, **learned, "behaviour": behaviour}
  sizes = {"mixed": ["mixed"], "medexp": ["medium", "expert"]}.get(kind, [kind])
  out = {"kind": kind, **learned, "sizes": {k: c["sizes"][k] for k in sizes}}
  if kind != "mixed":
    out["stochastic_actions"] = c["stochastic_actions"]
  return out


def _is_complete(path: str, fingerprint: dict, legacy: dict | None = None) -> bool:
  """Whether a finished dataset made with ``fingerprint`` is at ``path`` (partial work lives
  under ``.partial``); ``legacy``: the recorded fingerprint rewritten to the current form
  (accepted when it then equals ``fingerprint``).

  Raises:
    FingerprintError: a finished dataset is there, made with other settings (e.g. another
      scale or seed); the message names what differs.
  """
  if not os.path.isdir(path):
    return False
  recorded = read_metadata(path)["extra"].get("fingerprint")
  if legacy is not None:
    recorded = legacy
  refuse_unless_same(path, recorded, json.loads(json.dumps(fingerprint)), "dataset",
                     "generate into another --root, or move it away")
  return True


def _finish(path: str) -> None:
  """Moves a finished ``<path>.partial`` dataset to ``path`` and writes its card."""
  fault_point("dataset.finish")
  os.replace(path + PARTIAL_SUFFIX, path)
  _write_card(path, read_metadata(path))


def _write_atomically(path: str, write: Callable[[str], Any]) -> None:
  """Runs ``write(path)`` (a ``write_dataset``, which builds under ``.partial`` and renames)
  and writes the card. An existing ``path`` is never touched."""
  if os.path.exists(path):
    raise DatasetError(path, "already exists; datasets are never overwritten.")
  write(path)
  _write_card(path, read_metadata(path))


def dataset_card(metadata: dict) -> str:
  """The Markdown dataset card of a generated dataset (from its metadata)."""
  card = metadata["extra"].get("card", {})
  stats = metadata["statistics"]
  scenario = f" / {card['scenario']['name']}" if "scenario" in card else ""
  lines = [f"# {card.get('task', metadata['task'])}{scenario} / {card.get('kind', '?')} / "
           f"{card.get('observation', 'state')}", ""]
  fields = [
      ("Task", metadata["task"]), ("Behaviour", card.get("policy", metadata["behaviour_policy"])),
      ("Seed", metadata["seed"]), ("Action repeat", metadata["action_repeat"]),
      ("Transitions", f"{metadata['num_transitions']:,}"),
      ("Episodes", f"{metadata['num_episodes']:,}"),
      ("Observations", ", ".join(f"{k} {v['dtype']}{v['shape']}"
                                 for k, v in metadata["observation_spec"].items())),
      ("Actions", "sampled from the actor's Gaussian" if card.get("stochastic_actions", True)
       else "the actor's mode (deterministic)"),
      ("Code version", card.get("code_version", "unknown")),
      ("Generator", card.get("generator", "-")),
  ]
  for name in ("medium_policy", "expert_policy"):
    if name in card:
      row = card[name]
      fields.append((name.replace("_", " ").capitalize(),
                     f"snapshot at step {row['step']:,} ({row['frames']:,} frames), evaluated "
                     f"return {row['return_mean']:.1f} ± {row['return_std']:.1f}"))
  if "scenario" in card:
    sc = card["scenario"]
    fields.append(("Scenario", f"{sc['name']}: torso length x{sc['torso_length']:.3f}, size / "
                               f"mass x{sc['torso_size']:.3f}; target speed rho x v_max = "
                               f"{sc['rho']:.3f} x {sc['v_max']:.3f}; observation function "
                               f"{sc['observation']} (MrCoM, benchmarks.scenarios)"))
  if "selection_rule" in card:
    fields.append(("Selection rule", card["selection_rule"]))
  if "differences_from_d4rl" in card:
    fields.append(("Differences from D4RL", card["differences_from_d4rl"]))
  if "rendered_from" in card:
    fields.append(("Pixels", f"{card['image_size']}x{card['image_size']} RGB, camera "
                             f"{card['camera_id']}, rendered from {card['rendered_from']}"))
  lines += [f"- **{name}**: {value}" for name, value in fields]
  lines += ["", "## Return statistics (V-D4RL appendix A layout)", "",
            format_statistics_table(stats, f"{card.get('kind', metadata['task'])}"), ""]
  return "\n".join(lines)


def _write_card(path: str, metadata: dict) -> None:
  atomic_write(os.path.join(path, CARD_FILE), dataset_card(metadata))
