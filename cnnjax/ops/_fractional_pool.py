"""Fractional max pooling (Graham 2014, "Fractional max-pooling", arXiv:1412.6071).

Max pooling whose output size is not an integer fraction of the input: the window starts
advance by ``α = (n − k)/(o − 1)`` on average, in steps of ``⌊α⌋`` or ``⌈α⌉``, at
pseudo-random offsets drawn per (example, channel). This is PyTorch's
``FractionalMaxPool2d``/``3d`` rule (the "pseudo-random overlapping" variant of the paper
with a fixed window ``k``): per spatial dim with input ``n``, window ``k`` and output
``o`` (``o + k − 1 <= n``), and ``u ∈ [0, 1)``::

    start_i = ⌊(i + u)·α⌋ − ⌊u·α⌋      for i < o − 1,
    start_{o−1} = n − k                 (o = 1: the only window starts at n − k),

and output ``i`` is the max over ``[start_i, start_i + k)``. ``o + k − 1 <= n`` makes
``α >= 1``, so the starts increase (strictly, in exact arithmetic) and stay in
``[0, n − k]``.

Implementation: the windows are boxes, so ``y = max over the box`` is the dense stride-1
max pool ``m = max_pool(x, k, strides=1)`` read at the start positions; the read is a gather
per spatial dim with the starts of each (example, channel). The dense pool carries
``max_pool``'s fast backward pass (first maximum of the window in row-major order, as
PyTorch), and the gathers' transposes (scatter-adds) are cheaper on CPU than the dense
formulations tried (a where-chain over the ``n − o + 1`` possible offsets is ~5× slower).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool import max_pool_impl
from cnnjax.ops._pool_windows import PoolGeometry

__all__ = ["fractional_max_pool"]


def _compute_dtype(dtype: Any) -> Any:
    """The float type the starts are computed in: ``x``'s, or float32 for narrower floats."""
    return dtype if jnp.dtype(dtype) in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)) \
        else jnp.dtype(jnp.float32)


def fractional_starts(u: jax.Array, n: int, k: int, o: int) -> jax.Array:
    """``[..., o]`` int32 window starts along one dim for samples ``u`` of shape ``[...]``.

    The arithmetic runs in ``u``'s dtype, in PyTorch's order of operations, so float32 and
    float64 starts equal PyTorch's bit for bit.
    """
    last = jnp.full(u.shape + (1,), n - k, jnp.int32)
    if o == 1:
        return last
    dtype = u.dtype
    alpha = np.asarray(n - k, dtype) / np.asarray(o - 1, dtype)  # IEEE division, as PyTorch
    i = jnp.arange(o - 1, dtype=dtype).reshape((1,) * u.ndim + (o - 1,))
    u = u[..., None]
    s = jnp.floor((i + u) * alpha) - jnp.floor(u * alpha)
    # Concrete samples are checked to lie in [0, 1); traced ones are not, so clamp: the
    # gathers must never read outside the input.
    s = jnp.clip(s.astype(jnp.int32), 0, n - k)
    return jnp.concatenate([s, last], axis=-1)


