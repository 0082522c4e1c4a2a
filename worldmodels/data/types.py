"""In-memory form of an episodic dataset: flat step arrays, episodes back to back.

Step convention (RLDS). An episode with ``T`` transitions has ``T + 1`` steps. Step ``t`` holds

* ``observation[t]``: o_t (a dict of arrays, e.g. ``state`` float32 ``[D]``, ``pixels`` uint8
  ``[H, W, C]``; pixel frames are stored once, never stacked);
* ``action[t]``: a_t, the action taken at o_t;
* ``reward[t]``: r_t, the reward received for a_t;
* ``discount[t]``: the discount of the transition o_t -> o_{t+1} (0 when o_{t+1} is terminal);
* ``is_first[t]``, ``is_last[t]``, ``is_terminal[t]`` (``is_terminal`` only on a last step that
  ended in a terminal state).

The last step of an episode (``is_last``) carries o_T only: its action, reward and discount are
zeros and are never sampled as a transition.
"""

from __future__ import annotations

from typing import Dict

import flax.struct
import jax
import numpy as np

Array = jax.Array | np.ndarray


@flax.struct.dataclass
class Steps:
  """Flat step arrays of N steps (all episodes concatenated in order).

  Attributes:
    observation: dict name -> ``[N, ...]`` array.
    action: ``[N, A]`` float32.
    reward: ``[N]`` float32.
    discount: ``[N]`` float32.
    is_first: ``[N]`` bool.
    is_last: ``[N]`` bool.
    is_terminal: ``[N]`` bool.
  """

  observation: Dict[str, Array]
  action: Array
  reward: Array
  discount: Array
  is_first: Array
  is_last: Array
  is_terminal: Array

  @property
  def num_steps(self) -> int:
    return int(self.reward.shape[0])

  @property
  def num_episodes(self) -> int:
    return int(np.asarray(self.is_first).sum())

  @property
  def num_transitions(self) -> int:
    return self.num_steps - int(np.asarray(self.is_last).sum())

  def to_host(self) -> "Steps":
    return jax.tree_util.tree_map(np.asarray, self)


STEP_KEYS = ("action", "reward", "discount", "is_first", "is_last", "is_terminal")
