"""Shifted dynamics: perturbations of a MuJoCo model, as in the AugWM zero-shot experiments.

A perturbation is a small frozen dataclass with a ``name`` (a short table label such as
``mass×0.75``) and ``apply(model, defaults)``, which writes its fields of the raw
``mujoco.MjModel`` from the model's DEFAULT values (``ModelDefaults``), so that applying
``MassScale(2.0)`` and then ``MassScale(0.5)`` leaves half the default mass, never a compound.

``apply_perturbation`` is the one entry point that changes a model: it restores every field
that any perturbation may touch from the defaults, applies the perturbation, then calls
``mujoco.mj_setConst`` (on a scratch ``MjData``, so the simulation state is untouched). That
call is needed: MuJoCo derives constants from the masses and gears at compile time
(``dof_invweight0``, ``body_invweight0``, ``dof_M0``, ``actuator_acc0``, ``body_subtreemass``),
and the constraint solver uses the inverse weights to soften contacts and limits, so a model
whose masses changed without it would not behave like one compiled with those masses.

``MidEpisodeSwitch`` describes dynamics that change mid-episode; the environment side (applying
perturbations to an env, switching them during an episode) is ``benchmarks.shifts.shifted_env``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol, Sequence

import mujoco
import numpy as np

# The paper's mass x damping grids (AugWM section 5): 7 x 7 for HalfCheetah, 5 x 5 for Walker2d.
CHEETAH_GRID_FACTORS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
WALKER_GRID_FACTORS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)

# gymnasium HalfCheetah-v5 names of the body parts of the modified-agent benchmark (AugWM
# appendix B.4, from gym-extensions): ``(body names, geom names)``; the head is a geom of the
# torso body.
_HALFCHEETAH_BODY_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "foot": (("bfoot", "ffoot"), ()),
    "leg": (("bshin", "fshin"), ()),
    "thigh": (("bthigh", "fthigh"), ()),
    "torso": (("torso",), ()),
    "head": ((), ("head",)),
}
_BIG_BODY_PART_FACTOR = 1.25
_SMALL_BODY_PART_FACTOR = 0.75

# gymnasium Ant-v5 actuators of each leg (hip, ankle); the XML orders the actuators
# hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3, and leg k uses hip_{k+1}.
_ANT_LEG_ACTUATORS: tuple[tuple[int, int], ...] = ((2, 3), (4, 5), (6, 7), (0, 1))

# Names of the main torso geom across dm_control ("torso") and gymnasium ("torso_geom").
_TORSO_GEOM_NAMES = ("torso", "torso_geom")


@dataclasses.dataclass(frozen=True)
class ModelDefaults:
  """Read-only copies of the model fields that perturbations write, taken before any change.

  Attributes:
    body_mass: ``[nbody]``.
    body_inertia: ``[nbody, 3]`` principal inertias.
    body_pos: ``[nbody, 3]`` positions in the parent frame.
    dof_damping: ``[nv]``.
    geom_size: ``[ngeom, 3]``.
    geom_pos: ``[ngeom, 3]`` positions in the body frame.
    geom_rbound: ``[ngeom]`` bounding-sphere radii (collision broad phase).
    geom_aabb: ``[ngeom, 6]`` local bounding boxes (centre, half sizes).
    actuator_gear: ``[nu, 6]``.
  """

  body_mass: np.ndarray
  body_inertia: np.ndarray
  body_pos: np.ndarray
  dof_damping: np.ndarray
  geom_size: np.ndarray
  geom_pos: np.ndarray
  geom_rbound: np.ndarray
  geom_aabb: np.ndarray
  actuator_gear: np.ndarray

  @classmethod
  def snapshot(cls, model: mujoco.MjModel) -> ModelDefaults:
    """Copies the current values of ``model`` (call it before perturbing)."""
    arrays = {}
    for field in dataclasses.fields(cls):
      array = np.array(getattr(model, field.name), copy=True)
      array.flags.writeable = False
      arrays[field.name] = array
    return cls(**arrays)

  def restore(self, model: mujoco.MjModel) -> None:
    """Writes every snapshotted field back into ``model``."""
    for field in dataclasses.fields(self):
      getattr(model, field.name)[...] = getattr(self, field.name)


class Perturbation(Protocol):
  """A change of a MuJoCo model, written from the defaults (never compounding)."""

  @property
  def name(self) -> str:
    """Short label for tables, e.g. ``mass×0.75``."""

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    """Sets this perturbation's fields of ``model`` from ``defaults``."""


def _factor_label(quantity: str, factor: float) -> str:
  return f"{quantity}×{factor:g}"


