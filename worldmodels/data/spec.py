"""What agents and models know about their data: :class:`DataSpec`.

A spec describes one dataset or embodiment: the per-step observation entries (shape and dtype of
one stored frame), the frame stack (how many consecutive frames of an image entry the agent
sees, declared once here and honoured by the samplers, the environment wrapper and evaluation
alike), the action size and the observation statistics of the offline data.

Agents are built from ``(config, spec)``; they read ``spec.observation_shapes`` (what the policy
sees: image entries with ``frame_stack * C`` channels) and ``spec.action_dim``.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple

import dm_env
import numpy as np


@dataclasses.dataclass(frozen=True)
class ArraySpec:
  """Shape and dtype of one step's observation entry (a single frame for images)."""

  shape: Tuple[int, ...]
  dtype: np.dtype

  def __post_init__(self):
    object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
    object.__setattr__(self, "dtype", np.dtype(self.dtype))

  @property
  def is_image(self) -> bool:
    """uint8 ``[H, W, C]``: the entries that frame stacks apply to."""
    return self.dtype == np.uint8 and len(self.shape) == 3


def image_frame_stack(observations: Mapping[str, ArraySpec], frames: int) -> Dict[str, int]:
  """``{key: frames}`` for every image entry of ``observations`` (empty when ``frames`` is 1)."""
  if frames < 1:
    raise ValueError(f"frame_stack must be >= 1, got {frames}.")
  if frames == 1:
    return {}
  return {key: frames for key, spec in observations.items() if spec.is_image}


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """The data an agent or model is built for.

  Attributes:
    observations: name -> :class:`ArraySpec` of one stored step (e.g. ``state`` float32
      ``(17,)``, ``pixels`` uint8 ``(64, 64, 3)``).
    action_dim: A.
    frame_stack: image entry -> frames the agent sees stacked on the channel axis (entries not
      listed: 1).
    observation_mean: optional name -> ``[D]`` mean of the offline data's float entries, over
      all steps (agents that standardise inputs, e.g. TD3+BC).
    observation_std: as above, the population std.
    name: the dataset's or embodiment's name in its data source (None: unnamed).
    task: the environment task the data comes from, when known.
  """

  observations: Mapping[str, ArraySpec]
  action_dim: int
  frame_stack: Mapping[str, int] = dataclasses.field(default_factory=dict)
  observation_mean: Optional[Mapping[str, np.ndarray]] = None
  observation_std: Optional[Mapping[str, np.ndarray]] = None
  name: Optional[str] = None
  task: Optional[str] = None

  def __post_init__(self):
    observations = {key: value if isinstance(value, ArraySpec) else ArraySpec(*value)
                    for key, value in self.observations.items()}
    object.__setattr__(self, "observations", observations)
    for key, frames in self.frame_stack.items():
      if key not in observations:
        raise ValueError(f"frame_stack names {key!r}, which is not an observation entry "
                         f"({sorted(observations)}).")
      if frames < 1 or (frames > 1 and not observations[key].is_image):
        raise ValueError(f"frame_stack[{key!r}] = {frames}: only image entries (uint8 "
                         "[H, W, C]) stack, with at least one frame.")
    object.__setattr__(self, "frame_stack",
                       {key: int(k) for key, k in self.frame_stack.items() if k > 1})
    if not isinstance(self.action_dim, (int, np.integer)) or self.action_dim < 1:
      raise ValueError(f"action_dim must be a positive int, got {self.action_dim!r}.")
    object.__setattr__(self, "action_dim", int(self.action_dim))

  # -- what the agent sees ------------------------------------------------------------------

  @property
  def observation_shapes(self) -> Dict[str, Tuple[int, ...]]:
    """Name -> the shape the policy sees (image entries with ``frames * C`` channels)."""
    return {key: self.stacked_shape(key) for key in self.observations}

  @property
  def observation_dtypes(self) -> Dict[str, np.dtype]:
    return {key: spec.dtype for key, spec in self.observations.items()}

  def stacked_shape(self, key: str) -> Tuple[int, ...]:
    spec = self.observations[key]
    frames = self.frame_stack.get(key, 1)
    return spec.shape[:-1] + (spec.shape[-1] * frames,) if frames > 1 else spec.shape

  def with_observation(self, key: str, shape: Tuple[int, ...],
                       dtype=np.float32) -> "DataSpec":
    """The same spec with entry ``key`` replaced (e.g. AugWM's state widened by its context);
    statistics of that entry are dropped."""
    drop = lambda stats: None if stats is None else {k: v for k, v in stats.items() if k != key}
    return dataclasses.replace(
        self, observations={**self.observations, key: ArraySpec(shape, dtype)},
        observation_mean=drop(self.observation_mean), observation_std=drop(self.observation_std))

  def mismatches(self, other: "DataSpec") -> List[str]:
    """What differs between the observations and actions of two specs (empty: compatible):
    e.g. a dataset against the environment an agent is evaluated in."""
    problems = []
    for key in sorted(set(self.observations) & set(other.observations)):
      mine, theirs = self.observations[key], other.observations[key]
      if mine != theirs:
        problems.append(f"observation {key!r} is {mine.dtype}{list(mine.shape)} here and "
                        f"{theirs.dtype}{list(theirs.shape)} there")
    missing = sorted(set(self.observations) - set(other.observations))
    if missing:
      problems.append(f"observation entries {missing} are missing there")
    if self.action_dim != other.action_dim:
      problems.append(f"actions are {self.action_dim}-d here and {other.action_dim}-d there")
    return problems

  # -- construction -------------------------------------------------------------------------

  @classmethod
  def from_steps(cls, steps, *, frame_stack: int | Mapping[str, int] = 1,
                 name: Optional[str] = None, task: Optional[str] = None) -> "DataSpec":
    """The spec of episodic steps (:class:`~worldmodels.data.types.Steps`): per-step shapes and
    dtypes, and per-entry mean / std of the float entries over all steps.

    Args:
      frame_stack: frames per stack of every image entry (an int), or per entry.
    """
    observations, means, stds = {}, {}, {}
    for key, values in steps.observation.items():
      values = np.asarray(values)
      observations[key] = ArraySpec(values.shape[1:], values.dtype)
      if np.issubdtype(values.dtype, np.floating):
        means[key] = values.mean(axis=0)
        stds[key] = values.std(axis=0)
    stacks = (image_frame_stack(observations, frame_stack) if isinstance(frame_stack, int)
              else dict(frame_stack))
    return cls(observations, int(np.shape(steps.action)[1]), stacks, means, stds, name, task)

  @classmethod
  def from_environment(cls, env: dm_env.Environment, *, frame_stack: int | Mapping[str, int] = 1,
                       name: Optional[str] = None, task: Optional[str] = None) -> "DataSpec":
    """The spec of an environment's (single-frame) observations and actions (no statistics)."""
    observations = {key: ArraySpec(spec.shape, spec.dtype)
                    for key, spec in env.observation_spec().items()}
    stacks = (image_frame_stack(observations, frame_stack) if isinstance(frame_stack, int)
              else dict(frame_stack))
    return cls(observations, int(np.prod(env.action_spec().shape)), stacks, name=name,
               task=task)
