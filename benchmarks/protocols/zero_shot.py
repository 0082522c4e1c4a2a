"""The zero-shot protocol of AugWM: evaluate a fixed policy on a grid of shifted dynamics.

A policy trained on data from the default dynamics is run, without any further training, on
every setting (e.g. the 7 x 7 HalfCheetah mass x damping grid of
``benchmarks.shifts.perturbations.grid``); ``GridResult`` keeps every episode's return and
renders the paper's tables and figure-5 heatmaps, and ``GridResult.compare`` gives per-cell
differences with Welch t-tests (AugWM table 1 marks p < 0.05 gains over MOPO).

Policies are the stateful policies of ``worldmodels.training.acting`` (an agent, or a policy
built on one such as AugWM's test-time context): the episode runner resets their carry at each
episode, so a policy can adapt within an episode (AugWM's learned context fits its linear model
on the test episode so far) and never across episodes.

Seeds. ``returns`` is indexed ``[seed][cell][episode]``: one ``evaluate_grid`` call gives one
seed (one trained agent); ``merge_seeds`` stacks the results of agents trained with different
seeds. Statistics use "samples": with several seeds, each seed's mean return over its episodes
(the paper's mean ± std over 5 seeds); with one seed, the individual episode returns.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import textwrap
from typing import Any, Callable, Optional, Sequence

import dm_env
import jax
import numpy as np
from scipy import stats

from benchmarks.shifts.perturbations import Compose, DampingScale, MassScale, Perturbation
from worldmodels.io import atomic_text, atomic_write
from worldmodels.training.acting import (Episode, EpisodeRunner, FrameStack, StatefulPolicy,
                                         batch_policy, compile_policy, run_episodes)

EnvFactory = Callable[[int], dm_env.Environment]
_SIGNIFICANCE = 0.05


def grid_coordinates(perturbation: Perturbation) -> tuple[float, float] | None:
  """``(mass factor, damping factor)`` of a pure mass / damping perturbation, else None.

  A ``MassScale``, a ``DampingScale``, or a ``Compose`` of at most one of each; a missing
  factor is 1.
  """
  parts = perturbation.perturbations if isinstance(perturbation, Compose) else (perturbation,)
  factors = {MassScale: [], DampingScale: []}
  for part in parts:
    if type(part) not in factors:
      return None
    factors[type(part)].append(part.factor)
  if any(len(values) > 1 for values in factors.values()):
    return None
  return (factors[MassScale][0] if factors[MassScale] else 1.0,
          factors[DampingScale][0] if factors[DampingScale] else 1.0)


def _mean_std(samples: np.ndarray) -> tuple[float, float]:
  return float(np.mean(samples)), float(np.std(samples))


def _format_mean_std(samples: np.ndarray) -> str:
  mean, std = _mean_std(samples)
  return f"{mean:.1f} ± {std:.1f}"


def _annotation(value: float) -> str:
  """A heatmap cell's text: whole numbers for returns of 100 or more, else 3 digits."""
  return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def save_figure(figure, path: str) -> None:
  """Writes a figure as PNG atomically (a reader never sees half an image)."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png")
  atomic_write(path, buffer.getvalue())


def _draw_grid(axes, masses, dampings, means: np.ndarray, scale, cmap: str,
               signed: bool = False, ylabel: bool = True) -> None:
  """One grid on ``axes``: cells coloured on ``scale``, annotated, the training cell boxed
  (``ylabel``: name the damping axis; side-by-side grids name it once per row)."""
  from matplotlib import patches  # pylint: disable=import-outside-toplevel
  finite = means[np.isfinite(means)]
  low, high = scale if scale else ((finite.min(), finite.max()) if finite.size else (0, 1))
  image = axes.imshow(means, origin="lower", cmap=cmap, aspect="auto", vmin=low, vmax=high)
  middle = (low + high) / 2
  for row, column in np.ndindex(means.shape):
    value = means[row, column]
    if np.isfinite(value):
      text = f"{value:+.0f}" if signed and abs(value) >= 100 else (
          f"{value:+.3g}" if signed else _annotation(value))
      # White on the dark end of viridis and on both saturated ends of a diverging scale.
      dark = abs(value - middle) > 0.3 * (high - low) if signed else value <= middle
      axes.text(column, row, text, ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
  if 1.0 in masses and 1.0 in dampings:
    axes.add_patch(patches.Rectangle(
        (masses.index(1.0) - 0.5, dampings.index(1.0) - 0.5), 1, 1, fill=False,
        edgecolor="red", linewidth=2.0))
  axes.set_xticks(range(len(masses)), [f"{mass:g}x" for mass in masses])
  axes.set_yticks(range(len(dampings)), [f"{damping:g}x" for damping in dampings])
  axes.set_xlabel("mass (x default)")
  if ylabel:
    axes.set_ylabel("damping (x default)")
  del image


def shared_scale(results: Sequence["GridResult"]) -> tuple[float, float]:
  """``(low, high)`` of every cell mean of ``results``: one colour scale for all of them."""
  values = np.concatenate([r.cell_means()[np.isfinite(r.cell_means())] for r in results])
  return float(values.min()), float(values.max())


def overview_figure(results: dict, path: str, title: str, baseline: str | None = None) -> None:
  """All agents' grids side by side on one colour scale and, below, each one's per-cell
  difference to ``baseline`` (a diverging scale centred on 0), as one PNG.

  Args:
    results: row name -> GridResult on the same grid.
    path: the PNG to write (atomically).
    title: the figure's title.
    baseline: the row the differences are to (None: no second row).
  """
  plt = _pyplot()
  names = list(results)
  first = results[names[0]]
  masses, dampings, _ = first._grid_means()  # pylint: disable=protected-access
  scale = shared_scale(list(results.values()))
  rows = 2 if baseline in results and len(names) > 1 else 1
  cell = 0.55
  figure, axes = plt.subplots(rows, len(names), squeeze=False, dpi=130, layout="constrained",
                              figsize=(1.6 + len(names) * (0.7 + cell * len(masses)),
                                       1.0 + rows * (1.2 + cell * len(dampings))))
  for column, name in enumerate(names):
    _draw_grid(axes[0, column], masses, dampings, results[name].cell_means(), scale, "viridis",
               ylabel=column == 0)
    axes[0, column].set_title("\n".join(textwrap.wrap(name, 22, break_on_hyphens=False)),
                              fontsize=8)
  figure.colorbar(axes[0, 0].images[0], ax=list(axes[0]), label="return (one scale)",
                  shrink=0.9)
  if rows == 2:
    base = results[baseline].cell_means()
    differences = {n: results[n].cell_means() - base for n in names if n != baseline}
    bound = max(float(np.nanmax(np.abs(d))) for d in differences.values()) or 1.0
    for column, name in enumerate(names):
      if name == baseline:
        axes[1, column].axis("off")
        axes[1, column].text(0.5, 0.5, f"this row:\neach agent\nminus {baseline},\ncell by cell",
                             ha="center", va="center", fontsize=8,
                             transform=axes[1, column].transAxes)
        continue
      _draw_grid(axes[1, column], masses, dampings, differences[name], (-bound, bound),
                 "RdBu", signed=True, ylabel=column == (1 if names[0] == baseline else 0))
      axes[1, column].set_title("\n".join(textwrap.wrap(
          f"{name} minus {baseline}", 22, break_on_hyphens=False)), fontsize=7)
    figure.colorbar(next(a.images[0] for a in axes[1] if a.images), ax=list(axes[1]),
                    label=f"return minus {baseline}", shrink=0.9)
  figure.suptitle("\n".join(textwrap.wrap(
      f"{title}. Red box: the training dynamics. {first.samples_label}.", 110,
      break_on_hyphens=False)), fontsize=9)
  save_figure(figure, path)
  plt.close(figure)


def _welch_p_value(a: np.ndarray, b: np.ndarray) -> float:
  """Two-sided Welch t-test p-value; nan when a side has < 2 samples or neither varies."""
  if len(a) < 2 or len(b) < 2:
    return math.nan
  return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


@dataclasses.dataclass(frozen=True)
class GridResult:
  """Returns of a policy on a list of settings, for one or more training seeds.

  Attributes:
    settings: the settings' names (``Perturbation.name``), one per cell.
    coordinates: per cell, ``(mass factor, damping factor)`` or None for settings that are
      not on a mass x damping grid.
    returns: float ``[seeds, cells, episodes]`` episode returns.
    seeds: the seed label of each row of ``returns``.
  """

  settings: tuple[str, ...]
  coordinates: tuple[tuple[float, float] | None, ...]
  returns: np.ndarray
  seeds: tuple[int, ...]

  def __post_init__(self):
    returns = np.asarray(self.returns, np.float64)
    if returns.ndim != 3 or returns.shape[:2] != (len(self.seeds), len(self.settings)):
      raise ValueError(f"returns must be [seeds={len(self.seeds)}, cells={len(self.settings)}, "
                       f"episodes], got shape {returns.shape}.")
    if len(self.coordinates) != len(self.settings):
      raise ValueError("One coordinate (or None) per setting is needed.")
    object.__setattr__(self, "returns", returns)

  @property
  def is_grid(self) -> bool:
    """Whether the cells are distinct points of a mass x damping grid (table and heatmap)."""
    return (all(coordinate is not None for coordinate in self.coordinates)
            and len(set(self.coordinates)) == len(self.coordinates))

  def cell_samples(self, cell: int) -> np.ndarray:
    """Per-seed mean returns of ``cell`` when several seeds, else its episode returns."""
    if len(self.seeds) > 1:
      return self.returns[:, cell].mean(axis=1)
    return self.returns[0, cell]

  def overall_samples(self) -> np.ndarray:
    """Per-seed means over all cells and episodes when several seeds; with one seed, per
    episode index the mean over cells."""
    if len(self.seeds) > 1:
      return self.returns.mean(axis=(1, 2))
    return self.returns[0].mean(axis=0)

  def overall_mean_std(self) -> tuple[float, float]:
    """Mean and std of ``overall_samples()`` (the paper's table 1 entry)."""
    return _mean_std(self.overall_samples())

  @property
  def samples_label(self) -> str:
    """What the ± of this result's tables is over: seeds, or the episodes of its one seed."""
    if len(self.seeds) > 1:
      return f"mean ± std over {len(self.seeds)} seeds"
    return f"1 seed: mean ± std over its {self.returns.shape[2]} episodes per cell"

  def returns_table(self) -> str:
    """Markdown "mean ± std" per cell: rows damping, columns mass for a grid, else one row per
    setting; then the overall mean ± std and what the ± is over."""
    overall = (f"Overall: {_format_mean_std(self.overall_samples())} ({self.samples_label}).")
    return "\n".join(self.markdown_table(lambda cell: _format_mean_std(self.cell_samples(cell)))
                     + ["", overall])

  def cell_means(self) -> np.ndarray:
    """``[damping, mass]`` mean return of every grid cell (nan where the grid has no cell)."""
    return self._grid_means()[2]

  def heatmap(self, path: str, title: str, scale: tuple[float, float] | None = None) -> None:
    """Saves a PNG heatmap of the cell means, laid out as AugWM figure 5.

    Mass on x and damping on y as multiples of the default (both increasing away from the
    origin), each cell annotated with its mean return, the training dynamics (1x, 1x)
    outlined in red and explained under the plot.

    Args:
      path: the PNG to write (atomically).
      title: the figure's title (wrapped at word boundaries).
      scale: ``(low, high)`` of the colour scale, shared by figures meant to be compared
        side by side (default: this result's own range, stated on the colour bar).

    Raises:
      ValueError: the settings are not a mass x damping grid.
    """
    plt = _pyplot()
    masses, dampings, means = self._grid_means()
    figure, axes = plt.subplots(figsize=(1.6 + 0.9 * len(masses), 1.3 + 0.8 * len(dampings)),
                                dpi=150)
    _draw_grid(axes, masses, dampings, means, scale, "viridis")
    width_chars = max(28, int(12 * (1.6 + 0.9 * len(masses))))  # ~12 characters per inch
    axes.set_title("\n".join(textwrap.wrap(title, width_chars, break_on_hyphens=False)),
                   fontsize=9)
    label = "return" + (" (scale shared across agents)" if scale else "")
    figure.colorbar(axes.images[0], ax=axes, label=label)
    caption = textwrap.wrap(f"Red box: the training dynamics (1x mass, 1x damping). "
                            f"{self.samples_label}.", int(width_chars * 1.4),
                            break_on_hyphens=False)  # 6 pt: ~1.4x the 9 pt title's characters
    figure.text(0.01, 0.01, "\n".join(caption), fontsize=6, va="bottom")
    figure.tight_layout(rect=(0, 0.02 + 0.025 * len(caption), 1, 1))
    save_figure(figure, path)
    plt.close(figure)

  def normalised_scores(self, low: float, high: float) -> np.ndarray:
    """``[seeds, cells]``: each seed's mean return per cell, mapped so that ``low`` is 0 and
    ``high`` is 1 (e.g. D4RL's random and expert references)."""
    if not high > low:
      raise ValueError(f"normalisation needs high > low, got {low} and {high}")
    return (self.returns.mean(axis=2) - low) / (high - low)

  def compare(self, other: GridResult) -> Comparison:
    """Per-cell ``self - other`` mean differences and Welch t-tests on the samples.

    The t-test (``scipy.stats.ttest_ind(equal_var=False)``, two-sided) runs on per-seed means
    when both results have several seeds, otherwise on episode returns (``cell_samples``).

    Raises:
      ValueError: the results cover different settings.
    """
    if self.settings != other.settings:
      raise ValueError("compare needs results on the same settings, in the same order.")
    differences, p_values = [], []
    for cell in range(len(self.settings)):
      mine, theirs = self.cell_samples(cell), other.cell_samples(cell)
      differences.append(float(np.mean(mine) - np.mean(theirs)))
      p_values.append(_welch_p_value(mine, theirs))
    mine, theirs = self.overall_samples(), other.overall_samples()
    return Comparison(self, np.asarray(differences), np.asarray(p_values),
                      float(np.mean(mine) - np.mean(theirs)), _welch_p_value(mine, theirs))

  def save(self, path: str) -> None:
    """Writes the result as JSON (``load`` reads it back)."""
    with atomic_text(path) as file:
      json.dump({"settings": list(self.settings),
                 "coordinates": [None if c is None else list(c) for c in self.coordinates],
                 "returns": self.returns.tolist(), "seeds": list(self.seeds)}, file, indent=1)

  @classmethod
  def load(cls, path: str) -> GridResult:
    """Reads a result written by ``save``."""
    with open(path) as file:
      content = json.load(file)
    return cls(tuple(content["settings"]),
               tuple(None if c is None else (float(c[0]), float(c[1]))
                     for c in content["coordinates"]),
               np.asarray(content["returns"], np.float64), tuple(content["seeds"]))

  def _grid_means(self) -> tuple[list[float], list[float], np.ndarray]:
    """Sorted mass and damping factors and the ``[damping, mass]`` cell means (nan where a
    grid point has no cell)."""
    if not self.is_grid:
      raise ValueError("The settings are not a mass x damping grid.")
    masses = sorted({mass for mass, _ in self.coordinates})
    dampings = sorted({damping for _, damping in self.coordinates})
    means = np.full((len(dampings), len(masses)), np.nan)
    for cell, (mass, damping) in enumerate(self.coordinates):
      means[dampings.index(damping), masses.index(mass)] = self.cell_samples(cell).mean()
    return masses, dampings, means

  def markdown_table(self, cell_text: Callable[[int], str]) -> list[str]:
    """Markdown table lines with ``cell_text(cell)`` in each cell: rows damping and columns
    mass when ``is_grid``, else one row per setting."""
    if not self.is_grid:
      lines = ["| setting | value |", "| --- | --- |"]
      return lines + [f"| {name} | {cell_text(cell)} |"
                      for cell, name in enumerate(self.settings)]
    masses = sorted({mass for mass, _ in self.coordinates})
    dampings = sorted({damping for _, damping in self.coordinates})
    cells = {coordinate: cell for cell, coordinate in enumerate(self.coordinates)}
    lines = ["| damping \\ mass | " + " | ".join(f"{mass:g}" for mass in masses) + " |",
             "| --- |" + " --- |" * len(masses)]
    for damping in dampings:
      texts = [cell_text(cells[(mass, damping)]) if (mass, damping) in cells else ""
               for mass in masses]
      lines.append(f"| {damping:g} | " + " | ".join(texts) + " |")
    return lines


@dataclasses.dataclass(frozen=True)
class Comparison:
  """``GridResult.compare``: per-cell differences of mean returns and Welch p-values.

  Attributes:
    result: the first result (its layout is reused by ``table``).
    differences: ``[cells]`` mean return of the first minus the second.
    p_values: ``[cells]`` two-sided Welch t-test p-values (nan when undefined: fewer than 2
      samples on a side, or no variance at all).
    overall_difference: difference of the overall means.
    overall_p_value: Welch p-value on the overall samples.
  """

  result: GridResult
  differences: np.ndarray
  p_values: np.ndarray
  overall_difference: float
  overall_p_value: float

  def table(self) -> str:
    """Markdown "difference (p)" per cell, ★ marking p < 0.05, in the results' layout."""

    def text(cell: int) -> str:
      return _difference_text(self.differences[cell], self.p_values[cell])

    overall = f"Overall: {_difference_text(self.overall_difference, self.overall_p_value)}"
    return "\n".join(self.result.markdown_table(text) + ["", overall])


def _difference_text(difference: float, p_value: float) -> str:
  star = " ★" if p_value < _SIGNIFICANCE else ""
  return f"{difference:+.1f} (p={p_value:.3f}){star}"


def _stacked(policy: StatefulPolicy, env: dm_env.Environment) -> dm_env.Environment:
  stacks = getattr(getattr(policy, "spec", None), "frame_stack", {})
  return FrameStack(env, stacks) if stacks else env


def _runner(policy: StatefulPolicy, env: dm_env.Environment, compiled) -> EpisodeRunner:
  return EpisodeRunner(_stacked(policy, env), policy, eval_mode=True, compiled=compiled)


def episode_rewards(policy: StatefulPolicy, state: Any, env: dm_env.Environment,
                    seed: int) -> np.ndarray:
  """Per-step rewards ``[T]`` of one deterministic episode of ``policy`` (agent state
  ``state``) in ``env``, keyed ``PRNGKey(seed)``: e.g. to follow a mid-episode change of
  dynamics."""
  return _runner(policy, env, None).run_episode(state, jax.random.PRNGKey(seed)).rewards


def evaluate_grid(policy: StatefulPolicy, state: Any,
                  env_factory_for: Callable[[Perturbation], EnvFactory],
                  settings: Sequence[Perturbation], episodes: int, seed: int, *,
                  on_episode: Optional[Callable[[int, int, Episode], None]] = None
                  ) -> GridResult:
  """Runs ``policy`` for ``episodes`` deterministic episodes on every setting.

  Episode ``e`` of every cell uses env seed ``seed + e`` and key ``PRNGKey(seed + e)``, so
  cells differ only by their dynamics (common random numbers). A policy that batches
  (``worldmodels.training.acting.batch_policy``) runs every cell and episode at once, with one
  policy call per step; others run episode by episode.

  Args:
    policy: the policy under test (an agent, or e.g. ``AugWMPolicy``).
    state: the agent's trained state.
    env_factory_for: ``setting -> (env seed -> env)``, e.g. ``lambda setting:
      make_shifted_env_factory(make_env_factory("walker-walk"), setting)``.
    settings: the perturbations, e.g. ``grid(WALKER_GRID_FACTORS, WALKER_GRID_FACTORS)``.
    episodes: episodes per cell.
    seed: first env seed; also the result's seed label.
    on_episode: called with ``(cell, episode, Episode)`` after each episode (e.g. to read
      the final carry of a context model).

  Returns:
    A one-seed ``GridResult``.
  """
  if episodes < 1:
    raise ValueError(f"episodes must be >= 1, got {episodes}.")
  returns = np.zeros((1, len(settings), episodes))
  pairs = [(cell, episode) for cell in range(len(settings)) for episode in range(episodes)]
  calls = batch_policy(policy)
  if calls is not None:  # every cell and episode at once, one policy call per step
    factories = [env_factory_for(setting) for setting in settings]
    envs = [_stacked(policy, factories[cell](seed + episode)) for cell, episode in pairs]
    results = run_episodes(envs, policy, state,
                           [jax.random.PRNGKey(seed + episode) for _, episode in pairs],
                           calls=calls)
    for env in envs:
      env.close()
  else:
    compiled, results = compile_policy(policy), []
    for cell, episode in pairs:
      runner = _runner(policy, env_factory_for(settings[cell])(seed + episode), compiled)
      results.append(runner.run_episode(state, jax.random.PRNGKey(seed + episode)))
      runner.close()
  for (cell, episode), result in zip(pairs, results):
    returns[0, cell, episode] = result.total
    if on_episode is not None:
      on_episode(cell, episode, result)
  return GridResult(tuple(setting.name for setting in settings),
                    tuple(grid_coordinates(setting) for setting in settings), returns, (seed,))


@dataclasses.dataclass(frozen=True)
class Aggregate:
  """One aggregate over cells with its stratified-bootstrap confidence interval."""

  point: float
  low: float
  high: float

  def text(self) -> str:
    return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}]"


