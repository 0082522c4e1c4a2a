"""The learner interface the common training loop drives.

A learner (an agent, or a world model being trained) is built from its config and its data; it
is pure: all of its state (params, optimiser states, target params, rng key, step) is one pytree,
and

* ``init(key) -> state``
* ``update(state, batch, frozen) -> (state, metrics)`` (jit- and scan-able): ``frozen`` holds
  the read-only inputs of the phase (e.g. a world model's parameters), which are never part of
  the state and so never written into checkpoints;
* ``phases() -> [Phase]``: what the loop runs, in order.

An agent also acts, carrying its own state from step to step (an RSSM's latent, a frame stack,
a context model): see :mod:`worldmodels.training.acting` for ``policy_init`` / ``policy``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Literal, Optional, Protocol, Sequence, Tuple

import jax

from worldmodels.data.spec import DataSpec

State = Any
Batch = Any
Frozen = Any
Metrics = Dict[str, jax.Array]


class Sampler(Protocol):
  """Draws one batch inside ``jit`` (see :mod:`worldmodels.data.samplers`)."""

  def prepare(self, source) -> None:
    """Registers the host tables it needs in the data source (once)."""

  def __call__(self, data: Any, key: jax.Array) -> Batch:
    """One batch from ``data``: the source's arrays (offline) or the replay (online)."""


@dataclasses.dataclass(frozen=True)
class Periodic:
  """Work a phase does every ``every`` updates, before the update (e.g. MOPO's model rollouts,
  or MBPO-style rollouts branched from an online replay).

  The loop decides when from its own update count, which is the same for every seed, so with
  vmapped seeds it stays a branch (a condition on a per-seed counter would run both branches
  at every update).

  Attributes:
    every: updates between calls (the first call is before the first update).
    update: ``(state, frozen, data) -> (state, metrics)``, ``data`` the phase's data (offline:
      the source's arrays; online: the replay); its metrics are logged as their mean over the
      calls in each chunk (absent from a chunk without a call).
  """

  every: int
  update: Callable[[State, Frozen, Any], Tuple[State, Metrics]]


@dataclasses.dataclass(frozen=True)
class Phase:
  """One stage of training.

  Attributes:
    name: shown in logs and checkpoints (e.g. ``"policy"``).
    kind: ``"offline"`` (batches from the data source) or ``"online"`` (the loop collects
      transitions from an environment into a replay and samples from it).
    num_steps: gradient updates (online: environment steps, one update per step after
      ``learning_starts``); an ``is_done`` phase may end sooner.
    update: ``(state, batch, frozen) -> (state, metrics)``.
    sampler: draws each update's batch (offline: from ``DataSource.arrays``; online: from the
      replay); None: the update draws its own data from ``frozen`` (a world model's epochs).
    frozen: builds the phase's read-only inputs once from the data source (None: no inputs);
      they are passed to every update and never checkpointed.
    random_steps: online only: steps of uniform random actions before the policy acts.
    learning_starts: online only: environment steps before the first update.
    steps_per_chunk: updates per host call for this phase (None: the loop's setting), e.g.
      one epoch for a world model, so that ``is_done`` is checked at epoch boundaries.
    is_done: ``state -> bool`` checked after each chunk: the phase ends early (early stopping);
      updates after it must leave the state unchanged.
    summary: ``state -> {name: float}`` logged after each chunk besides the update's metrics
      (values that only exist at chunk boundaries, e.g. a holdout error).
    unit: what a step is, for progress lines.
    periodic: work done every ``periodic.every`` updates, before the update.
  """

  name: str
  kind: Literal["offline", "online"]
  num_steps: int
  update: Callable[[State, Batch, Frozen], Tuple[State, Metrics]]
  sampler: Optional[Sampler] = None
  frozen: Optional[Callable[[Any], Frozen]] = None
  random_steps: int = 0
  learning_starts: int = 0
  steps_per_chunk: Optional[int] = None
  is_done: Optional[Callable[[State], bool]] = None
  summary: Optional[Callable[[State], Dict[str, float]]] = None
  unit: str = "updates"
  periodic: Optional[Periodic] = None


class Learner(Protocol):
  """What the training loop needs of anything it trains."""

  def init(self, key: jax.Array) -> State:
    ...

  def update(self, state: State, batch: Batch, frozen: Frozen = None) -> Tuple[State, Metrics]:
    ...

  def phases(self) -> Sequence[Phase]:
    ...


class Agent(Learner, Protocol):
  """Structural type of every agent in ``worldmodels.agents``: a learner that acts."""

  config: Any

  spec: DataSpec

  def policy_init(self, key: jax.Array) -> Any:
    ...

  def policy(self, state: State, carry: Any, observation: Dict[str, jax.Array], key: jax.Array,
             eval_mode: bool) -> Tuple[jax.Array, Any]:
    ...
