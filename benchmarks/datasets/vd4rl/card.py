"""Dataset cards, and how a dataset is finished: completion checks and atomic writes."""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from worldmodels.data import DatasetError, read_metadata
from worldmodels.data.stats import format_statistics_table

from benchmarks.datasets.vd4rl.paths import CARD_FILE, PARTIAL_SUFFIX


def _is_complete(path: str) -> bool:
  """A finished dataset: the directory exists (partial work lives under ``.partial``)."""
  return os.path.isdir(path) and os.path.isfile(os.path.join(path, "metadata.json"))


def _finish(path: str) -> None:
  """Moves a finished ``<path>.partial`` dataset to ``path`` and writes its card."""
  os.replace(path + PARTIAL_SUFFIX, path)
  _write_card(path, read_metadata(path))


def _write_atomically(path: str, write: Callable[[str], Any]) -> None:
  """Runs ``write(tmp)`` on a fresh temporary directory, then renames it to ``path``.

  Only our own ``.partial`` directory is ever removed; an existing ``path`` is never touched.
  """
  if os.path.exists(path):
    raise DatasetError(path, "already exists; datasets are never overwritten.")
  temp = path + PARTIAL_SUFFIX
  shutil.rmtree(temp, ignore_errors=True)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write(temp)
  os.replace(temp, path)
  _write_card(path, read_metadata(path))


def dataset_card(metadata: dict) -> str:
  """The Markdown dataset card of a generated dataset (from its metadata)."""
  card = metadata["extra"].get("card", {})
  stats = metadata["statistics"]
  lines = [f"# {card.get('task', metadata['task'])} / {card.get('kind', '?')} / "
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
  if "selection_rule" in card:
    fields.append(("Selection rule", card["selection_rule"]))
  if "rendered_from" in card:
    fields.append(("Pixels", f"{card['image_size']}x{card['image_size']} RGB, camera "
                             f"{card['camera_id']}, rendered from {card['rendered_from']}"))
  lines += [f"- **{name}**: {value}" for name, value in fields]
  lines += ["", "## Return statistics (V-D4RL appendix A layout)", "",
            format_statistics_table(stats, f"{card.get('kind', metadata['task'])}"), ""]
  return "\n".join(lines)


def _write_card(path: str, metadata: dict) -> None:
  with open(os.path.join(path, CARD_FILE), "w", encoding="utf-8") as f:
    f.write(dataset_card(metadata))
