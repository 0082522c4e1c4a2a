"""The online replay ring: validity of transitions, wrap-around, export as episodes."""

from __future__ import annotations

import jax
import numpy as np

from tests.conftest import synthetic_steps
from worldmodels.training import replay as replay_lib


def _block(steps, begin, end, size):
  """Rows ``begin:end`` of ``steps`` padded to ``size`` rows."""
  def take(x):
    x = np.asarray(x)[begin:end]
    pad = np.zeros((size - len(x),) + x.shape[1:], x.dtype)
    return np.concatenate([x, pad])
  return jax.tree_util.tree_map(take, steps)


def _fill(steps, capacity, chunk):
  replay = replay_lib.init_replay(capacity, {"state": (4,)}, {"state": np.float32}, 2)
  add = jax.jit(replay_lib.add_steps)
  for begin in range(0, steps.num_steps, chunk):
    end = min(begin + chunk, steps.num_steps)
    replay = add(replay, _block(steps, begin, end, chunk), np.int32(end - begin))
  return replay


def test_valid_marks_exactly_the_transitions():
  steps = synthetic_steps((5, 2, 7))
  replay = _fill(steps, 64, chunk=4)
  valid = np.asarray(replay.valid)[:steps.num_steps]
  np.testing.assert_array_equal(valid, ~np.asarray(steps.is_last))
  batch = replay_lib.sample_replay(replay, jax.random.PRNGKey(0), 256)
  s, s2 = np.asarray(batch.observation["state"]), np.asarray(batch.next_observation["state"])
  np.testing.assert_array_equal(s2[:, 0], s[:, 0])
  np.testing.assert_array_equal(s2[:, 1], s[:, 1] + 1)


def test_newest_step_is_not_sampled_before_its_successor():
  steps = synthetic_steps((10,))
  replay = _fill(jax.tree_util.tree_map(lambda x: x[:4], steps), 32, chunk=4)
  assert not bool(replay.valid[3])  # o_4 not written yet
  assert bool(replay.valid[2])


def test_wrap_around_and_export():
  steps = synthetic_steps((6, 6, 6, 6), seed=1)  # 28 steps into a ring of 16
  replay = _fill(steps, 16, chunk=5)
  assert int(replay.size) == 16
  batch = replay_lib.sample_replay(replay, jax.random.PRNGKey(1), 512)
  s, s2 = np.asarray(batch.observation["state"]), np.asarray(batch.next_observation["state"])
  np.testing.assert_array_equal(s2[:, 2], s[:, 2] + 1)  # consecutive global ids
  assert s[:, 2].min() >= steps.num_steps - 16  # only what the ring still holds
  exported = replay_lib.replay_to_steps(replay)
  # The oldest complete episode in the ring is episode 2 (global steps 14..20) and 3.
  np.testing.assert_array_equal(np.asarray(exported.observation["state"])[:, 2],
                                np.arange(14, 28))
  assert exported.num_episodes == 2


def test_history_is_the_transitions_before_a_step_within_its_episode():
  steps = synthetic_steps((5, 2, 7))  # episodes of 6, 3 and 8 steps
  replay = _fill(steps, 64, chunk=4)
  state = np.asarray(replay.steps.observation["state"])
  ids = np.array([0, 3, 6, 8, 12])  # episode starts 0, 6, 9: ep0 t0, ep0 t3, ep1 t0, ep1 t2, ep2 t3
  slots, mask = map(np.asarray, replay_lib.history_ids(replay, ids, 4))
  assert slots.shape == mask.shape == (5, 4)
  np.testing.assert_array_equal(mask.sum(1), [0, 3, 0, 2, 3])
  for row, i in enumerate(ids):
    held = slots[row][mask[row]]
    # Oldest first, consecutive, ending right before the step, all in the step's episode.
    np.testing.assert_array_equal(held, np.arange(i - len(held), i))
    assert (state[held, 0] == state[i, 0]).all()
    assert not mask[row][:4 - len(held)].any()  # padding on the left


def test_history_stops_at_what_the_ring_still_holds():
  steps = synthetic_steps((30,))  # 31 steps into a ring of 16: steps 15..30 remain
  replay = _fill(steps, 16, chunk=5)
  state = np.asarray(replay.steps.observation["state"])
  oldest_slot = int(np.argmin(state[:, 2]))
  assert state[oldest_slot, 2] == 15
  newest = (oldest_slot + 15) % 16
  for slot, expected in ((oldest_slot, 0), ((oldest_slot + 2) % 16, 2), (newest, 4)):
    held, mask = map(np.asarray, replay_lib.history_ids(replay, np.array([slot]), 4))
    assert int(mask.sum()) == expected, (slot, mask)
    np.testing.assert_array_equal(state[held[0][mask[0]], 2],
                                  np.arange(state[slot, 2] - expected, state[slot, 2]))
