"""Jittable samplers over device-resident episodic step arrays.

All samplers work on a :class:`~worldmodels.data.types.Steps` whose arrays live on a device, plus
an :class:`EpisodeIndex` computed once on the host. They are pure functions of
``(steps, index, key)`` and can be called inside ``jit`` and ``lax.scan``.

Pixel frames are stored once (uint8, ``[N, H, W, C]``); frame stacks are rebuilt at sampling
time by gathering the previous ``k - 1`` frames of the same episode (the first frame of an
episode is repeated at its start), so no frame is duplicated in memory.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional, Tuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from worldmodels.data.types import Steps


@flax.struct.dataclass
class EpisodeIndex:
  """Episode-boundary tables for a flat step array of N steps.

  Attributes:
    episode_start: ``[N]`` int32, index of the first step of each step's episode.
    episode_last: ``[N]`` int32, index of the last step of each step's episode.
    transition_ids: ``[M]`` int32, the steps that start a transition (not ``is_last``).
  """

  episode_start: jax.Array
  episode_last: jax.Array
  transition_ids: jax.Array

  @property
  def num_transitions(self) -> int:
    return int(self.transition_ids.shape[0])


def build_index(steps: Steps) -> EpisodeIndex:
  """Builds the boundary tables on the host (numpy) from ``is_first`` / ``is_last``.

  Raises:
    ValueError: if the flags do not describe back-to-back episodes.
  """
  is_first = np.asarray(steps.is_first, bool)
  is_last = np.asarray(steps.is_last, bool)
  n = is_first.shape[0]
  if n == 0:
    raise ValueError("build_index: the dataset has no steps.")
  starts = np.flatnonzero(is_first)
  lasts = np.flatnonzero(is_last)
  if (len(starts) != len(lasts) or starts[0] != 0 or lasts[-1] != n - 1
      or np.any(starts[1:] != lasts[:-1] + 1) or np.any(lasts < starts)):
    raise ValueError(
        "build_index: is_first / is_last do not delimit back-to-back episodes "
        f"({len(starts)} first flags, {len(lasts)} last flags over {n} steps).")
  lengths = lasts - starts + 1
  episode_start = np.repeat(starts, lengths).astype(np.int32)
  episode_last = np.repeat(lasts, lengths).astype(np.int32)
  transition_ids = np.flatnonzero(~is_last).astype(np.int32)
  if transition_ids.size == 0:
    raise ValueError("build_index: the dataset has no transitions (only 1-step episodes).")
  return EpisodeIndex(jnp.asarray(episode_start), jnp.asarray(episode_last),
                      jnp.asarray(transition_ids))


@flax.struct.dataclass
class Transition:
  """A batch of transitions ``(s, a, r, s', discount)``.

  Attributes:
    observation: dict name -> ``[B, ...]``.
    action: ``[B, A]``.
    reward: ``[B]`` (the n-step discounted sum for n-step batches).
    discount: ``[B]``, 0 where the episode terminated within the n steps, else ``gamma**n``
      for n-step batches (1 for one-step batches: the learner applies its own gamma).
    next_observation: dict name -> ``[B, ...]``.
  """

  observation: Dict[str, jax.Array]
  action: jax.Array
  reward: jax.Array
  discount: jax.Array
  next_observation: Dict[str, jax.Array]


def stack_frames(frames: jax.Array, ids: jax.Array, episode_start: jax.Array,
                 num_frames: int) -> jax.Array:
  """Rebuilds frame stacks at sampling time.

  Args:
    frames: ``[N, H, W, C]`` uint8, one frame per step.
    ids: ``[...]`` int32 step indices.
    episode_start: ``[N]`` int32 first step of each step's episode.
    num_frames: k, frames per stack.

  Returns:
    ``[..., H, W, k * C]``: frames ``ids - k + 1 .. ids`` (oldest first) on the channel axis,
    clamped to the episode start.
  """
  offsets = jnp.arange(num_frames - 1, -1, -1, dtype=jnp.int32)  # k-1 .. 0
  frame_ids = jnp.maximum(ids[..., None] - offsets, episode_start[ids][..., None])
  stacked = frames[frame_ids]  # [..., k, H, W, C]
  stacked = jnp.moveaxis(stacked, -4, -2)  # [..., H, W, k, C]
  return stacked.reshape(stacked.shape[:-2] + (-1,))


def gather_observation(steps: Steps, index: EpisodeIndex, ids: jax.Array,
                       frame_stack: Dict[str, int] | None = None) -> Dict[str, jax.Array]:
  """Observation dict at step ids, with frame stacks rebuilt for the keys in ``frame_stack``."""
  frame_stack = frame_stack or {}
  out = {}
  for name, values in steps.observation.items():
    k = frame_stack.get(name, 1)
    out[name] = values[ids] if k == 1 else stack_frames(values, ids, index.episode_start, k)
  return out


def sample_transitions(steps: Steps, index: EpisodeIndex, key: jax.Array, batch_size: int,
                       frame_stack: Dict[str, int] | None = None) -> Transition:
  """Samples one-step transitions uniformly (never across an episode boundary).

  Returns:
    A :class:`Transition` with leading batch dimension ``batch_size``; ``discount`` is the
    dataset's per-step discount (0 at a terminal, 1 otherwise).
  """
  pick = jax.random.randint(key, (batch_size,), 0, index.transition_ids.shape[0])
  ids = index.transition_ids[pick]
  batch = Transition(
      observation=gather_observation(steps, index, ids, frame_stack),
      action=steps.action[ids],
      reward=steps.reward[ids],
      discount=steps.discount[ids],
      next_observation=gather_observation(steps, index, ids + 1, frame_stack))
  chex.assert_shape(batch.reward, (batch_size,))
  return batch


def sample_nstep(steps: Steps, index: EpisodeIndex, key: jax.Array, batch_size: int, n: int,
                 gamma: float, frame_stack: Dict[str, int] | None = None) -> Transition:
  """Samples n-step transitions: ``R = sum_{i<n'} gamma^i r_{t+i}``, bootstrapping from
  ``s_{t+n'}`` with discount ``gamma^{n'} * prod(discount)``, where ``n' <= n`` stops at the
  episode's last step (truncation) and a terminal zeroes the bootstrap.

  Returns:
    A :class:`Transition`; ``discount`` already contains ``gamma**n'``.
  """
  pick = jax.random.randint(key, (batch_size,), 0, index.transition_ids.shape[0])
  ids = index.transition_ids[pick]
  last = index.episode_last[ids]
  reward = jnp.zeros((batch_size,), jnp.float32)
  discount = jnp.ones((batch_size,), jnp.float32)
  cursor = ids
  for _ in range(n):  # n is small and static: unrolled
    active = cursor < last
    step_reward = steps.reward[cursor]
    reward = reward + jnp.where(active, discount * step_reward, 0.0)
    discount = jnp.where(active, discount * gamma * steps.discount[cursor], discount)
    cursor = jnp.where(active, cursor + 1, cursor)
  return Transition(
      observation=gather_observation(steps, index, ids, frame_stack),
      action=steps.action[ids],
      reward=reward,
      discount=discount,
      next_observation=gather_observation(steps, index, cursor, frame_stack))


@flax.struct.dataclass
class SequenceBatch:
  """A batch of fixed-length sequences ``[B, L, ...]`` inside single episodes."""

  observation: Dict[str, jax.Array]
  action: jax.Array
  reward: jax.Array
  discount: jax.Array
  is_first: jax.Array
  is_last: jax.Array
  is_terminal: jax.Array


def sequence_starts(index: EpisodeIndex, length: int) -> jax.Array:
  """Step ids from which a window of ``length`` steps stays inside one episode (host)."""
  ids = np.arange(index.episode_start.shape[0])
  valid = ids + length - 1 <= np.asarray(index.episode_last)
  starts = np.flatnonzero(valid).astype(np.int32)
  if starts.size == 0:
    longest = int(np.max(np.asarray(index.episode_last) - np.asarray(index.episode_start))) + 1
    raise ValueError(f"sequences of {length} steps do not fit in any episode (the longest has "
                     f"{longest} steps); use a shorter sequence length.")
  return jnp.asarray(starts)


def sample_sequences(steps: Steps, index: EpisodeIndex, starts: jax.Array, key: jax.Array,
                     batch_size: int, length: int,
                     frame_stack: Dict[str, int] | None = None) -> SequenceBatch:
  """Samples ``batch_size`` windows of ``length`` consecutive steps within episodes.

  Args:
    starts: the valid start ids from :func:`sequence_starts` for this ``length``.

  Returns:
    A :class:`SequenceBatch` with arrays ``[batch_size, length, ...]`` (RLDS step convention).
  """
  pick = jax.random.randint(key, (batch_size,), 0, starts.shape[0])
  ids = starts[pick][:, None] + jnp.arange(length, dtype=jnp.int32)[None]  # [B, L]
  return SequenceBatch(
      observation=gather_observation(steps, index, ids, frame_stack),
      action=steps.action[ids],
      reward=steps.reward[ids],
      discount=steps.discount[ids],
      is_first=steps.is_first[ids],
      is_last=steps.is_last[ids],
      is_terminal=steps.is_terminal[ids])


def all_transitions(steps: Steps, observation_key: str = "state"):
  """Every transition of a dataset as host arrays, in order.

  Returns:
    ``(state [M, D], action [M, A], reward [M], next_state [M, D], discount [M])`` for the M
    steps that are not ``is_last``.
  """
  is_last = np.asarray(steps.is_last, bool)
  ids = np.flatnonzero(~is_last)
  obs = np.asarray(steps.observation[observation_key])
  return (obs[ids], np.asarray(steps.action)[ids], np.asarray(steps.reward)[ids],
          obs[ids + 1], np.asarray(steps.discount)[ids])


# -- samplers bound to their settings ---------------------------------------------------------
#
# A bound sampler is made once with its batch size, frame stack, n-step or sequence length and
# the dataset it reads; ``prepare(source)`` registers the host tables it needs in a
# ``worldmodels.data.source.DataSource`` (computed and uploaded once per source), and
# ``sampler(arrays, key)`` draws one batch inside ``jit`` from ``source.arrays``.


def _hashable(frame_stack) -> Tuple[Tuple[str, int], ...]:
  """A frame-stack mapping as sorted pairs, so that bound samplers hash (``jax.jit`` of one)."""
  return tuple(sorted(dict(frame_stack).items()))


def _dataset(arrays, name):
  """The :class:`~worldmodels.data.source.DatasetArrays` of ``name`` (None: the only one)."""
  if name is None:
    if len(arrays) != 1:
      raise KeyError(f"the sampler reads one unnamed dataset, the source holds {sorted(arrays)}; "
                     "name the dataset in the sampler.")
    return next(iter(arrays.values()))
  return arrays[name]


@dataclasses.dataclass(frozen=True)
class TransitionSampler:
  """Uniform one-step transitions (:func:`sample_transitions`).

  Attributes:
    batch_size: transitions per batch.
    frame_stack: image entry -> frames per stack (a spec's ``frame_stack``; kept as sorted
      pairs so the sampler hashes).
    dataset: the source's dataset to read (None: its only one).
  """

  batch_size: int
  frame_stack: Mapping[str, int] = ()
  dataset: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "frame_stack", _hashable(self.frame_stack))

  def prepare(self, source) -> None:
    source.resolve(self.dataset)

  def __call__(self, arrays, key: jax.Array) -> Transition:
    data = _dataset(arrays, self.dataset)
    return sample_transitions(data.steps, data.index, key, self.batch_size,
                              dict(self.frame_stack))


@dataclasses.dataclass(frozen=True)
class NStepSampler:
  """n-step transitions with discount ``gamma`` (:func:`sample_nstep`)."""

  batch_size: int
  n: int
  gamma: float
  frame_stack: Mapping[str, int] = ()
  dataset: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "frame_stack", _hashable(self.frame_stack))

  def prepare(self, source) -> None:
    source.resolve(self.dataset)

  def __call__(self, arrays, key: jax.Array) -> Transition:
    data = _dataset(arrays, self.dataset)
    return sample_nstep(data.steps, data.index, key, self.batch_size, self.n, self.gamma,
                        dict(self.frame_stack))


@dataclasses.dataclass(frozen=True)
class SequenceSampler:
  """Windows of ``length`` steps inside episodes (:func:`sample_sequences`); the valid starts
  are the source table ``sequence_starts/<length>``."""

  batch_size: int
  length: int
  frame_stack: Mapping[str, int] = ()
  dataset: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "frame_stack", _hashable(self.frame_stack))

  @property
  def table(self) -> str:
    return f"sequence_starts/{self.length}"

  def prepare(self, source) -> None:
    source.table(self.dataset, self.table,
                 lambda steps, index: np.asarray(sequence_starts(index, self.length)))

  def __call__(self, arrays, key: jax.Array) -> SequenceBatch:
    data = _dataset(arrays, self.dataset)
    return sample_sequences(data.steps, data.index, data.tables[self.table], key,
                            self.batch_size, self.length, dict(self.frame_stack))


@dataclasses.dataclass(frozen=True)
class GroupedSampler:
  """One batch over many datasets (e.g. MrCoM's scenarios), grouped by embodiment.

  Datasets of different embodiments have different observation and action sizes, so the batch
  is a dict ``group -> (batch, dataset_ids)``: each group concatenates ``sampler``'s batch of
  every one of its datasets along the batch axis (``len(datasets) * sampler.batch_size`` rows),
  and ``dataset_ids [rows]`` int32 says which of the group's datasets each row came from. Grouping
  rather than padding to a common width: the models tokenise per embodiment anyway (MrCoM's
  per-embodiment tokenizers, CaDM's per-embodiment models), so no row carries padding and no
  feature mask is needed.

  Attributes:
    sampler: the per-dataset sampler (its ``dataset`` is replaced by each dataset's name).
    groups: ``((group, (dataset, ...)), ...)``, e.g. ``(("walker", ("s0", "s1")), ...)``; a
      mapping is accepted and kept sorted so the sampler hashes.
  """

  sampler: object
  groups: Tuple[Tuple[str, Tuple[str, ...]], ...]

  def __post_init__(self):
    groups = dict(self.groups)
    if not groups or any(not names for names in groups.values()):
      raise ValueError(f"GroupedSampler needs at least one dataset per group, got {groups}.")
    object.__setattr__(self, "groups", tuple(sorted((g, tuple(n)) for g, n in groups.items())))

  def _bound(self, name: str):
    return dataclasses.replace(self.sampler, dataset=name)

  def prepare(self, source) -> None:
    for _, names in self.groups:
      for name in names:
        self._bound(name).prepare(source)

  def __call__(self, arrays, key: jax.Array):
    batches = {}
    keys = jax.random.split(key, sum(len(names) for _, names in self.groups))
    position = 0
    for group, names in self.groups:
      parts = [self._bound(name)(arrays, keys[position + i]) for i, name in enumerate(names)]
      position += len(names)
      batch = jax.tree_util.tree_map(lambda *x: jnp.concatenate(x, axis=0), *parts)
      ids = jnp.repeat(jnp.arange(len(names), dtype=jnp.int32), self.sampler.batch_size)
      batches[group] = (batch, ids)
    return batches
