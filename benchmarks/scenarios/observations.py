"""MrCoM's observation functions (section 5, table 3): how a scenario's agent sees the state.

Each function maps a state vector ``[D]`` to what the agent observes, drawing any randomness
from the generator it is given (the environment's, seeded per scenario and episode):

* ``AddGaussian`` (Add-G): Gaussian noise of std ``std`` on every dimension, every step.
* ``AddDimensions`` (Add-D): ``ceil(fraction * D)`` extra dimensions of standard Gaussian noise
  appended (10%: MrCoM's setting), every step new.
* ``MaskRandom`` (Msk-R): ``round(fraction * D)`` (at least 1) dimensions, drawn anew each step,
  set to 0.
* ``MaskFixed`` (Msk-F): the same ``round(fraction * D)`` dimensions set to 0 at every step;
  which ones is fixed by the function's own ``seed`` (part of the scenario).
* ``Identity``: the state as it is.

``ObservedEnv`` applies one to a ``dm_env`` environment's ``"state"`` entry.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import dm_env
import numpy as np
from dm_env import specs


class ObservationFunction(Protocol):
  """``name``, ``output_dim(D)`` and ``__call__(state [D], rng) -> observation``."""

  @property
  def name(self) -> str:
    ...

  def output_dim(self, state_dim: int) -> int:
    ...

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ...


def _mask_count(fraction: float, dim: int) -> int:
  return max(1, int(round(fraction * dim)))


def _check_fraction(fraction: float, what: str) -> None:
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"{what}: fraction must be in (0, 1), got {fraction}.")


@dataclasses.dataclass(frozen=True)
class Identity:
  name = "none"

  def output_dim(self, state_dim: int) -> int:
    return state_dim

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    del rng
    return np.asarray(state, np.float32)


@dataclasses.dataclass(frozen=True)
class AddGaussian:
  """Add-G: ``state + std * N(0, 1)`` on every dimension."""

  std: float = 0.1
  name = "Add-G"

  def output_dim(self, state_dim: int) -> int:
    return state_dim

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    state = np.asarray(state, np.float32)
    return (state + self.std * rng.standard_normal(state.shape)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class AddDimensions:
  """Add-D: ``concat(state, N(0, 1)^k)``, ``k = ceil(fraction * D)``."""

  fraction: float = 0.1
  name = "Add-D"

  def __post_init__(self):
    if self.fraction <= 0:
      raise ValueError(f"Add-D: fraction must be positive, got {self.fraction}.")

  def extra(self, state_dim: int) -> int:
    return int(math.ceil(self.fraction * state_dim))

  def output_dim(self, state_dim: int) -> int:
    return state_dim + self.extra(state_dim)

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    state = np.asarray(state, np.float32)
    noise = rng.standard_normal(self.extra(state.shape[-1])).astype(np.float32)
    return np.concatenate([state, noise])


@dataclasses.dataclass(frozen=True)
class MaskRandom:
  """Msk-R: a fresh random ``round(fraction * D)`` dimensions set to 0 at each step."""

  fraction: float = 0.1
  name = "Msk-R"

  def __post_init__(self):
    _check_fraction(self.fraction, "Msk-R")

  def output_dim(self, state_dim: int) -> int:
    return state_dim

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    state = np.array(state, np.float32)
    state[rng.choice(state.shape[-1], _mask_count(self.fraction, state.shape[-1]),
                     replace=False)] = 0.0
    return state


@dataclasses.dataclass(frozen=True)
class MaskFixed:
  """Msk-F: the dimensions :meth:`indices` gives (fixed by ``seed``) set to 0 at every step."""

  fraction: float = 0.1
  seed: int = 0
  name = "Msk-F"

  def __post_init__(self):
    _check_fraction(self.fraction, "Msk-F")

  def indices(self, state_dim: int) -> np.ndarray:
    """The masked dimensions (sorted), the same for every call with this ``seed``."""
    rng = np.random.default_rng(self.seed)
    return np.sort(rng.choice(state_dim, _mask_count(self.fraction, state_dim), replace=False))

  def output_dim(self, state_dim: int) -> int:
    return state_dim

  def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    del rng
    state = np.array(state, np.float32)
    state[self.indices(state.shape[-1])] = 0.0
    return state


OBSERVATION_FUNCTIONS = {"none": Identity, "Add-G": AddGaussian, "Add-D": AddDimensions,
                         "Msk-R": MaskRandom, "Msk-F": MaskFixed}


class ObservedEnv(dm_env.Environment):
  """``env`` with ``function`` applied to the ``"state"`` observation entry at every step.

  Args:
    env: a ``dm_env`` environment with dict observations holding ``"state"`` ``[D]``.
    function: an observation function.
    seed: seeds the function's randomness (noise and random masks).
  """

  def __init__(self, env: dm_env.Environment, function: ObservationFunction, seed: int = 0):
    self._env, self._function = env, function
    self._rng = np.random.default_rng(seed)
    spec = env.observation_spec()
    if "state" not in spec:
      raise ValueError("ObservedEnv needs a 'state' observation entry (obs_type 'state').")
    self._state_dim = int(spec["state"].shape[0])
    self._spec = dict(spec, state=specs.Array((function.output_dim(self._state_dim),),
                                              np.float32, name="state"))

  @property
  def env(self) -> dm_env.Environment:
    return self._env

  def observation_spec(self):
    return dict(self._spec)

  def action_spec(self):
    return self._env.action_spec()

  def _observe(self, time_step: dm_env.TimeStep) -> dm_env.TimeStep:
    observation = dict(time_step.observation)
    observation["state"] = self._function(observation["state"], self._rng)
    return time_step._replace(observation=observation)

  def reset(self) -> dm_env.TimeStep:
    return self._observe(self._env.reset())

  def step(self, action) -> dm_env.TimeStep:
    return self._observe(self._env.step(action))

  def close(self) -> None:
    self._env.close()
