"""Acting in environments: the stateful policy interface, frame stacks and the episode runner.

Every policy, of an agent or built on one (AugWM's test-time context), has two functions:

* ``policy_init(key) -> carry``: the policy's own state at the start of an episode (an RSSM's
  latent and previous action, a context model's sums; ``()`` for memoryless agents);
* ``policy(state, carry, observation, key, eval_mode) -> (action, carry)`` for one unbatched
  observation dict, with ``state`` the agent's trained state.

:class:`EpisodeRunner` is the one place that steps an environment with a policy: the training
loop's evaluation and collection, the zero-shot protocol and the dataset generator all use it.
It resets the carry at every episode start and keys step ``t`` with ``fold_in(key, t)``.
Policies that are pure JAX are jitted once, the key folded inside the jitted call (one device
dispatch per step); a policy whose carry lives on the host (numpy) says so with
``runs_on_host = True`` and is called as it is. :func:`run_episodes` steps many environments in
lockstep with one batched policy call per step (:func:`batch_policy`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import dm_env
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs

EnvFactory = Callable[[int], dm_env.Environment]
Evaluator = Callable[[Any], Dict[str, float]]
"""``agent state -> {metric: value}``: what the loop calls at each evaluation."""


class StatefulPolicy(Protocol):
  """A policy that carries its own state from step to step."""

  def policy_init(self, key: jax.Array) -> Any:
    ...

  def policy(self, state: Any, carry: Any, observation: Dict[str, Any], key: jax.Array,
             eval_mode: bool) -> Tuple[Any, Any]:
    ...


class MemorylessPolicy:
  """``policy_init`` / ``policy`` for agents that act on the current observation only.

  The agent supplies ``act(state, observation [B, ...], key, eval_mode) -> action [B, A]``
  (batched and traceable, also used inside model rollouts); the carry is empty.
  """

  def policy_init(self, key: jax.Array) -> Tuple[()]:
    del key
    return ()

  def policy(self, state, carry, observation, key, eval_mode: bool):
    batched = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], observation)
    return self.act(state, batched, key, eval_mode)[0], carry


def compile_policy(policy: StatefulPolicy) -> Callable[..., Tuple[Any, Any]]:
  """``act(state, carry, observation, key, index, eval_mode) -> (action, carry)``: the policy
  keyed with ``fold_in(key, index)``, jitted (``eval_mode`` static) unless the policy runs on the
  host."""

  def act(state, carry, observation, key, index, eval_mode):
    return policy.policy(state, carry, observation, jax.random.fold_in(key, index), eval_mode)

  if getattr(policy, "runs_on_host", False):
    return act
  return jax.jit(act, static_argnames="eval_mode")


# -- frame stacks -----------------------------------------------------------------------------


class FrameStack(dm_env.Environment):
  """Stacks the last ``k`` frames of image entries on their channel axis, as the samplers
  rebuild them from stored single frames (the first frame repeated at an episode's start).

  Args:
    env: an environment emitting single frames.
    frame_stack: entry -> frames (a spec's ``frame_stack``).
  """

  def __init__(self, env: dm_env.Environment, frame_stack: Mapping[str, int]):
    self.env = env
    self._frame_stack = {key: k for key, k in frame_stack.items() if k > 1}
    self._frames = {key: collections.deque(maxlen=k) for key, k in self._frame_stack.items()}

  def __getattr__(self, name):  # the wrapped environment's own attributes (physics, ...)
    return getattr(self.env, name)

  def observation_spec(self):
    out = dict(self.env.observation_spec())
    for key, k in self._frame_stack.items():
      spec = out[key]
      out[key] = specs.Array(spec.shape[:-1] + (spec.shape[-1] * k,), spec.dtype, name=key)
    return out

  def action_spec(self):
    return self.env.action_spec()

  def _stacked(self, timestep: dm_env.TimeStep, first: bool) -> dm_env.TimeStep:
    observation = dict(timestep.observation)
    for key, frames in self._frames.items():
      frame = observation[key]
      for _ in range(frames.maxlen if first else 1):
        frames.append(frame)
      observation[key] = np.concatenate(frames, axis=-1)
    return timestep._replace(observation=observation)

  def reset(self) -> dm_env.TimeStep:
    return self._stacked(self.env.reset(), first=True)

  def step(self, action) -> dm_env.TimeStep:
    timestep = self.env.step(action)
    return self._stacked(timestep, first=timestep.first())

  def close(self) -> None:
    self.env.close()


def stacked_factory(factory: EnvFactory, frame_stack: Mapping[str, int]) -> EnvFactory:
  """``factory`` whose environments show frame stacks (unchanged when there are none)."""
  if not any(k > 1 for k in frame_stack.values()):
    return factory
  return lambda seed: FrameStack(factory(seed), frame_stack)


# -- the episode runner -----------------------------------------------------------------------


@dataclasses.dataclass
class Step:
  """One environment step: ``observation`` o_t, ``action`` a_t and what followed."""

  observation: Dict[str, np.ndarray]
  action: np.ndarray
  reward: float
  discount: float
  next_observation: Dict[str, np.ndarray]
  last: bool
  first: bool


@dataclasses.dataclass
class Episode:
  """What :meth:`EpisodeRunner.run_episode` returns.

  Attributes:
    rewards: ``[T]`` per-step rewards.
    carry: the policy's carry after the last step (e.g. AugWM's fitted context model).
    steps: the recorded RLDS step rows (``record=True``), else None.
  """

  rewards: np.ndarray
  carry: Any
  steps: Optional[List[Step]] = None

  @property
  def total(self) -> float:
    return float(self.rewards.sum())


class EpisodeRunner:
  """Steps one environment with a stateful policy.

  ``begin(key)`` starts an episode (environment reset, ``policy_init(key)``); ``step`` acts
  once. The caller begins the next episode after a last step, so the training loop's collection
  can run across episode boundaries. An explicit ``action`` bypasses the policy (uniform random
  steps), leaving its carry as it is.

  Attributes:
    timestep: the environment's latest time step.
    carry: the policy's carry (after a last step: the carry at the end of that episode).
    t: steps taken in the current episode.
  """

  def __init__(self, env: dm_env.Environment, policy: Optional[StatefulPolicy] = None, *,
               eval_mode: bool = True, compiled: Optional[Callable] = None):
    """Args:
      env: the environment (observations: dicts of arrays).
      policy: the policy (None: every step gets an explicit action).
      eval_mode: passed to the policy (deterministic actions for evaluation).
      compiled: ``compile_policy(policy)`` made once by the caller, so that runners over many
        environments share one compilation.
    """
    self.env, self._policy, self.eval_mode = env, policy, eval_mode
    self._act = compiled or (compile_policy(policy) if policy is not None else None)
    self.timestep: Optional[dm_env.TimeStep] = None
    self.carry: Any = None
    self.t = 0

  def begin(self, key: jax.Array) -> dm_env.TimeStep:
    """Starts an episode: resets the environment and the policy's carry."""
    self.timestep = self.env.reset()
    self.carry = self._policy.policy_init(key) if self._policy is not None else None
    self.t = 0
    return self.timestep

  def step(self, state: Any, key: jax.Array, index: int = 0,
           action: Optional[np.ndarray] = None) -> Step:
    """Acts once: the policy keyed with ``fold_in(key, index)``, or the given ``action``."""
    observation = self.timestep.observation
    if action is None:
      action, self.carry = self._act(state, self.carry, observation, key, np.int32(index),
                                     eval_mode=self.eval_mode)
    action = np.asarray(action, np.float32)
    timestep = self.env.step(action)
    step = Step(observation, action, float(timestep.reward or 0.0),
                1.0 if timestep.discount is None else float(timestep.discount),
                timestep.observation, timestep.last(), self.t == 0)
    self.t += 1
    self.timestep = timestep
    return step

  def run_episode(self, state: Any, key: jax.Array, *, record: bool = False,
                  actions: Optional[Callable[[Dict[str, np.ndarray], int], np.ndarray]] = None
                  ) -> Episode:
    """One whole episode: ``policy_init(key)``, then step ``t`` keyed ``fold_in(key, t)``.

    Args:
      state: the agent's state.
      key: the episode's key.
      record: keep every :class:`Step` (see :func:`episode_to_rlds`).
      actions: ``(observation, t) -> action`` instead of the policy (e.g. random actions).
    """
    self.begin(key)
    rewards, recorded = [], []
    while True:
      action = None if actions is None else actions(self.timestep.observation, self.t)
      step = self.step(state, key, self.t, action)
      rewards.append(step.reward)
      if record:
        recorded.append(step)
      if step.last:
        return Episode(np.asarray(rewards), self.carry, recorded if record else None)

  def close(self) -> None:
    self.env.close()


@dataclasses.dataclass(frozen=True)
class BatchedCalls:
  """A stateful policy acting on ``B`` environments at once (see :func:`batch_policy`).

  Attributes:
    init: ``keys [B, 2] -> carry`` (one episode start per environment).
    act: ``(state, carry, observations {name: [B, ...]}, keys [B, 2], index, eval_mode) ->
      (actions [B, A], carry)``, each environment keyed ``fold_in(keys[i], index)``.
    item: ``(carry, i) -> carry`` of environment ``i`` alone, as the one-environment policy
      would have it.
  """

  init: Callable[[jax.Array], Any]
  act: Callable[..., Tuple[Any, Any]]
  item: Callable[[Any, int], Any]


def batch_policy(policy: StatefulPolicy) -> Optional[BatchedCalls]:
  """``policy`` over a batch of environments, or None when it cannot be batched.

  A pure-JAX policy is vmapped over its carry, observation and key (one jitted call per step).
  A host policy batches itself when it has ``policy_init_batch(keys) -> carry``,
  ``carry_item(carry, i)`` and a ``policy`` that takes ``[B, ...]`` observations and ``[B, 2]``
  keys, and ``can_batch`` is true (AugWM's test-time context); other host policies return None.
  """
  if getattr(policy, "runs_on_host", False):
    if not getattr(policy, "can_batch", False):
      return None
    fold = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))

    def host_act(state, carry, observations, keys, index, eval_mode):
      return policy.policy(state, carry, observations, fold(keys, index), eval_mode)

    return BatchedCalls(policy.policy_init_batch, host_act, policy.carry_item)

  @functools.partial(jax.jit, static_argnames="eval_mode")
  def act(state, carry, observations, keys, index, eval_mode):
    one = lambda c, o, k: policy.policy(state, c, o, jax.random.fold_in(k, index), eval_mode)
    return jax.vmap(one)(carry, observations, keys)

  item = lambda carry, i: jax.tree_util.tree_map(lambda x: x[i], carry)
  return BatchedCalls(jax.jit(jax.vmap(policy.policy_init)), act, item)


