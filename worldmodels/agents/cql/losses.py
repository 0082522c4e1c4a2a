"""CQL(H)'s critic regulariser with a uniform action prior (Kumar et al. 2020; V-D4RL B.3).

Shapes: encoder features ``[B, E]``, actions ``[B, A]``, critic values ``[C, B]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from worldmodels.rl.pixels import PixelNetworks


def cql_regulariser(critic_params, networks: PixelNetworks, features: jax.Array,
                    q_data: jax.Array, key: jax.Array, num_samples: int, weight: float):
  """``weight * sum_critics mean_B[log E_{a ~ U[-1, 1]^A} exp Q(s, a) - Q(s, a_data)]``.

  The expectation is estimated from ``num_samples`` uniform actions per state (a log-mean-exp);
  minimising it pushes Q down on actions the data does not take and up on those it does.

  Args:
    critic_params: the critics (differentiated, with the encoder through ``features``).
    networks: the pixel networks.
    features: ``[B, E]``.
    q_data: ``[C, B]`` the critics at the dataset's actions.
    key: PRNG key for the sampled actions.
    num_samples: N uniform actions per state.
    weight: the trade-off factor (V-D4RL table 10).

  Returns:
    The weighted regulariser and its metrics.
  """
  batch, num_critics = features.shape[0], q_data.shape[0]
  action_dim = networks.actor.action_dim
  actions = jax.random.uniform(key, (num_samples, batch, action_dim), minval=-1.0, maxval=1.0)
  repeated = jnp.broadcast_to(features, (num_samples,) + features.shape)
  q_sampled = networks.critic.apply(critic_params, repeated.reshape(num_samples * batch, -1),
                                    actions.reshape(num_samples * batch, action_dim))
  q_sampled = q_sampled.reshape(num_critics, num_samples, batch)
  log_partition = jax.nn.logsumexp(q_sampled, axis=1) - jnp.log(num_samples)  # [C, B]
  gap = jnp.mean(jnp.sum(log_partition - q_data, axis=0))
  return weight * gap, {"cql_gap": gap, "q_uniform_mean": q_sampled.mean()}
