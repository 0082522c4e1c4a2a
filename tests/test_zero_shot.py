"""Tests for benchmarks.protocols.zero_shot: grid evaluation, tables, heatmaps, comparisons."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from benchmarks.envs import make_env_factory  # noqa: E402
from benchmarks.protocols import (GridResult, evaluate_grid, grid_coordinates,  # noqa: E402
                                  merge_seeds)
from benchmarks.shifts import (CrippledActuators, MassScale, grid,  # noqa: E402
                               make_shifted_env_factory)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ConstantPolicy:
  """Always the same action (a host policy); records the seed of each episode's key and counts
  its steps, its carry counting the steps of the episode."""

  runs_on_host = True

  def __init__(self, action: np.ndarray):
    self.action = action
    self.resets: list[int] = []
    self.steps = 0

  def policy_init(self, key):
    self.resets.append(int(np.asarray(key)[-1]))  # PRNGKey(seed) = [0, seed]
    return 0

  def policy(self, state, carry, observation, key, eval_mode):
    assert observation["state"].dtype == np.float32 and eval_mode and state is None
    self.steps += 1
    return self.action, carry + 1


def _walker_factory_for(setting):
  return make_shifted_env_factory(make_env_factory("walker-walk", episode_length=20), setting)


@pytest.fixture(scope="module")
def settings():
  return grid((0.5, 1.0), (1.0, 1.5))


@pytest.fixture(scope="module")
def zero_results(settings):
  """Zero-action returns for seeds 0 and 1 (one episode per cell each)."""
  return [evaluate_grid(ConstantPolicy(np.zeros(6, np.float32)), None, _walker_factory_for, settings,
                        episodes=1, seed=seed) for seed in (0, 1)]


def test_evaluate_grid_runs_every_cell(settings):
  policy = ConstantPolicy(np.zeros(6, np.float32))
  carries = []
  result = evaluate_grid(policy, None, _walker_factory_for, settings, episodes=2, seed=5,
                         on_episode=lambda cell, episode, out: carries.append(
                             (cell, episode, out.carry)))
  assert result.returns.shape == (1, 4, 2) and result.seeds == (5,)
  assert policy.resets == [5, 6] * 4 and policy.steps == 4 * 2 * 20
  assert carries == [(cell, episode, 20) for cell in range(4) for episode in range(2)]
  assert result.settings == tuple(setting.name for setting in settings)
  assert result.coordinates == ((0.5, 1.0), (1.0, 1.0), (0.5, 1.5), (1.0, 1.5))
  assert np.isfinite(result.returns).all() and (result.returns > 0).all()


class LinearPolicy:
  """A pure-JAX policy ``a = tanh(W s)`` (it batches); ``runs_on_host`` turns batching off."""

  def __init__(self, runs_on_host: bool):
    self.runs_on_host = runs_on_host
    self.w = np.random.default_rng(0).normal(size=(24, 6)).astype(np.float32) * 0.3

  def policy_init(self, key):
    return jnp.zeros((), jnp.int32)

  def policy(self, state, carry, observation, key, eval_mode):
    return jnp.tanh(jnp.asarray(observation["state"]) @ self.w), carry + 1


def test_batched_grid_evaluation_matches_episode_by_episode(settings):
  """All cells and episodes in one batch give the returns of running them one by one."""
  carries = []
  batched = evaluate_grid(LinearPolicy(False), None, _walker_factory_for, settings,
                          episodes=2, seed=3,
                          on_episode=lambda cell, episode, out: carries.append(int(out.carry)))
  alone = evaluate_grid(LinearPolicy(True), None, _walker_factory_for, settings, episodes=2,
                        seed=3)
  # Walker's contacts amplify the rounding of a batched matmul (about 1e-3 after 20 steps);
  # cells and episodes differ by far more (a mix-up would show).
  np.testing.assert_allclose(batched.returns, alone.returns, rtol=1e-2)
  assert np.ptp(batched.returns) / batched.returns.mean() > 0.3 and carries == [20] * 8


def test_returns_table_and_heatmap(zero_results, tmp_path):
  result = zero_results[0]
  table = result.returns_table()
  lines = table.splitlines()
  assert lines[0] == "| damping \\ mass | 0.5 | 1 |"
  assert lines[2].startswith("| 1 | ") and lines[3].startswith("| 1.5 | ")
  assert lines[2].count("±") == 2 and lines[-1].startswith("Overall: ")
  path = tmp_path / "heatmap.png"
  result.heatmap(str(path), "walker-walk, zero actions")
  content = path.read_bytes()
  assert content.startswith(_PNG_SIGNATURE) and len(content) > 5000


def test_several_seeds_use_per_seed_means(zero_results):
  merged = merge_seeds(zero_results)
  assert merged.returns.shape == (2, 4, 1) and merged.seeds == (0, 1)
  np.testing.assert_allclose(merged.cell_samples(0), merged.returns[:, 0, 0])
  mean, std = merged.overall_mean_std()
  np.testing.assert_allclose(mean, merged.returns.mean())
  np.testing.assert_allclose(std, merged.returns.mean(axis=(1, 2)).std())


def test_compare_gives_differences_and_welch_p_values(zero_results, settings):
  zeros = merge_seeds(zero_results)
  pushed = merge_seeds([
      evaluate_grid(ConstantPolicy(np.full(6, 0.5, np.float32)), None, _walker_factory_for,
                    settings, episodes=1, seed=seed) for seed in (0, 1)])
  comparison = pushed.compare(zeros)
  np.testing.assert_allclose(comparison.differences,
                             pushed.returns.mean(axis=(0, 2)) - zeros.returns.mean(axis=(0, 2)))
  assert all(0.0 <= p <= 1.0 for p in comparison.p_values)
  assert 0.0 <= comparison.overall_p_value <= 1.0
  table = comparison.table()
  assert table.splitlines()[0] == "| damping \\ mass | 0.5 | 1 |" and "(p=" in table
  with pytest.raises(ValueError):
    pushed.compare(GridResult(("other",), (None,), np.zeros((1, 1, 1)), (0,)))


def test_single_seed_p_value_is_over_episodes_and_undefined_for_one_episode(zero_results):
  single = zero_results[0]
  assert math.isnan(single.compare(zero_results[1]).p_values[0])
  many = GridResult(("a",), (None,), np.array([[[1.0, 2.0, 3.0]]]), (0,))
  other = GridResult(("a",), (None,), np.array([[[7.0, 8.0, 9.5]]]), (0,))
  p_value = many.compare(other).p_values[0]
  assert 0.0 < p_value < 0.05


def test_save_and_load_round_trip(zero_results, tmp_path):
  merged = merge_seeds(zero_results)
  path = tmp_path / "result.json"
  merged.save(str(path))
  loaded = GridResult.load(str(path))
  assert loaded.settings == merged.settings and loaded.coordinates == merged.coordinates
  assert loaded.seeds == merged.seeds
  np.testing.assert_array_equal(loaded.returns, merged.returns)


def test_non_grid_settings_get_a_list_table(tmp_path):
  result = evaluate_grid(ConstantPolicy(np.zeros(6, np.float32)), None, _walker_factory_for,
                         [CrippledActuators((0,)), MassScale(1.25)], episodes=1, seed=0)
  assert result.coordinates == (None, (1.25, 1.0)) and not result.is_grid
  assert "| crippled:0 | " in result.returns_table()
  with pytest.raises(ValueError):
    result.heatmap(str(tmp_path / "no.png"), "not a grid")
  assert grid_coordinates(MassScale(0.5)) == (0.5, 1.0)


def test_figures_share_one_scale_and_the_overview_shows_differences(zero_results, tmp_path):
  from benchmarks.protocols.zero_shot import overview_figure, shared_scale  # pylint: disable=import-outside-toplevel
  low = merge_seeds(zero_results)
  high = GridResult(low.settings, low.coordinates, low.returns + 100.0, low.seeds)
  scale = shared_scale([low, high])
  assert scale == (float(low.cell_means().min()), float(high.cell_means().max()))
  high.heatmap(str(tmp_path / "high.png"), "a long title " * 8, scale)
  overview_figure({"MOPO": low, "Other": high}, str(tmp_path / "overview.png"), "walker",
                  baseline="MOPO")
  for name in ("high.png", "overview.png"):
    content = (tmp_path / name).read_bytes()
    assert content.startswith(_PNG_SIGNATURE) and len(content) > 5000
  assert low.samples_label == "mean ± std over 2 seeds"
  assert zero_results[0].samples_label == "1 seed: mean ± std over its 1 episodes per cell"


def test_lambda_rule_takes_the_best_mean_and_accepts_it_only_when_it_matches_a_bar():
  from experiments.mopo.lambda_sweep import choose, parse_lambdas  # pylint: disable=import-outside-toplevel
  from worldmodels.errors import ConfigError  # pylint: disable=import-outside-toplevel
  returns = {0.1: [100.0, 300.0], 1.0: [250.0, 250.0], 3.0: [50.0, 10.0]}
  # Highest mean (250 for lambda 1 against 200 and 30), whatever the spread over seeds.
  assert choose(returns, data_mean=240.0, td3bc_mean=400.0) == {
      "lambda": 1.0, "mean": 250.0, "accepted": True, "matches": ["data"]}
  assert choose(returns, data_mean=300.0, td3bc_mean=249.0)["matches"] == ["td3bc"]
  assert choose(returns, data_mean=300.0, td3bc_mean=None)["accepted"] is False
  rejected = choose(returns, data_mean=251.0, td3bc_mean=260.0)
  assert rejected["lambda"] == 1.0 and not rejected["accepted"] and rejected["matches"] == []
  assert parse_lambdas(["0", "0.5", "2"]) == [0.0, 0.5, 2.0]
  for bad in (["a"], ["-1"], ["1", "1.0"]):
    with pytest.raises(ConfigError, match="--lambdas"):
      parse_lambdas(bad)
  with pytest.raises(ConfigError, match="--lambdas"):
    choose({}, 0.0, None)


def test_evaluation_envs_follow_the_dataset_task_family():
  from experiments.zero_shot import evaluation_env_factory  # pylint: disable=import-outside-toplevel
  gym_env = evaluation_env_factory("HalfCheetah-v5", None, 1)(0)
  assert gym_env.action_repeat == 1 and gym_env.episode_length == 1000
  assert gym_env.observation_spec()["physics"].shape == (18,)  # qpos 9 + qvel 9
  dmc_env = evaluation_env_factory("cheetah-run", 20)(0)
  assert "physics" in dmc_env.observation_spec()
  steps = 0
  timestep = dmc_env.reset()
  while not timestep.last():
    timestep = dmc_env.step(np.zeros(6, np.float32))
    steps += 1
  assert steps == 20


def test_rliable_style_aggregates_and_their_stratified_intervals():
  from benchmarks.protocols.zero_shot import (aggregate_scores, interquartile_mean,  # pylint: disable=import-outside-toplevel
                                              optimality_gap)
  scores = np.array([[0.0, 0.2, 0.4, 10.0], [0.1, 0.3, 0.5, -10.0]])
  # The middle 4 of the 8 sorted scores: 0.1, 0.2, 0.3, 0.4.
  assert interquartile_mean(scores) == pytest.approx(0.25)
  assert optimality_gap(np.array([[0.5, 1.5], [1.0, 0.0]])) == pytest.approx((0.5 + 0 + 0 + 1) / 4)
  # Every seed scores the same in each cell: resampling seeds within a cell changes nothing,
  # so the stratified intervals have no width although the cells differ.
  same = np.tile([0.1, 0.5, 0.9], (3, 1))
  for aggregate in aggregate_scores(same, resamples=200).values():
    assert aggregate.low == pytest.approx(aggregate.point) == pytest.approx(aggregate.high)
  rng = np.random.default_rng(0)
  noisy = aggregate_scores(rng.normal(0.5, 0.2, (5, 49)), resamples=500)
  for aggregate in noisy.values():
    assert aggregate.low < aggregate.point < aggregate.high
  assert noisy["IQM"].point == pytest.approx(0.5, abs=0.05)
  with pytest.raises(ValueError, match="runs >= 2"):
    aggregate_scores(np.ones((1, 4)))


def test_grid_results_normalise_per_seed_cell_means(zero_results):
  result = merge_seeds(zero_results)
  scores = result.normalised_scores(-10.0, 90.0)
  np.testing.assert_allclose(scores, (result.returns.mean(axis=2) + 10.0) / 100.0)
  with pytest.raises(ValueError, match="high > low"):
    result.normalised_scores(1.0, 1.0)