def interquartile_mean(scores: np.ndarray) -> float:
  """IQM: the mean of the middle 50% of all ``[runs, cells]`` scores (rliable's IQM)."""
  return float(stats.trim_mean(np.ravel(scores), 0.25))


def optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> float:
  """How far the scores fall short of ``threshold`` on average, scores above it counting as
  ``threshold`` (rliable's optimality gap)."""
  return float(threshold - np.minimum(np.ravel(scores), threshold).mean())


def aggregate_scores(scores: np.ndarray, *, threshold: float = 1.0, confidence: float = 0.95,
                     resamples: int = 2000, seed: int = 0) -> dict[str, Aggregate]:
  """rliable-style aggregates of normalised scores over cells, with stratified-bootstrap CIs.

  The bootstrap is stratified by cell: each resample draws, for every cell independently, as
  many runs as it has, with replacement (``scipy.stats.bootstrap`` with one sample per cell),
  then recomputes the aggregate over all cells; the interval is its percentile interval.

  Args:
    scores: ``[runs, cells]`` normalised scores (runs: training seeds).
    threshold: the optimality gap's target (1: the normalisation's expert).
    confidence: of the intervals.
    resamples: bootstrap resamples.
    seed: of the resampling.

  Returns:
    ``{"IQM": ..., "Optimality gap": ...}``.

  Raises:
    ValueError: fewer than 2 runs (no spread to resample) or a non-2-D array.
  """
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 2 or scores.shape[0] < 2:
    raise ValueError(f"aggregates need [runs >= 2, cells] scores, got shape {scores.shape}")
  columns = tuple(scores[:, cell] for cell in range(scores.shape[1]))
  out = {}
  for name, statistic in (("IQM", interquartile_mean),
                          ("Optimality gap", lambda x: optimality_gap(x, threshold))):
    interval = stats.bootstrap(columns, lambda *cells: statistic(np.stack(cells, axis=-1)),
                               vectorized=False, n_resamples=resamples,
                               confidence_level=confidence, method="percentile",
                               random_state=np.random.default_rng(seed)).confidence_interval
    out[name] = Aggregate(statistic(scores), float(interval.low), float(interval.high))
  return out


def merge_seeds(results: Sequence[GridResult]) -> GridResult:
  """Stacks results of different seeds (same settings and episode counts) into one.

  Raises:
    ValueError: the results' settings or episode counts differ.
  """
  first = results[0]
  if any(result.settings != first.settings for result in results):
    raise ValueError("merge_seeds needs results on the same settings, in the same order.")
  if len({result.returns.shape[2] for result in results}) != 1:
    raise ValueError("merge_seeds needs the same number of episodes per cell.")
  return GridResult(first.settings, first.coordinates,
                    np.concatenate([result.returns for result in results]),
                    tuple(seed for result in results for seed in result.seeds))
