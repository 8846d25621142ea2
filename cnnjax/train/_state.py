"""Training state, loss/metrics, optimizers and learning-rate schedules."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training, as one pytree of arrays (checkpointable).

    Unlike ``flax.training.train_state.TrainState`` it holds no functions, so it can be
    donated to the jitted step, sharded and saved as plain data.

    Attributes:
      params: the model's ``'params'`` collection.
      batch_stats: the ``'batch_stats'`` collection (``{}`` for models without BatchNorm).
      opt_state: the optax optimizer state.
      step: int32 scalar, number of optimizer steps taken.
      rng: the run's PRNG key (legacy uint32 ``[2]``); step ``t`` uses
        ``jax.random.fold_in(rng, t)``, so randomness depends only on (seed, step).
    """
    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array
    rng: jax.Array


def cross_entropy(logits: ArrayLike, labels: ArrayLike) -> tuple[jax.Array, jax.Array,
                                                                 jax.Array]:
    """Summed softmax cross-entropy, correct count and example count, ignoring label ``-1``.

    ``-log softmax(logits)[label]``; since ``log_softmax`` is idempotent, models that
    already return log-probabilities (the lectures' MNIST net) get the same (NLL) loss.

    Args:
      logits: ``[N, K]`` logits or log-probabilities.
      labels: int ``[N]``; ``-1`` marks padding (excluded from every sum).

    Returns:
      ``(loss_sum, correct, count)`` float32 scalars.
    """
    logits = jnp.asarray(logits).astype(jnp.float32)
    labels = jnp.asarray(labels)
    valid = labels >= 0
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
    mask = valid.astype(jnp.float32)
    # argmax is int64 under x64; compare in the labels' dtype (no implicit promotion).
    correct = (jnp.argmax(logits, axis=-1).astype(labels.dtype) == labels) & valid
    return jnp.sum(losses * mask), jnp.sum(correct.astype(jnp.float32)), jnp.sum(mask)


def make_schedule(schedule: str | Callable, learning_rate: float, total_steps: int | None,
                  warmup_steps: int | None = None) -> Callable:
    """The learning-rate schedule: a name from ``SCHEDULES`` or an optax schedule.

    ``'cosine'`` decays from ``learning_rate`` to 0 over ``total_steps`` (Loshchilov & Hutter
    2017, no restarts); ``'warmup_cosine'`` first ramps linearly from 0 over
    ``warmup_steps`` (default 5% of the run, at least 1 step). ``total_steps`` may be
    ``None`` for ``'constant'``.
    """
    if callable(schedule):
        return schedule
    if schedule == "constant":
        return optax.constant_schedule(learning_rate)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
    if schedule == "warmup_cosine":
        warmup = max(1, total_steps // 20) if warmup_steps is None else warmup_steps
        return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup,
                                                  max(total_steps, warmup + 1))
    raise ValueError(f"fit: schedule must be one of {', '.join(map(repr, SCHEDULES))} or an "
                     f"optax schedule, got {schedule!r}.")


def make_optimizer(optimizer: str | optax.GradientTransformation, schedule: Callable, *,
                   weight_decay: float = 0.0, momentum: float | None = 0.9
                   ) -> optax.GradientTransformation:
    """``'adam'`` (L2 penalty ``weight_decay`` added to the gradient, like ``torch.optim.Adam``),
    ``'adamw'`` (decoupled decay, Loshchilov & Hutter 2019), ``'sgd'`` (heavy-ball
    ``momentum``, L2 penalty like ``torch.optim.SGD``), or any optax transformation (then
    ``schedule`` and ``weight_decay`` are the caller's business).
    """
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if weight_decay < 0:
        raise ValueError(f"fit: weight_decay must be >= 0, got {weight_decay}.")
    if optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=weight_decay)
    if optimizer == "adam":
        base = optax.adam(schedule)
    elif optimizer == "sgd":
        base = optax.sgd(schedule, momentum=momentum or None)
    else:
        raise ValueError(f"fit: optimizer must be one of {', '.join(map(repr, OPTIMIZERS))} or "
                         f"an optax.GradientTransformation, got {optimizer!r}.")
    if weight_decay:
        return optax.chain(optax.add_decayed_weights(weight_decay), base)
    return base
