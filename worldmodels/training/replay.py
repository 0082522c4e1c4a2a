"""Device-resident replay for online phases, stored as RLDS steps (not transitions).

Keeping steps (``o_t, a_t, r_t, discount_t`` and the episode flags) rather than ``(s, a, r, s')``
tuples stores every observation once and keeps episode structure, so the replay of a run can be
written as an episodic dataset as it stands (:func:`replay_to_steps`).

A ring of capacity C; ``valid[i]`` marks steps whose successor (``o_{t+1}``) is written and
belongs to the same episode: exactly the steps that start a sampleable transition.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.data.samplers import Transition
from worldmodels.data.types import Steps


@flax.struct.dataclass
class Replay:
  """Ring buffer of C steps.

  Attributes:
    steps: :class:`Steps` with arrays ``[C, ...]``.
    valid: ``[C]`` bool, step starts a complete transition.
    insert_pos: ``[]`` int32, next slot to write.
    size: ``[]`` int32, slots written so far (<= C).
  """

  steps: Steps
  valid: jax.Array
  insert_pos: jax.Array
  size: jax.Array

  @property
  def capacity(self) -> int:
    return int(self.valid.shape[0])


def init_replay(capacity: int, observation_shapes: Dict[str, tuple],
                observation_dtypes: Dict[str, np.dtype], action_dim: int) -> Replay:
  """An empty ring of ``capacity`` steps."""
  steps = Steps(
      observation={k: jnp.zeros((capacity,) + tuple(s), observation_dtypes[k])
                   for k, s in observation_shapes.items()},
      action=jnp.zeros((capacity, action_dim), jnp.float32),
      reward=jnp.zeros((capacity,), jnp.float32),
      discount=jnp.zeros((capacity,), jnp.float32),
      is_first=jnp.zeros((capacity,), bool),
      is_last=jnp.zeros((capacity,), bool),
      is_terminal=jnp.zeros((capacity,), bool))
  return Replay(steps, jnp.zeros((capacity,), bool), jnp.zeros((), jnp.int32),
                jnp.zeros((), jnp.int32))


def add_steps(replay: Replay, new: Steps, count: jax.Array) -> Replay:
  """Writes the first ``count`` of the ``K`` steps in ``new`` (arrays ``[K, ...]``) in order.

  ``count`` may be traced (the host collects a variable number of steps per chunk into a
  fixed-size block, avoiding recompiles); rows at or past ``count`` are ignored.
  """
  capacity = replay.capacity
  k = new.reward.shape[0]
  row = jnp.arange(k, dtype=jnp.int32)
  keep = row < count
  pos = (replay.insert_pos + row) % capacity
  # Rows past `count` are written to an out-of-range index and dropped.
  target = jnp.where(keep, pos, capacity)

  def scatter(buffer, values):
    return buffer.at[target].set(values, mode="drop")

  steps = jax.tree_util.tree_map(scatter, replay.steps, new)
  # A new step is valid when the next row of this block is written (and it is not a last step);
  # the slot before the block becomes valid when row 0 continues its episode.
  valid = replay.valid.at[target].set((row + 1 < count) & ~new.is_last, mode="drop")
  before = (replay.insert_pos - 1) % capacity
  continues = (count > 0) & (replay.size > 0) & ~new.is_first[0]
  valid = valid.at[before].set(continues | (valid[before] & (count == 0)))
  return Replay(steps, valid, (replay.insert_pos + count) % capacity,
                jnp.minimum(replay.size + count, capacity))


def sample_replay(replay: Replay, key: jax.Array, batch_size: int, rounds: int = 4) -> Transition:
  """Uniform transitions from the valid steps.

  Draws ``rounds`` candidates per row and keeps the first valid one (invalid slots are the
  episode ends and the newest step: about 1 in 500 for DMC), so the batch is uniform over valid
  steps unless all candidates of a row are invalid (probability ~1e-10 at that rate; the row then
  takes its last candidate's predecessor, which is valid whenever that candidate is a last step).
  """
  ids = sample_replay_ids(replay, key, batch_size, rounds)
  nxt = (ids + 1) % replay.capacity
  s = replay.steps
  return Transition(
      observation={k: v[ids] for k, v in s.observation.items()},
      action=s.action[ids], reward=s.reward[ids], discount=s.discount[ids],
      next_observation={k: v[nxt] for k, v in s.observation.items()})


def sample_replay_ids(replay: Replay, key: jax.Array, batch_size: int,
                      rounds: int = 4) -> jax.Array:
  """``[batch_size]`` slots of steps that start a complete transition, drawn as
  :func:`sample_replay` describes."""
  capacity = replay.capacity
  cand = jax.random.randint(key, (rounds, batch_size), 0, jnp.maximum(replay.size, 1))
  ok = replay.valid[cand]
  first_ok = jnp.argmax(ok, axis=0)
  ids = jnp.take_along_axis(cand, first_ok[None], axis=0)[0]
  return jnp.where(ok.any(axis=0), ids, (cand[-1] - 1) % capacity)


def history_ids(replay: Replay, ids: jax.Array, length: int) -> Tuple[jax.Array, jax.Array]:
  """The ``length`` transitions that led to each step ``ids [N]`` in its episode, oldest first.

  Slot ``j = ids - d`` (``d = length .. 1``) starts the transition ``(o_j, a_j, r_j, o_{j+1})``;
  it belongs to the history when it is still in the ring and no episode starts in
  ``j + 1 .. ids`` (so the first step of an episode has an empty history).

  Returns:
    ``slots [N, length]`` and ``mask [N, length]`` (False: no such transition; its slot is
    arbitrary).
  """
  capacity = replay.capacity
  age = (replay.insert_pos - 1 - ids) % capacity  # 0 for the newest step
  back = jnp.arange(1, length + 1, dtype=jnp.int32)  # d = 1 .. length
  slots = (ids[:, None] - back[None]) % capacity  # [N, length], newest first
  # Step j + 1 = ids - d + 1 starting an episode cuts the history at d and beyond.
  starts_episode = replay.steps.is_first[(slots + 1) % capacity]
  within_episode = jnp.cumsum(starts_episode, axis=1) == 0
  in_ring = age[:, None] + back[None] < replay.size
  mask = within_episode & in_ring
  return slots[:, ::-1], mask[:, ::-1]


def replay_to_steps(replay: Replay) -> Steps:
  """The complete episodes held in the ring, oldest first, as host :class:`Steps`.

  Drops partial episodes: at either end (overwritten start, unfinished end) and any left
  unfinished by a resume.
  """
  host = jax.tree_util.tree_map(np.asarray, replay.steps)
  size, pos, capacity = int(replay.size), int(replay.insert_pos), replay.capacity
  order = np.arange(size) if size < capacity else (np.arange(capacity) + pos) % capacity
  ordered = jax.tree_util.tree_map(lambda x: x[order], host)
  firsts = np.flatnonzero(ordered.is_first)
  lasts = np.flatnonzero(ordered.is_last)
  if firsts.size == 0 or lasts.size == 0:
    raise ValueError("replay_to_steps: the replay holds no complete episode yet.")
  # Whole episodes only: from an is_first step to the is_last step that closes it (an episode
  # cut short by a resume that restarted the environment mid-episode has no is_last).
  segment_ends = np.append(firsts[1:], size)
  keep = np.zeros(size, bool)
  for begin, end in zip(firsts, segment_ends):
    if ordered.is_last[end - 1]:
      keep[begin:end] = True
  if not keep.any():
    raise ValueError("replay_to_steps: the replay holds no complete episode yet.")
  return jax.tree_util.tree_map(lambda x: x[keep], ordered)


@dataclasses.dataclass(frozen=True)
class ReplaySampler:
  """The online phases' sampler: uniform transitions from the replay (:func:`sample_replay`)."""

  batch_size: int

  def prepare(self, source) -> None:
    del source

  def __call__(self, replay: Replay, key: jax.Array) -> Transition:
    return sample_replay(replay, key, self.batch_size)
