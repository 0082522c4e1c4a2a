"""MrCoM's scenarios: (embodiment, dynamics, objective, observation function), and their splits.

A :class:`Scenario` scales the torso (``torso_length`` along its long axis, ``torso_size``: its
thickness, mass and inertia), sets the target speed ``rho * v_max`` and picks an observation
function (``benchmarks.scenarios.observations``). Its environment is the DMC task with the
torso perturbation (``benchmarks.shifts``), the target-speed reward
(``benchmarks.scenarios.objectives``) and the observation function applied.

Splits (``SPLITS``; the paper's intervals were lost, these are ``../shared/specs/mrcom.md``'s):

* ``id-dynamics`` / ``id-objective`` / ``id-both``: torso factors from U[0.8, 1.2] and / or
  ``rho`` from U[0.5, 1.0]; what is not varied stays at 1 (``rho = 1``: the target is ``v_max``);
* ``ood-*``: the same from [0.6, 0.8) U (1.2, 1.4] and [0.25, 0.5) U (1.0, 1.25];
* ``obs-<function>`` (``obs-Add-G`` ...): default dynamics and ``rho = 1`` seen through one
  observation function (MrCoM's table 3).

:func:`sample_scenarios` draws ``count`` scenarios of a split for one embodiment, the same ones
for the same seed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Sequence, Tuple

import numpy as np

from benchmarks.scenarios import objectives
from benchmarks.scenarios.observations import OBSERVATION_FUNCTIONS, MaskFixed, ObservedEnv
from benchmarks.shifts.perturbations import BodyPartScale, Compose, TorsoLength

Interval = Tuple[float, float]
IN_DISTRIBUTION: Sequence[Interval] = ((0.8, 1.2),)
OUT_OF_DISTRIBUTION: Sequence[Interval] = ((0.6, 0.8), (1.2, 1.4))
RHO_IN: Sequence[Interval] = ((0.5, 1.0),)
RHO_OUT: Sequence[Interval] = ((0.25, 0.5), (1.0, 1.25))
SPLITS = tuple([f"{d}-{what}" for d in ("id", "ood") for what in ("dynamics", "objective", "both")]
               + [f"obs-{name}" for name in OBSERVATION_FUNCTIONS if name != "none"])


@dataclasses.dataclass(frozen=True)
class Scenario:
  """One POMDP of the suite.

  Attributes:
    embodiment: "hopper-hop", "walker-walk" or "cheetah-run".
    torso_length: the torso's length factor.
    torso_size: the torso's thickness, mass and inertia factor.
    rho: the target speed as a fraction of ``v_max``.
    observation: a key of ``OBSERVATION_FUNCTIONS``.
    seed: the observation function's seed (Msk-F's fixed mask).
  """

  embodiment: str
  torso_length: float = 1.0
  torso_size: float = 1.0
  rho: float = 1.0
  observation: str = "none"
  seed: int = 0

  def __post_init__(self):
    if self.embodiment not in objectives.EMBODIMENTS:
      raise ValueError(f"unknown embodiment {self.embodiment!r}; choose from "
                       f"{', '.join(objectives.EMBODIMENTS)}.")
    if self.observation not in OBSERVATION_FUNCTIONS:
      raise ValueError(f"unknown observation function {self.observation!r}; choose from "
                       f"{', '.join(OBSERVATION_FUNCTIONS)}.")
    for field in ("torso_length", "torso_size", "rho"):
      if getattr(self, field) <= 0:
        raise ValueError(f"{field} must be positive, got {getattr(self, field)}.")

  @property
  def name(self) -> str:
    """A catalog-safe name, e.g. ``len1.05-size0.93-rho0.70-none``."""
    name = f"len{self.torso_length:.2f}-size{self.torso_size:.2f}-rho{self.rho:.2f}-"
    return name + (self.observation if self.observation == "none" else
                   f"{self.observation}-s{self.seed}")

  def perturbation(self) -> Compose:
    """The torso's thickness / mass (``BodyPartScale`` of the body "torso"), then its length
    (``TorsoLength``, which sets the main geom's half-length from the default)."""
    return Compose(BodyPartScale(("torso",), self.torso_size, label=f"torso_size×"
                                 f"{self.torso_size:g}"), TorsoLength(self.torso_length))

  def observation_function(self):
    function = OBSERVATION_FUNCTIONS[self.observation]
    return function(seed=self.seed) if function is MaskFixed else function()

  def make_env(self, v_max: float, seed: int = 0, **kwargs):
    """The scenario's environment (``benchmarks.envs.make_env`` keyword arguments besides the
    task and seed), with target speed ``rho * v_max``."""
    from benchmarks.envs import make_env  # pylint: disable=import-outside-toplevel
    from benchmarks.shifts.shifted_env import ShiftedEnv  # pylint: disable=import-outside-toplevel
    env = make_env(self.embodiment, seed=seed, **kwargs)
    env.set_reward(objectives.target_speed_reward(self.embodiment, self.rho * v_max))
    env = ShiftedEnv(env, self.perturbation())
    return ObservedEnv(env, self.observation_function(), seed=seed)


def _uniform(rng: np.random.Generator, intervals: Sequence[Interval]) -> float:
  """Uniform over a union of disjoint intervals (one picked in proportion to its length)."""
  lengths = np.array([high - low for low, high in intervals])
  low, high = intervals[int(rng.choice(len(intervals), p=lengths / lengths.sum()))]
  return float(rng.uniform(low, high))


def sample_scenarios(split: str, embodiment: str, count: int, seed: int) -> List[Scenario]:
  """``count`` scenarios of ``split`` for ``embodiment``; the same for the same ``seed``.

  Raises:
    ValueError: an unknown split (the message lists them) or a count below 1.
  """
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}.")
  if count < 1:
    raise ValueError(f"count must be at least 1, got {count}.")
  rng = np.random.default_rng([seed, SPLITS.index(split), objectives.EMBODIMENTS.index(
      embodiment)])
  if split.startswith("obs-"):
    return [Scenario(embodiment, observation=split[4:], seed=int(rng.integers(2**31)))
            for _ in range(count)]
  distribution, varied = split.split("-")
  factors = IN_DISTRIBUTION if distribution == "id" else OUT_OF_DISTRIBUTION
  rhos = RHO_IN if distribution == "id" else RHO_OUT
  scenarios = []
  for _ in range(count):
    length = size = rho = 1.0
    if varied in ("dynamics", "both"):
      length, size = _uniform(rng, factors), _uniform(rng, factors)
    if varied in ("objective", "both"):
      rho = _uniform(rng, rhos)
    scenarios.append(Scenario(embodiment, length, size, rho))
  return scenarios


def scenario_env_factory(scenario: Scenario, v_max: float,
                         **kwargs) -> Callable[[int], object]:
  """``factory(seed)`` of the scenario's environments (the loop's and the generator's form)."""
  return lambda seed: scenario.make_env(v_max, seed=seed, **kwargs)