@dataclasses.dataclass(frozen=True)
class MassScale:
  """Every body's mass and principal inertias × ``factor``."""

  factor: float

  @property
  def name(self) -> str:
    return _factor_label("mass", self.factor)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    model.body_mass[:] = defaults.body_mass * self.factor
    model.body_inertia[:] = defaults.body_inertia * self.factor


@dataclasses.dataclass(frozen=True)
class DampingScale:
  """Every degree of freedom's damping (``dof_damping``) × ``factor``."""

  factor: float

  @property
  def name(self) -> str:
    return _factor_label("damping", self.factor)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    model.dof_damping[:] = defaults.dof_damping * self.factor


@dataclasses.dataclass(frozen=True)
class BodyPartScale:
  """Bigger or smaller body parts: mass, inertia and geom sizes × ``factor``.

  For each body in ``body_names``: its mass and inertias, and the sizes (with the collision
  bounds ``geom_rbound`` / ``geom_aabb``) of all its geoms, × ``factor``. Geom positions and
  joint anchors stay put, so a limb grows about its centre (as in gym-extensions, whose
  modified HalfCheetah the AugWM paper uses).

  For each geom in ``geom_names`` (a part that is not a body of its own, e.g. HalfCheetah's
  head, a geom of the torso body): its size × ``factor``, and its share of its body's mass ×
  ``factor``, the share being its volume over the volume of all its body's geoms (equal
  density); the body's inertias scale with its mass.

  Attributes:
    body_names: names of the bodies to scale.
    factor: the scale, e.g. 1.25 (big) or 0.75 (small).
    geom_names: names of single geoms to scale.
    label: the table label; None gives ``"<names>×<factor>"``.
  """

  body_names: tuple[str, ...]
  factor: float
  geom_names: tuple[str, ...] = ()
  label: str | None = None

  @property
  def name(self) -> str:
    if self.label is not None:
      return self.label
    return _factor_label("+".join(self.body_names + self.geom_names), self.factor)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    for body_name in self.body_names:
      body = model.body(body_name).id
      model.body_mass[body] = defaults.body_mass[body] * self.factor
      model.body_inertia[body] = defaults.body_inertia[body] * self.factor
      for geom in np.flatnonzero(model.geom_bodyid == body):
        _scale_geom(model, defaults, geom, self.factor)
    for geom_name in self.geom_names:
      geom = model.geom(geom_name).id
      body = model.geom_bodyid[geom]
      body_geoms = np.flatnonzero(model.geom_bodyid == body)
      share = _geom_volume(model, defaults, geom) / sum(
          _geom_volume(model, defaults, g) for g in body_geoms)
      mass_ratio = 1.0 + share * (self.factor - 1.0)
      model.body_mass[body] = defaults.body_mass[body] * mass_ratio
      model.body_inertia[body] = defaults.body_inertia[body] * mass_ratio
      _scale_geom(model, defaults, geom, self.factor)


def _scale_geom(model: mujoco.MjModel, defaults: ModelDefaults, geom: int,
                factor: float) -> None:
  """Geom size and local collision bounds × ``factor`` (from the defaults)."""
  model.geom_size[geom] = defaults.geom_size[geom] * factor
  model.geom_rbound[geom] = defaults.geom_rbound[geom] * factor
  model.geom_aabb[geom] = defaults.geom_aabb[geom] * factor


def _geom_volume(model: mujoco.MjModel, defaults: ModelDefaults, geom: int) -> float:
  """Volume of a primitive geom at its default size."""
  size = defaults.geom_size[geom]
  geom_type = mujoco.mjtGeom(int(model.geom_type[geom]))
  if geom_type == mujoco.mjtGeom.mjGEOM_SPHERE:
    return 4.0 / 3.0 * math.pi * size[0] ** 3
  if geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE:
    return math.pi * size[0] ** 2 * 2.0 * size[1] + 4.0 / 3.0 * math.pi * size[0] ** 3
  if geom_type == mujoco.mjtGeom.mjGEOM_CYLINDER:
    return math.pi * size[0] ** 2 * 2.0 * size[1]
  if geom_type == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
    return 4.0 / 3.0 * math.pi * float(np.prod(size))
  if geom_type == mujoco.mjtGeom.mjGEOM_BOX:
    return 8.0 * float(np.prod(size))
  raise ValueError(f"No volume formula for geom {model.geom(geom).name!r} of type {geom_type}.")