def run_episodes(envs: Sequence[dm_env.Environment], policy: StatefulPolicy, state: Any,
                 keys: Sequence[jax.Array], *, eval_mode: bool = True,
                 calls: Optional[BatchedCalls] = None) -> List[Episode]:
  """One episode in each of ``envs`` at once, in lockstep: the batched form of
  :meth:`EpisodeRunner.run_episode` (episode ``i`` keyed ``keys[i]``, step ``t`` with
  ``fold_in(keys[i], t)``), with one policy call per step for all environments.

  An environment whose episode has ended is no longer stepped; its carry is the one after its
  last step. Returns agree with ``run_episode``'s up to floating-point rounding (a batched
  matmul may round differently), so a long chaotic episode can end elsewhere.

  Args:
    envs: ``B`` environments (observations: dicts of arrays with the same shapes).
    policy: the policy; it must batch (:func:`batch_policy`) unless ``calls`` is given.
    state: the agent's state.
    keys: ``B`` episode keys.
    eval_mode: passed to the policy.
    calls: ``batch_policy(policy)``, made once by the caller.

  Returns:
    ``B`` :class:`Episode` (without recorded steps).

  Raises:
    ValueError: the policy cannot be batched, or ``keys`` does not match ``envs``.
  """
  calls = calls or batch_policy(policy)
  if calls is None:
    raise ValueError(f"{type(policy).__name__} cannot act on a batch of environments; "
                     "use EpisodeRunner.run_episode per environment.")
  if len(keys) != len(envs):
    raise ValueError(f"run_episodes got {len(envs)} environments and {len(keys)} keys.")
  timesteps = [env.reset() for env in envs]
  keys = jnp.stack(list(keys))
  carry = calls.init(keys)
  rewards: List[List[float]] = [[] for _ in envs]
  finals: List[Any] = [None] * len(envs)
  running = np.ones(len(envs), bool)
  t = 0
  while running.any():
    observations = {name: np.stack([np.asarray(ts.observation[name]) for ts in timesteps])
                    for name in timesteps[0].observation}
    actions, carry = calls.act(state, carry, observations, keys, np.int32(t),
                               eval_mode=eval_mode)
    actions = np.asarray(actions, np.float32)
    for i in np.flatnonzero(running):
      timesteps[i] = envs[i].step(actions[i])
      rewards[i].append(float(timesteps[i].reward or 0.0))
      if timesteps[i].last():
        running[i] = False
        finals[i] = calls.item(carry, i)
    t += 1
  return [Episode(np.asarray(r), final) for r, final in zip(rewards, finals)]


