"""The agent interface the common training loop drives.

An agent is built from ``(config, spec)`` and is pure: all of its state (params, optimiser states, target
params, rng key, step) is one pytree, and

* ``init(key) -> state``
* ``update(state, batch) -> (state, metrics)``  (jit- and scan-able)
* ``act(state, observation, key, eval_mode) -> action``  (batched, jit-able)
* ``phases() -> [Phase]``: what the loop runs, in order (e.g. model training then policy
  training, or one online phase that collects from an environment).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Literal, Optional, Protocol, Sequence, Tuple

import jax
import numpy as np

State = Any
Batch = Any
Metrics = Dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class AgentSpec:
  """What an agent needs to know about its data or environment.

  Attributes:
    observation_shapes: name -> per-step shape (e.g. ``{"state": (17,)}``).
    action_dim: A.
    observation_mean: optional name -> ``[D]`` statistics of the offline data (for agents that
      normalise inputs, e.g. TD3+BC).
    observation_std: as above.
  """

  observation_shapes: Dict[str, Tuple[int, ...]]
  action_dim: int
  observation_mean: Dict[str, np.ndarray] | None = None
  observation_std: Dict[str, np.ndarray] | None = None

  @classmethod
  def from_steps(cls, steps) -> "AgentSpec":
    """Shapes and per-key standardisation statistics of an offline dataset's observations
    (float entries only; statistics over all steps)."""
    shapes, means, stds = {}, {}, {}
    for name, values in steps.observation.items():
      values = np.asarray(values)
      shapes[name] = tuple(values.shape[1:])
      if np.issubdtype(values.dtype, np.floating):
        means[name] = values.mean(axis=0)
        stds[name] = values.std(axis=0)
    return cls(shapes, int(steps.action.shape[1]), means, stds)


@dataclasses.dataclass(frozen=True)
class Phase:
  """One stage of training.

  Attributes:
    name: shown in logs and checkpoints (e.g. ``"policy"``).
    kind: ``"offline"`` (batches sampled from a dataset) or ``"online"`` (the loop collects
      transitions from an environment into a replay buffer and samples from it).
    num_steps: gradient updates in this phase (for online phases: environment steps, with
      one update per step after ``learning_starts``).
    update: ``(state, batch) -> (state, metrics)``.
    batch_size: transitions per batch.
    random_steps: online only: steps of uniform random actions before the policy acts.
    learning_starts: online only: environment steps before the first update.
    sample: offline only: ``(data, index, key, batch_size) -> batch`` drawing one batch from
      the device-resident dataset (default: uniform one-step transitions). Agents that need
      more than a batch of transitions (e.g. MOPO's rollout start states) supply their own.
  """

  name: str
  kind: Literal["offline", "online"]
  num_steps: int
  update: Callable[[State, Batch], Tuple[State, Metrics]]
  batch_size: int = 256
  random_steps: int = 0
  learning_starts: int = 0
  sample: Optional[Callable[..., Batch]] = None


class Agent(Protocol):
  """Structural type of every agent in ``worldmodels.agents``."""

  config: Any

  spec: AgentSpec

  def init(self, key: jax.Array) -> State:
    ...

  def update(self, state: State, batch: Batch) -> Tuple[State, Metrics]:
    ...

  def act(self, state: State, observation: Dict[str, jax.Array], key: jax.Array,
          eval_mode: bool) -> jax.Array:
    ...

  def phases(self) -> Sequence[Phase]:
    ...