def halfcheetah_body_part(part: str, big: bool) -> BodyPartScale:
  """The AugWM / gym-extensions modified HalfCheetah (gymnasium ``HalfCheetah-v5`` names).

  Args:
    part: "foot" (bfoot + ffoot), "leg" (bshin + fshin), "thigh" (bthigh + fthigh), "torso" or
      "head" (the head geom of the torso body).
    big: × 1.25 if True, else × 0.75.

  Returns:
    A ``BodyPartScale`` named ``big_<part>`` or ``small_<part>``.

  Raises:
    ValueError: unknown ``part``.
  """
  if part not in _HALFCHEETAH_BODY_PARTS:
    raise ValueError(f"Unknown body part {part!r}; known: {', '.join(_HALFCHEETAH_BODY_PARTS)}.")
  body_names, geom_names = _HALFCHEETAH_BODY_PARTS[part]
  factor = _BIG_BODY_PART_FACTOR if big else _SMALL_BODY_PART_FACTOR
  return BodyPartScale(body_names, factor, geom_names,
                       label=f"{'big' if big else 'small'}_{part}")


@dataclasses.dataclass(frozen=True)
class CrippledActuators:
  """The actuators at ``indices`` are disabled: their gear is zero, so their action does nothing.

  Attributes:
    indices: actuator (= action dimension) indices.
    label: the table label; None gives ``crippled:<i>+<j>``.
  """

  indices: tuple[int, ...]
  label: str | None = None

  @property
  def name(self) -> str:
    if self.label is not None:
      return self.label
    return "crippled:" + "+".join(str(index) for index in self.indices)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    for index in self.indices:
      if not 0 <= index < model.nu:
        raise ValueError(f"Actuator index {index} out of range for {model.nu} actuators.")
      model.actuator_gear[index] = 0.0


def crippled_ant_legs(*legs: int) -> CrippledActuators:
  """Cripples whole legs of gymnasium ``Ant-v5`` (hip and ankle actuators), as in AugWM table 2.

  Args:
    *legs: leg numbers 0 to 3 (0 front left, 1 front right, 2 back left, 3 back right; the XML's
      legs 1 to 4).

  Returns:
    ``CrippledActuators`` named ``crippled_leg:<legs>``.
  """
  indices = []
  for leg in legs:
    if not 0 <= leg < len(_ANT_LEG_ACTUATORS):
      raise ValueError(f"Ant legs are 0 to {len(_ANT_LEG_ACTUATORS) - 1}, got {leg}.")
    indices.extend(_ANT_LEG_ACTUATORS[leg])
  return CrippledActuators(tuple(sorted(indices)),
                           label="crippled_leg:" + "+".join(str(leg) for leg in legs))


@dataclasses.dataclass(frozen=True)
class TorsoLength:
  """The torso stretched along its long axis by ``factor`` (mass and inertia unchanged).

  The torso is the body named "torso" and its main geom the capsule or cylinder named "torso"
  (dm_control) or "torso_geom" (gymnasium). With ``a`` that geom's axis in the body frame and
  ``c`` its centre, the body frame is stretched along ``a`` about ``c``: a point ``p`` becomes
  ``p + (factor - 1) ((p - c) · a) a``. Scaled:

  * the torso geom's half-length (``geom_size[1]``) and its collision bounds;
  * the positions of the torso body's other geoms and of its child bodies (the hips);
  * when the torso hangs from the world body, its ``body_pos`` is raised by the amount its
    lowest child body moved down, so the legs keep their height above the floor.

  Unchanged: masses, inertias, the centre of mass in the body frame, cameras, lights, sites.
  Per domain:

  * dm_control walker: torso capsule along z (half-length 0.3 about the body origin); hips
    ``right_thigh`` / ``left_thigh`` at z = -0.3 move to -0.3 f; torso raised by 0.3 (f - 1).
  * dm_control hopper: torso capsule along z from -0.05 to 0.2 (centre 0.075, half-length
    0.125); the ``nose`` geom and the ``pelvis`` body (at z = -0.05) stretch about 0.075; torso
    raised by 0.125 (f - 1).
  * dm_control cheetah: torso capsule along x from -0.5 to 0.5; ``bthigh`` / ``fthigh`` move
    to x = -/+0.5 f and the ``head`` geom to x = 0.6 f; nothing is raised (the axis is level).
  * gymnasium HalfCheetah / Walker2d / Hopper: the same rule on their torso ("torso_geom" for
    the last two).

  Attributes:
    factor: the length scale, e.g. 1.2.
  """

  factor: float

  @property
  def name(self) -> str:
    return _factor_label("torso_len", self.factor)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    torso = model.body("torso").id
    geom = _torso_geom(model, torso)
    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, model.geom_quat[geom])
    axis = rotation.reshape(3, 3)[:, 2]
    centre = defaults.geom_pos[geom]

    def stretch(point: np.ndarray) -> np.ndarray:
      return point + (self.factor - 1.0) * float(np.dot(point - centre, axis)) * axis

    # The radius as it is now: the default, or scaled by a perturbation composed before this
    # one (e.g. ``BodyPartScale`` of the torso); the half-length from the default.
    radius, half_length = model.geom_size[geom, 0], defaults.geom_size[geom, 1]
    model.geom_size[geom, 1] = half_length * self.factor
    model.geom_rbound[geom] = half_length * self.factor + radius
    model.geom_aabb[geom, 5] = half_length * self.factor + radius
    for other in np.flatnonzero(model.geom_bodyid == torso):
      if other != geom:
        model.geom_pos[other] = stretch(defaults.geom_pos[other])
    children = np.flatnonzero(model.body_parentid == torso)
    for child in children:
      model.body_pos[child] = stretch(defaults.body_pos[child])
    if children.size and model.body_parentid[torso] == 0:
      lowest = children[np.argmin(defaults.body_pos[children, 2])]
      drop = defaults.body_pos[lowest, 2] - model.body_pos[lowest, 2]
      model.body_pos[torso, 2] = defaults.body_pos[torso, 2] + drop