def episode_to_rlds(steps: Sequence[Step], keys: Optional[Sequence[str]] = None
                    ) -> Dict[str, Any]:
  """A recorded episode as RLDS step arrays (``T + 1`` steps; the last holds o_T only).

  Args:
    steps: the episode's steps, first to last.
    keys: observation entries to keep (default: all).
  """
  keys = list(steps[0].observation) if keys is None else list(keys)
  action_dim = steps[0].action.shape[-1]
  observations = {key: np.stack([s.observation[key] for s in steps]
                                + [steps[-1].next_observation[key]]) for key in keys}
  terminal = steps[-1].discount == 0.0
  flags = np.zeros(len(steps) + 1, bool)
  first, last, is_terminal = flags.copy(), flags.copy(), flags.copy()
  first[0], last[-1], is_terminal[-1] = True, True, terminal
  return {
      "observation": observations,
      "action": np.concatenate([np.stack([s.action for s in steps]),
                                np.zeros((1, action_dim), np.float32)]).astype(np.float32),
      "reward": np.asarray([s.reward for s in steps] + [0.0], np.float32),
      "discount": np.asarray([s.discount for s in steps] + [0.0], np.float32),
      "is_first": first, "is_last": last, "is_terminal": is_terminal,
  }


# -- evaluation -------------------------------------------------------------------------------


