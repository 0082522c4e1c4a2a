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