def _torso_geom(model: mujoco.MjModel, torso: int) -> int:
  """The torso body's main geom: a capsule or cylinder named "torso" or "torso_geom"."""
  for geom in np.flatnonzero(model.geom_bodyid == torso):
    geom_type = mujoco.mjtGeom(int(model.geom_type[geom]))
    if model.geom(geom).name in _TORSO_GEOM_NAMES and geom_type in (
        mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
      return int(geom)
  raise ValueError("TorsoLength needs a capsule or cylinder torso geom named one of "
                   f"{_TORSO_GEOM_NAMES} in the body 'torso'.")


@dataclasses.dataclass(frozen=True, init=False)
class Compose:
  """Several perturbations applied in order; ``Compose(a, b).name == "a.name,b.name"``.

  Attributes:
    perturbations: the perturbations, applied first to last.
  """

  perturbations: tuple[Perturbation, ...]

  def __init__(self, *perturbations: Perturbation):
    object.__setattr__(self, "perturbations", tuple(perturbations))

  @property
  def name(self) -> str:
    return ",".join(perturbation.name for perturbation in self.perturbations)

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    for perturbation in self.perturbations:
      perturbation.apply(model, defaults)


@dataclasses.dataclass(frozen=True)
class MidEpisodeSwitch:
  """Dynamics that change during an episode (AugWM figure 8: a motor fault at step 500).

  Inside a ``ShiftedEnv``: ``before`` holds from each reset, and agent steps ``step``,
  ``step + 1``, ... (0-based) are simulated with ``after``. Applied on its own (``apply``), it
  is ``before``.

  Attributes:
    step: the first agent step of the episode simulated with ``after``.
    before: the dynamics at reset.
    after: the dynamics from agent step ``step`` on.
  """

  step: int
  before: Perturbation
  after: Perturbation

  @property
  def name(self) -> str:
    return f"{self.before.name}→{self.after.name}@{self.step}"

  def apply(self, model: mujoco.MjModel, defaults: ModelDefaults) -> None:
    self.before.apply(model, defaults)

  def at(self, step_in_episode: int) -> Perturbation:
    """The perturbation in force for agent step ``step_in_episode`` (0-based)."""
    return self.before if step_in_episode < self.step else self.after


def grid(mass_factors: Sequence[float], damping_factors: Sequence[float]) -> list[Compose]:
  """The mass x damping grid: ``Compose(MassScale(m), DampingScale(d))`` per cell.

  Returns:
    ``len(damping_factors) * len(mass_factors)`` cells, damping-major (row = damping,
    column = mass), named e.g. ``mass×0.75,damping×1.5``.
  """
  return [Compose(MassScale(mass), DampingScale(damping))
          for damping in damping_factors for mass in mass_factors]


def apply_perturbation(model: mujoco.MjModel, perturbation: Perturbation,
                       defaults: ModelDefaults) -> None:
  """Sets ``model`` to ``defaults`` changed by ``perturbation`` alone, consistently.

  Restores every field in ``defaults`` first (so a previous perturbation leaves no trace),
  applies ``perturbation``, then recomputes MuJoCo's derived constants (``mj_setConst``) on a
  scratch ``MjData``, leaving any simulation state as it was.
  """
  defaults.restore(model)
  perturbation.apply(model, defaults)
  mujoco.mj_setConst(model, mujoco.MjData(model))
