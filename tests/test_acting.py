"""The stateful policy interface, the episode runner, frame stacks and multi-scenario
evaluation."""

from __future__ import annotations

import dm_env
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs

from tests.conftest import synthetic_steps
from worldmodels.data.samplers import build_index, stack_frames
from worldmodels.data.spec import DataSpec
import pytest

from worldmodels.training.acting import (EpisodeRunner, FrameStack, batch_policy, episode_to_rlds,
                                         evaluate, run_episodes)
from worldmodels.training.agent import Phase
from worldmodels.training.loop import LoopConfig, train
from worldmodels.training.replay import ReplaySampler


class CountingEnv(dm_env.Environment):
  """``length`` steps per episode; ``state = [t, offset]``; ``pixels`` = t in every pixel;
  reward = ``action[0]``; records every action it receives."""

  def __init__(self, length: int = 5, offset: float = 0.0):
    self.length, self.offset, self.actions, self.t = length, offset, [], 0

  def observation_spec(self):
    return {"state": specs.Array((2,), np.float32, "state"),
            "pixels": specs.Array((2, 2, 1), np.uint8, "pixels")}

  def action_spec(self):
    return specs.BoundedArray((2,), np.float32, -1.0, 1.0)

  def _observation(self):
    return {"state": np.asarray([self.t, self.offset], np.float32),
            "pixels": np.full((2, 2, 1), self.t, np.uint8)}

  def reset(self):
    self.t = 0
    return dm_env.restart(self._observation())

  def step(self, action):
    self.actions.append(np.asarray(action).copy())
    self.t += 1
    reward = float(action[0])
    if self.t == self.length:
      return dm_env.truncation(reward, self._observation())
    return dm_env.transition(reward, self._observation())


class CountingAgent:
  """A learner whose policy carries the number of steps taken in the episode and acts with
  ``a = (count / 10 + w, state[1])``; its update moves ``w`` towards the batch's mean reward."""

  def __init__(self, spec):
    self.spec, self.config = spec, None

  def init(self, key):
    del key
    return {"w": jnp.zeros(()), "step": jnp.zeros((), jnp.int32)}

  def update(self, state, batch, frozen=None):
    del frozen
    w = state["w"] + 0.0 * batch.reward.mean()
    return {"w": w, "step": state["step"] + 1}, {"loss": batch.reward.mean()}

  def policy_init(self, key):
    del key
    return jnp.zeros((), jnp.int32)

  def policy(self, state, carry, observation, key, eval_mode):
    del key, eval_mode
    action = jnp.stack([carry / 10 + state["w"], observation["state"][1]])
    return action, carry + 1

  def phases(self):
    return [Phase("counting", "online", 12, self.update, ReplaySampler(4))]


SPEC = DataSpec({"state": ((2,), np.float32), "pixels": ((2, 2, 1), np.uint8)}, 2)


