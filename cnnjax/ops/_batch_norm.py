"""Batch normalization as a pure function with explicit running statistics.

Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by Reducing
Internal Covariate Shift", and the lectures' slides ("Batch Normalization"):

    μ_B = 1/m Σ_i x_i,   σ²_B = 1/m Σ_i (x_i − μ_B)²,   y = γ · (x − μ_B) / sqrt(σ²_B + ε) + β

over every axis but the last (channels). At test time the running averages replace the batch
statistics and batch norm "becomes a linear operator" that "can be fused with the previous
fully-connected or conv layer" — :func:`fold_batch_norm` does that fusion.

The state is explicit data, as in optax: :class:`BatchStats` in, ``(y, new_stats)`` out.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from cnnjax.ops.checks import check_floating, fail


class BatchStats(NamedTuple):
    """Running statistics of :func:`batch_norm`.

    Attributes:
      mean: ``[C]`` running mean.
      var: ``[C]`` running (unbiased) variance.
    """

    mean: jax.Array
    var: jax.Array

    @classmethod
    def init(cls, num_features: int, dtype=jnp.float32) -> "BatchStats":
        """Fresh statistics, mean 0 and variance 1 (PyTorch's and Flax's initial state)."""
        return cls(jnp.zeros((num_features,), dtype), jnp.ones((num_features,), dtype))


def _compute_dtype(dtype) -> jnp.dtype:
    # Half-precision statistics lose too much (sums over a whole batch): accumulate in float32
    # like flax.linen.BatchNorm, then cast the output back to the caller's dtype.
    dtype = jnp.dtype(dtype)
    if dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dtype


def _check_vector(v, c: int, op: str, name: str) -> None:
    shape = tuple(getattr(v, "shape", ()))
    if shape != (c,):
        fail(op, f"{name} must have shape ({c},) (one entry per channel of x), got {shape}.")


def _check_stats(stats, c: int, op: str) -> None:
    if not isinstance(stats, tuple) or len(stats) != 2:
        fail(op, f"stats must be a BatchStats(mean, var), got {type(stats).__name__}.", TypeError)
    _check_vector(stats[0], c, op, "stats.mean")
    _check_vector(stats[1], c, op, "stats.var")


def batch_norm(
    x: ArrayLike,
    scale: ArrayLike | None,
    bias: ArrayLike | None,
    stats: BatchStats,
    *,
    train: bool,
    momentum: float = 0.9,
    epsilon: float = 1e-5,
    axis_name: str | None = None,
) -> tuple[jax.Array, BatchStats]:
    """Batch normalization over every axis but the last.

    ``train=True`` normalises with the batch mean ``μ_B`` and the *biased* batch variance
    ``σ²_B`` (so gradients flow through both, as in the paper), and returns updated running
    statistics::

        new.mean = momentum · mean + (1 − momentum) · μ_B
        new.var  = momentum · var  + (1 − momentum) · σ²_B · m / (m − 1)

    where ``m`` is the number of values per channel (the unbiased estimate of Ioffe & Szegedy
    2015, Alg. 2, and PyTorch; PyTorch's ``momentum=0.1`` is our ``0.9``). Training needs
    ``m >= 2``, as in PyTorch: an empty batch has no statistics (they would be NaN) and one
    value per channel has no variance (the output would be ``bias`` whatever ``x`` is, and the
    running variance would be dragged towards 0), so both raise ``ValueError``. With
    ``axis_name``, ``m`` counts the global batch.

    ``train=False`` normalises with ``stats`` and returns ``stats`` unchanged.

    With ``axis_name`` (inside ``jax.vmap``/``pmap``/``shard_map`` over that axis) the mean and
    the centred second moment are averaged across the mapped axis with ``lax.pmean``, so every
    shard is normalised with the statistics of the whole global batch (cross-device BN); ``m``
    then counts the global batch. Shards must have equal sizes.

    Args:
      x: ``[N, *spatial, C]`` (any rank ``>= 2``; statistics over all axes but the last).
      scale: ``[C]`` (γ) or ``None`` for 1.
      bias: ``[C]`` (β) or ``None`` for 0.
      stats: running :class:`BatchStats` with ``[C]`` arrays.
      train: use batch statistics and update ``stats`` (``True``) or use ``stats``.
      momentum: decay of the running averages, in ``[0, 1]``.
      epsilon: added to the variance before the square root, ``>= 0``.
      axis_name: name of a mapped axis to average statistics over, or ``None``.

    Returns:
      ``(y, new_stats)``: ``y`` has the shape and dtype of ``x``; ``new_stats`` has the dtypes
      of ``stats``. The variance used and stored is never negative.

    Raises:
      ValueError: ``train=True`` with fewer than 2 values per channel (``m < 2``).

    Example:
      >>> x = jnp.ones((8, 4, 4, 3))
      >>> stats = BatchStats.init(3)
      >>> y, stats = batch_norm(x, None, None, stats, train=True)
      >>> y.shape
      (8, 4, 4, 3)
    """
    op = "batch_norm"
    if not isinstance(train, (bool, jnp.bool_)):
        fail(op, f"train must be a Python bool, got {train!r}.", TypeError)
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        fail(op, f"x must be an array, got {type(x).__name__}.", TypeError)
    if ndim < 2:
        fail(op, f"x must have rank >= 2 ([N, ..., C]), got shape {tuple(x.shape)}.")
    check_floating(x, op)
    c = x.shape[-1]
    _check_stats(stats, c, op)
    if scale is not None:
        _check_vector(scale, c, op, "scale")
    if bias is not None:
        _check_vector(bias, c, op, "bias")
    if isinstance(momentum, numbers.Real) and not 0.0 <= momentum <= 1.0:
        fail(op, f"momentum must be in [0, 1] (the decay of the running averages), got {momentum!r}.")
    if isinstance(epsilon, numbers.Real) and epsilon < 0:
        fail(op, f"epsilon must be >= 0, got {epsilon!r}.")

    x = jnp.asarray(x)
    cdtype = _compute_dtype(x.dtype)
    xc = x.astype(cdtype)
    reduce_axes = tuple(range(ndim - 1))
    bshape = (1,) * (ndim - 1) + (c,)

    if train:
        m = math.prod(x.shape[:-1])
        if axis_name is not None:
            m *= lax.axis_size(axis_name)
        if m == 0:
            fail(op, f"train=True needs at least one value per channel to compute batch "
                     f"statistics, got x of shape {tuple(x.shape)}.")
        if m == 1:
            fail(op, f"Expected more than 1 value per channel when training (one value has no "
                     f"variance), got x of shape {tuple(x.shape)}.")
        mean = jnp.mean(xc, axis=reduce_axes)
        if axis_name is not None:
            mean = lax.pmean(mean, axis_name)
        # Two-pass (centred) variance: E[x²] − E[x]² cancels catastrophically in float32 when
        # |mean| >> std. The clip keeps it non-negative in any case.
        var = jnp.mean(jnp.square(xc - mean.reshape(bshape)), axis=reduce_axes)
        if axis_name is not None:
            var = lax.pmean(var, axis_name)
        var = jnp.maximum(var, 0.0)
        correction = m / (m - 1)
        s_mean, s_var = stats
        s_mean, s_var = jnp.asarray(s_mean), jnp.asarray(s_var)
        # Statistics are constants for the running averages (no gradient into the state).
        mu_b = lax.stop_gradient(mean)
        var_b = lax.stop_gradient(var)
        new_stats = BatchStats(
            (momentum * s_mean + (1.0 - momentum) * mu_b.astype(s_mean.dtype)).astype(s_mean.dtype),
            (momentum * s_var + (1.0 - momentum) * (correction * var_b).astype(s_var.dtype)
             ).astype(s_var.dtype),
        )
    else:
        mean = jnp.asarray(stats[0]).astype(cdtype)
        var = jnp.maximum(jnp.asarray(stats[1]).astype(cdtype), 0.0)
        new_stats = stats

    mul = lax.rsqrt(var + jnp.asarray(epsilon, cdtype))
    if scale is not None:
        mul = mul * jnp.asarray(scale).astype(cdtype)
    y = (xc - mean.reshape(bshape)) * mul.reshape(bshape)
    if bias is not None:
        y = y + jnp.asarray(bias).astype(cdtype).reshape(bshape)
    return y.astype(x.dtype), new_stats


def fold_batch_norm(
    w: ArrayLike,
    b: ArrayLike | None,
    scale: ArrayLike | None,
    bias: ArrayLike | None,
    stats: BatchStats,
    *,
    epsilon: float = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """Folds an eval-mode batch norm into the preceding conv or dense layer.

    At test time BN is the per-output-channel affine map ``y = s · (z − μ) + β`` with
    ``s = γ / sqrt(var + ε)`` (lectures: "zero overhead at test-time: can be fused with conv").
    Since ``z = conv(x, w) + b`` is linear in ``w`` per output channel::

        w' = w · s          (scaling the last, output-channel axis)
        b' = (b − μ) · s + β

    so ``conv(x, w') + b' == batch_norm(conv(x, w) + b, scale, bias, stats, train=False)[0]``.

    Args:
      w: conv kernel ``[*kernel_size, C_in // groups, C_out]`` or dense kernel ``[in, out]``;
        the last axis is the output channel.
      b: ``[C_out]`` bias or ``None`` (zero).
      scale: ``[C_out]`` BN scale γ or ``None`` (1).
      bias: ``[C_out]`` BN bias β or ``None`` (0).
      stats: :class:`BatchStats` with ``[C_out]`` running mean and variance.
      epsilon: the ``epsilon`` the batch norm used.

    Returns:
      ``(w', b')`` with the shapes of ``w`` and ``[C_out]``, in ``w``'s dtype.

    Example:
      >>> w = jnp.ones((3, 3, 2, 4)); stats = BatchStats.init(4)
      >>> w2, b2 = fold_batch_norm(w, None, None, None, stats)
      >>> w2.shape, b2.shape
      ((3, 3, 2, 4), (4,))
    """
    op = "fold_batch_norm"
    ndim = getattr(w, "ndim", None)
    if ndim is None:
        fail(op, f"w must be an array, got {type(w).__name__}.", TypeError)
    if ndim < 2:
        fail(op, f"w must be a dense kernel [in, out] or a conv kernel [*k, C_in/g, C_out], "
                 f"got shape {tuple(w.shape)}.")
    check_floating(w, op, "w")
    c = w.shape[-1]
    _check_stats(stats, c, op)
    for name, v in (("b", b), ("scale", scale), ("bias", bias)):
        if v is not None:
            _check_vector(v, c, op, name)
    if isinstance(epsilon, numbers.Real) and epsilon < 0:
        fail(op, f"epsilon must be >= 0, got {epsilon!r}.")

    w = jnp.asarray(w)
    cdtype = _compute_dtype(w.dtype)
    var = jnp.maximum(jnp.asarray(stats[1]).astype(cdtype), 0.0)
    s = lax.rsqrt(var + jnp.asarray(epsilon, cdtype))
    if scale is not None:
        s = s * jnp.asarray(scale).astype(cdtype)
    b0 = jnp.zeros((c,), cdtype) if b is None else jnp.asarray(b).astype(cdtype)
    b_new = (b0 - jnp.asarray(stats[0]).astype(cdtype)) * s
    if bias is not None:
        b_new = b_new + jnp.asarray(bias).astype(cdtype)
    w_new = w.astype(cdtype) * s.reshape((1,) * (ndim - 1) + (c,))
    return w_new.astype(w.dtype), b_new.astype(w.dtype)