def evaluate(policy: StatefulPolicy, state: Any,
             env_factories: EnvFactory | Sequence[EnvFactory] | Mapping[str, EnvFactory],
             num_episodes: int, seed: int, *, compiled: Optional[Callable] = None
             ) -> Dict[str, float]:
  """Deterministic returns of ``policy`` over ``num_episodes`` per environment factory.

  Episode ``e`` of every factory uses env seed ``seed + e`` and key ``PRNGKey(seed + e)`` (never
  the training rng), so scenarios differ only by their dynamics.

  Args:
    env_factories: one factory, a list, or name -> factory (many scenarios, e.g. MrCoM's).

  Returns:
    ``return_mean``, ``return_std``, ``return_min``, ``return_max`` and ``episodes`` over all
    episodes; with several factories also ``<name>/return_mean`` per factory (names: the
    mapping's keys or the list positions).
  """
  if callable(env_factories):
    factories = {"": env_factories}
  elif isinstance(env_factories, Mapping):
    factories = dict(env_factories)
  else:
    factories = {str(i): f for i, f in enumerate(env_factories)}
  compiled = compiled or compile_policy(policy)
  all_returns, out = [], {}
  for name, factory in factories.items():
    returns = []
    for episode in range(num_episodes):
      runner = EpisodeRunner(factory(seed + episode), policy, eval_mode=True, compiled=compiled)
      returns.append(runner.run_episode(state, jax.random.PRNGKey(seed + episode)).total)
      runner.close()
    if len(factories) > 1:
      out[f"{name}/return_mean"] = float(np.mean(returns))
    all_returns += returns
  returns = np.asarray(all_returns)
  out.update({"return_mean": float(returns.mean()), "return_std": float(returns.std()),
              "return_min": float(returns.min()), "return_max": float(returns.max()),
              "episodes": float(returns.size)})
  return out


class EnvironmentEvaluator:
  """The loop's default :data:`Evaluator`: :func:`evaluate` of the agent's policy with frame
  stacks as its spec declares them."""

  def __init__(self, agent, env_factories, num_episodes: int, seed: int):
    stacks = agent.spec.frame_stack
    if callable(env_factories):
      self.factories = stacked_factory(env_factories, stacks)
    elif isinstance(env_factories, Mapping):
      self.factories = {k: stacked_factory(f, stacks) for k, f in env_factories.items()}
    else:
      self.factories = [stacked_factory(f, stacks) for f in env_factories]
    self.agent, self.num_episodes, self.seed = agent, num_episodes, seed
    self._compiled = compile_policy(agent)

  def __call__(self, state) -> Dict[str, float]:
    return evaluate(self.agent, state, self.factories, self.num_episodes, self.seed,
                    compiled=self._compiled)
