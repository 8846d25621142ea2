"""Stochastic pooling (Zeiler & Fergus 2013, "Stochastic pooling for regularization of deep
convolutional neural networks"; the lectures' "Stochastic pooling").

On ``a = relu(x)``, each window defines a multinomial ``p_j = a_j / Σ_k a_k``.

* Training: one position ``l ~ p`` per region (example, output position, channel) and
  ``y = a_l``; the gradient flows to that position only.
* Inference: the probabilistic weighting ``y = Σ_j p_j·a_j = Σ a_j² / Σ a_j``.

A window whose activations are all zero has no distribution: it outputs 0 with zero
gradient (no NaN from ``0/0``).

Sampling uses one uniform number per region (inverse CDF): ``u = U·Σa`` with
``U ~ U[0, 1)`` selects the first position whose running sum exceeds ``u``. Positions with
``a_j = 0`` have empty intervals and are never chosen. This needs a single random number
per region instead of one Gumbel per window position (random bits dominate the cost on
CPU).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool_windows import PoolGeometry, over_windows, pad_spatial, pool_geometry

__all__ = ["stochastic_pool"]


def _inference_body(parts: list[jax.Array]) -> jax.Array:
    s = functools.reduce(jnp.add, parts)
    s2 = functools.reduce(jnp.add, [a * a for a in parts])
    pos = s > 0
    # Double where: the division only ever sees a positive denominator.
    return jnp.where(pos, s2 / jnp.where(pos, s, jnp.ones((), s.dtype)), 0)


@functools.partial(jax.jit, static_argnums=(1,))
def _inference(x: jax.Array, geom: PoolGeometry) -> jax.Array:
    a = pad_spatial(jax.nn.relu(x), geom.full_pads, 0)
    return over_windows(_inference_body, geom, a)


def _sample_body(parts: list[jax.Array], uniform: jax.Array) -> jax.Array:
    stopped = [jax.lax.stop_gradient(a) for a in parts]
    # The sampled position is the number of running sums <= u = U·Σa (zero entries add
    # nothing, so they are skipped). If rounding makes u >= Σa, the count overshoots and
    # is clamped to the last positive position; an all-zero window clamps to -1 (none).
    running = None
    count = None
    last_pos = jnp.full(uniform.shape, -1, jnp.int32)
    cums = []
    for j, a in enumerate(stopped):
        running = a if running is None else running + a
        cums.append(running)
        last_pos = jnp.where(a > 0, j, last_pos)
    u = uniform * running
    for c in cums:
        step = (u >= c).astype(jnp.int32)
        count = step if count is None else count + step
    idx = jnp.minimum(count, last_pos)
    y = None
    for j, a in enumerate(parts):
        term = jnp.where(idx == j, a, 0)
        y = term if y is None else y + term
    return y


@functools.partial(jax.jit, static_argnums=(2,))
def _sample(x: jax.Array, key: jax.Array, geom: PoolGeometry) -> jax.Array:
    a = pad_spatial(jax.nn.relu(x), geom.full_pads, 0)
    uniform = jax.random.uniform(key, (x.shape[0], *geom.out, x.shape[-1]), x.dtype)
    return over_windows(_sample_body, geom, a, uniform)


def stochastic_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    train: bool,
    key: jax.Array | None = None,
) -> jax.Array:
    """Stochastic pooling on ``relu(x)`` (Zeiler & Fergus 2013).

    ``p_j = a_j / Σ_k a_k`` with ``a = relu(x)`` over each window (zero padding). Training
    samples ``l ~ p`` independently per (example, output position, channel) and outputs
    ``a_l`` (gradient to that position only); inference outputs ``Σ_j p_j·a_j``. All-zero
    windows output 0 with zero gradient. Output size: as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      train: sample (``True``) or use probabilistic weighting (``False``).
      key: PRNG key, required when ``train=True``.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[1., 3], [0, -2]])[None, :, :, None]
      >>> stochastic_pool(x, 2, train=False)[0, 0, 0, 0]   # (1 + 9) / 4
      Array(2.5, dtype=float32)
    """
    op = "stochastic_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding)
    if not train:
        return _inference(x, geom)
    if key is None:
        fail(op, "key must be given when train=True, got key=None.")
    checks.check_key(key, op)
    return _sample(x, key, geom)