def test_carry_is_threaded_and_reset_at_every_episode():
  agent, env = CountingAgent(SPEC), CountingEnv(length=4)
  runner = EpisodeRunner(env, agent)
  state = agent.init(None)
  for seed in range(2):
    episode = runner.run_episode(state, jax.random.PRNGKey(seed), record=True)
    assert int(episode.carry) == 4 and len(episode.steps) == 4
    np.testing.assert_allclose(episode.rewards, [0.0, 0.1, 0.2, 0.3], atol=1e-6)
  np.testing.assert_allclose(np.asarray(env.actions)[:, 0], [0, .1, .2, .3] * 2, atol=1e-6)
  rows = episode_to_rlds(episode.steps)
  np.testing.assert_array_equal(rows["observation"]["state"][:, 0], [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(rows["is_last"], [False] * 4 + [True])
  assert rows["action"].shape == (5, 2) and not rows["action"][-1].any()


def test_run_episodes_steps_a_batch_in_lockstep_as_the_runner_would_one_by_one():
  """Episodes of different lengths: each ends on its own, is not stepped after, and keeps the
  carry and rewards of the same episode run alone."""
  agent = CountingAgent(SPEC)
  state = agent.init(None)
  state["w"] = jnp.asarray(0.5)
  lengths, offsets = (3, 5, 4), (0.0, 0.2, -0.4)
  envs = [CountingEnv(length, offset) for length, offset in zip(lengths, offsets)]
  keys = [jax.random.PRNGKey(seed) for seed in range(3)]
  episodes = run_episodes(envs, agent, state, keys)
  for env, episode, length, offset, key in zip(envs, episodes, lengths, offsets, keys):
    alone = EpisodeRunner(CountingEnv(length, offset), agent).run_episode(state, key)
    np.testing.assert_allclose(episode.rewards, alone.rewards, rtol=1e-6)
    assert int(episode.carry) == int(alone.carry) == length
    assert len(env.actions) == length  # not stepped after its last step
    np.testing.assert_allclose(np.asarray(env.actions)[:, 1], offset, atol=1e-6)


class _HostOnlyPolicy:
  runs_on_host = True

  def policy_init(self, key):
    return 0

  def policy(self, state, carry, observation, key, eval_mode):
    return np.zeros(2, np.float32), carry + 1


def test_a_host_policy_that_does_not_batch_is_refused_by_run_episodes():
  assert batch_policy(_HostOnlyPolicy()) is None
  with pytest.raises(ValueError, match="cannot act on a batch"):
    run_episodes([CountingEnv()], _HostOnlyPolicy(), None, [jax.random.PRNGKey(0)])
  with pytest.raises(ValueError, match="1 environments and 2 keys"):
    run_episodes([CountingEnv()], CountingAgent(SPEC), None, [jax.random.PRNGKey(0)] * 2)


def test_the_loop_collects_with_the_carry_and_resets_it_per_episode(tmp_path):
  """Online collection across chunk and episode boundaries: each episode's actions restart at
  0, so the carry is passed from step to step and re-initialised at every episode start."""
  agent = CountingAgent(SPEC)
  loop = LoopConfig(steps_per_chunk=5, eval_every=0, eval_episodes=0, checkpoint_every=0,
                    replay_capacity=100, log_every_seconds=60.0)
  envs = []

  def factory(seed):
    envs.append(CountingEnv(length=3, offset=float(seed)))
    return envs[-1]

  result = train(agent, workdir=str(tmp_path), loop=loop, env_factory=factory)
  actions = np.asarray(envs[0].actions)
  np.testing.assert_allclose(actions[:, 0], [0.0, 0.1, 0.2] * 4, atol=1e-6)
  assert int(result.state["step"]) == 12
  replay = result.replay
  assert replay.num_episodes == 4
  np.testing.assert_allclose(np.asarray(replay.action)[:, 0], [0.0, 0.1, 0.2, 0.0] * 4,
                             atol=1e-6)


def test_frame_stack_matches_the_sampler():
  """The environment wrapper shows at step t exactly the stack the sampler rebuilds from the
  stored single frames of the same episode."""
  env = FrameStack(CountingEnv(length=6), {"pixels": 3})
  assert env.observation_spec()["pixels"].shape == (2, 2, 3)
  live = [env.reset().observation["pixels"]]
  for _ in range(6):
    live.append(env.step(np.zeros(2, np.float32)).observation["pixels"])
  steps = synthetic_steps((6,), obs_dim=3, action_dim=2, frame=(2, 2, 1))
  index = build_index(steps)
  rebuilt = stack_frames(jnp.asarray(steps.observation["pixels"]), jnp.arange(7),
                         index.episode_start, 3)
  np.testing.assert_array_equal(np.asarray(rebuilt), np.stack(live))
  np.testing.assert_array_equal(live[0][0, 0], [0, 0, 0])
  np.testing.assert_array_equal(live[4][0, 0], [2, 3, 4])


def test_evaluate_over_several_scenarios():
  agent = CountingAgent(SPEC)
  out = evaluate(agent, agent.init(None), {"short": lambda seed: CountingEnv(2),
                                           "long": lambda seed: CountingEnv(4)},
                 num_episodes=2, seed=7)
  np.testing.assert_allclose(out["short/return_mean"], 0.1, atol=1e-6)
  np.testing.assert_allclose(out["long/return_mean"], 0.6, atol=1e-6)
  np.testing.assert_allclose(out["return_mean"], 0.35, atol=1e-6)
  assert out["episodes"] == 4.0