def _check_bool(value: Any, op: str, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        fail(op, f"{name} must be a bool, got {value!r}.", TypeError)
    return bool(value)


def fractional_max_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    output_shape: Any,
    *,
    train: bool,
    key: jax.Array | None = None,
    samples: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Pseudo-random overlapping fractional max pooling (Graham 2014; PyTorch's rule).

    Per spatial dim with input size ``n``, window ``k`` and output size ``o``
    (``o + k − 1 <= n``): ``α = (n − k)/(o − 1)``, output ``i < o − 1`` is the max over
    ``[s_i, s_i + k)`` with ``s_i = ⌊(i + u)·α⌋ − ⌊u·α⌋``, the last one over
    ``[n − k, n)`` (``o = 1``: the only window starts at ``n − k``). Windows are boxes:
    ``y[b, i_1..i_d, c] = max over Π_t [s_{t,i_t}, s_{t,i_t} + k_t)`` of ``x[b, ..., c]``.

    ``u ∈ [0, 1)`` is one number per (example, channel, spatial dim):

    * ``samples`` ``[N, C, d]`` when given (whatever ``train`` and ``key`` are), with
      ``samples[..., t]`` for spatial dim ``t`` (H first). PyTorch's 2-D ``_random_samples``
      ``[N, C, 2]`` lists W first, so it is ``samples[..., ::-1]``; its 3-D one lists
      T, H, W, the same order as here. With the same samples the output equals
      ``torch.nn.functional.fractional_max_pool2d/3d`` exactly (float32 and float64; the
      starts are computed in ``x``'s dtype, float32 for narrower floats).
    * else drawn uniformly from ``key`` when ``train=True`` (training: a new pooling
      pattern per example and channel at every step);
    * else ``0.5`` (inference: a fixed, deterministic pattern).

    The gradient goes to the first maximum of each window in row-major order (PyTorch).

    Output size: ``output_shape``. Paper: B. Graham, "Fractional Max-Pooling",
    arXiv:1412.6071, 2014.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints, the window ``k`` per dim.
      output_shape: int or ``d`` ints, ``o`` per dim with ``o + k − 1 <= n``.
      train: draw ``u`` from ``key`` (``True``) or use ``u = 0.5`` (``False``) when no
        ``samples`` are given.
      key: PRNG key; required when ``train=True`` and ``samples`` is ``None``.
      samples: ``[N, C, d]`` floats in ``[0, 1)`` (checked when concrete).

    Returns:
      ``[N, *output_shape, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.arange(25.).reshape(1, 5, 5, 1)
      >>> y = fractional_max_pool(x, 2, 3, train=False)   # u = 0.5: starts 0, 2, 3
      >>> y[0, :, :, 0]
      Array([[ 6.,  8.,  9.],
             [16., 18., 19.],
             [21., 23., 24.]], dtype=float32)
    """
    op = "fractional_max_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    d = checks.spatial_rank(x, op)
    window = checks.ntuple(window_shape, d, op, "window_shape")
    out = checks.ntuple(output_shape, d, op, "output_shape")
    spatial = tuple(int(n) for n in x.shape[1:-1])
    for i, (n, k, o) in enumerate(zip(spatial, window, out)):
        if o + k - 1 > n:
            fail(op, f"output_shape + window_shape - 1 must be <= the input size in every "
                     f"spatial dim, got {o} + {k} - 1 > {n} in spatial dim {i} (input "
                     f"spatial shape {spatial}, window_shape {window}, output_shape {out}).")
    train = _check_bool(train, op, "train")
    n_batch, c = x.shape[0], x.shape[-1]
    dtype = _compute_dtype(x.dtype)
    if samples is not None:
        samples = jnp.asarray(samples)
        if tuple(samples.shape) != (n_batch, c, d):
            fail(op, f"samples must have shape [N, C, d] = {(n_batch, c, d)}, got "
                     f"{tuple(samples.shape)}.")
        checks.check_floating(samples, op, "samples")
        try:
            concrete = np.asarray(samples, np.float64)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            concrete = None
        if concrete is not None and not np.all((concrete >= 0) & (concrete < 1)):
            bad = float(concrete[~((concrete >= 0) & (concrete < 1))].ravel()[0])
            fail(op, f"samples must lie in [0, 1), got a value {bad!r}.")
        u = samples.astype(dtype)
    elif train:
        if key is None:
            fail(op, "key must be given when train=True and samples is None, got key=None.")
        u = jax.random.uniform(key, (n_batch, c, d), dtype)
    else:
        u = jnp.full((n_batch, c, d), 0.5, dtype)
    return _fractional(x, u, window, out)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _fractional(x: jax.Array, u: jax.Array, window: tuple[int, ...],
                out: tuple[int, ...]) -> jax.Array:
    d = len(window)
    spatial = tuple(x.shape[1:-1])
    dense = tuple(n - k + 1 for n, k in zip(spatial, window))
    if any(k > 1 for k in window):
        zero = ((0, 0),) * d
        geom = PoolGeometry(window, (1,) * d, (1,) * d, zero, zero, spatial, dense)
        y = max_pool_impl(x, geom)
    else:
        y = x
    for t, (n, k, o) in enumerate(zip(spatial, window, out)):
        starts = fractional_starts(u[:, :, t], n, k, o)  # [N, C, o]
        shape = [x.shape[0]] + [1] * d + [x.shape[-1]]
        shape[t + 1] = o
        idx = jnp.moveaxis(starts, -1, 1).reshape(shape)
        y = jnp.take_along_axis(y, idx, axis=t + 1, mode="clip")
    return y
