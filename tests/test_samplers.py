"""Samplers over device-resident steps: boundaries, n-step returns, sequences, frame stacks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import synthetic_steps
from worldmodels.data import samplers

LENGTHS = (5, 1, 8, 3)


@pytest.fixture(scope="module")
def data():
  steps = synthetic_steps(LENGTHS, frame=(4, 4, 1), terminal_last=True)
  return jax.device_put(steps), samplers.build_index(steps)


def test_index_tables(data):
  steps, index = data
  assert index.num_transitions == sum(LENGTHS)
  is_last = np.asarray(steps.is_last)
  assert not is_last[np.asarray(index.transition_ids)].any()
  np.testing.assert_array_equal(np.asarray(index.episode_start)[:6], 0)
  np.testing.assert_array_equal(np.asarray(index.episode_last)[6:8], 7)


def test_bad_flags_rejected():
  steps = synthetic_steps((3, 3))
  broken = steps.replace(is_first=np.zeros_like(steps.is_first))
  with pytest.raises(ValueError, match="back-to-back"):
    samplers.build_index(broken)


def test_transitions_stay_inside_episodes(data):
  steps, index = data
  batch = jax.jit(samplers.sample_transitions, static_argnums=3)(
      steps, index, jax.random.PRNGKey(0), 512)
  s, s2 = np.asarray(batch.observation["state"]), np.asarray(batch.next_observation["state"])
  np.testing.assert_array_equal(s2[:, 0], s[:, 0])  # same episode
  np.testing.assert_array_equal(s2[:, 1], s[:, 1] + 1)  # the next step
  np.testing.assert_allclose(np.asarray(batch.reward), s[:, 2] / 100, rtol=1e-6)
  # Every transition is reachable and none is over-represented badly.
  assert len(np.unique(s[:, 2])) == sum(LENGTHS)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminations", "time_limits"])
def test_nstep_returns_analytic(terminal):
  """n-step sums stop at an episode's end; a termination zeroes the bootstrap, a time limit
  keeps it (``gamma ** n'`` from the last step)."""
  steps = synthetic_steps(LENGTHS, terminal_last=terminal)
  index = samplers.build_index(steps)
  gamma, n = 0.9, 3
  batch = samplers.sample_nstep(steps, index, jax.random.PRNGKey(1), 256, n, gamma)
  s = np.asarray(batch.observation["state"])
  s_next = np.asarray(batch.next_observation["state"])
  lengths = np.asarray(LENGTHS)
  for row in range(256):
    episode, t, gid = (int(v) for v in s[row, :3])
    horizon = min(n, lengths[episode] - t)  # stops at the episode's last step
    expected = sum(gamma**i * (gid + i) / 100 for i in range(horizon))
    np.testing.assert_allclose(float(batch.reward[row]), expected, rtol=1e-5)
    assert s_next[row, 1] == t + horizon
    terminal_reached = terminal and t + horizon == lengths[episode]
    np.testing.assert_allclose(float(batch.discount[row]),
                               0.0 if terminal_reached else gamma**horizon, atol=1e-6)


def test_sequences(data):
  steps, index = data
  length = 4
  starts = samplers.sequence_starts(index, length)
  batch = samplers.sample_sequences(steps, index, starts, jax.random.PRNGKey(2), 64, length)
  state = np.asarray(batch.observation["state"])
  assert state.shape == (64, length, 4)
  assert (state[:, :, 0] == state[:, :1, 0]).all()  # one episode per window
  np.testing.assert_array_equal(np.diff(state[:, :, 1], axis=1), 1)
  # Episodes shorter than the window (lengths 1 and 3 -> 2 and 4 steps) : only 4 fits the 2nd.
  with pytest.raises(ValueError, match="do not fit in any episode"):
    samplers.sequence_starts(index, 20)


def test_frame_stack_rebuilt_at_sampling(data):
  steps, index = data
  ids = jnp.asarray([0, 1, 2, 6, 7, 9])
  stacked = np.asarray(samplers.stack_frames(steps.observation["pixels"], ids,
                                             index.episode_start, 3))
  assert stacked.shape == (6, 4, 4, 3)
  # Oldest first, clamped at the episode start (episode 2 starts at step 8).
  expected = [[0, 0, 0], [0, 0, 1], [0, 1, 2], [6, 6, 6], [6, 6, 7], [8, 8, 9]]
  np.testing.assert_array_equal(stacked[:, 0, 0, :], expected)
  batch = samplers.sample_transitions(steps, index, jax.random.PRNGKey(3), 8,
                                      frame_stack={"pixels": 3})
  assert batch.observation["pixels"].shape == (8, 4, 4, 3)
  assert batch.observation["pixels"].dtype == jnp.uint8
