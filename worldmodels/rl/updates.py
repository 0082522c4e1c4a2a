"""Small pure helpers shared by learners: target updates, optimiser steps, metrics checks."""

from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import optax

PyTree = Any


def polyak(target: PyTree, online: PyTree, tau: float) -> PyTree:
  """``target <- (1 - tau) * target + tau * online``, leaf by leaf."""
  return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def apply_gradients(loss_fn: Callable[..., Tuple[jax.Array, dict]], params: PyTree,
                    opt_state: optax.OptState, optimizer: optax.GradientTransformation,
                    *args) -> Tuple[PyTree, optax.OptState, dict]:
  """One optimiser step on ``loss_fn(params, *args) -> (loss, aux_metrics)``.

  Returns:
    New params, new optimiser state and the metrics (``aux`` plus ``grad_norm``).
  """
  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  params = optax.apply_updates(params, updates)
  metrics = dict(metrics, grad_norm=optax.global_norm(grads))
  return params, opt_state, metrics


def make_adam(learning_rate: float, grad_clip: float | None = None,
              eps: float = 1e-8) -> optax.GradientTransformation:
  """Adam with optional global-norm gradient clipping."""
  adam = optax.adam(learning_rate, eps=eps)
  return optax.chain(optax.clip_by_global_norm(grad_clip), adam) if grad_clip else adam
