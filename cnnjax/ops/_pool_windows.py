"""The window machinery every pooling family builds on.

Argument canonicalisation to a static :class:`PoolGeometry`, padding with the reduction's
identity, and the *window slices* ``xpad[:, k·r :: s]`` — one strided slice of shape
``[N, *out_spatial, C]`` per window position. A reduction over these slices is a pooling;
unlike a custom ``reduce_window`` it is reverse-differentiable for every reducer and for
dilated windows. :func:`over_windows` and :func:`max_over_windows` carry a ``jax.custom_vjp``
whose backward pass maps the per-slice cotangents back with :func:`slices_transpose` (fast on
CPU: see ``cnnjax/ops/_pool.py`` for the measurements), so the pools built on them support
reverse mode but not forward mode.

Output size per spatial dim (PyTorch ``pooling_output_shape``)::

    out = floor((n + lo + hi - dilation·(k - 1) - 1) / stride) + 1
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._conv_geometry import ceil_extra_padding, output_size


class PoolGeometry(NamedTuple):
    """Static description of a windowed reduction (hashable: usable as a jit static arg).

    Attributes:
      window: window size per spatial dim.
      strides: stride per spatial dim.
      dilation: window dilation per spatial dim.
      pads: the user's ``(lo, hi)`` padding per spatial dim.
      full_pads: ``pads`` plus the extra high-side padding ``ceil_mode`` needs.
      spatial: input spatial shape.
      out: output spatial shape.
    """

    window: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    full_pads: tuple[tuple[int, int], ...]
    spatial: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def tiles(self) -> bool:
        """True if the windows are non-overlapping, contiguous and gap-free (stride == window)."""
        return all(r == 1 for r in self.dilation) and self.strides == self.window


def pool_geometry(
    op: str,
    x: Any,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Validates the common pooling arguments and returns the static geometry.

    ``strides=None`` means ``strides = window_shape`` (PyTorch and the seeds).
    """
    d = checks.spatial_rank(x, op)
    window = checks.ntuple(window_shape, d, op, "window_shape")
    strides = window if strides is None else checks.ntuple(strides, d, op, "strides")
    dilation = checks.ntuple(dilation, d, op, "dilation")
    spatial = tuple(int(n) for n in x.shape[1:-1])
    pads = checks.canonical_padding(padding, spatial, window, strides, op, dilation=dilation)
    checks.check_window_fits(spatial, window, pads, op, dilation=dilation)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        fail(op, f"ceil_mode must be a bool, got {ceil_mode!r}.", TypeError)
    out = tuple(
        output_size(n, k, s, lo, hi, r, bool(ceil_mode))
        for n, k, s, (lo, hi), r in zip(spatial, window, strides, pads, dilation)
    )
    if any(o <= 0 for o in out):
        fail(op, f"the output would be empty (spatial shape {out}) for input spatial shape "
                 f"{spatial}, window_shape {window}, strides {strides} and padding {pads}.")
    full_pads = tuple(
        (lo, hi + ceil_extra_padding(n, k, s, lo, hi, o, r))
        for n, k, s, (lo, hi), r, o in zip(spatial, window, strides, pads, dilation, out)
    )
    return PoolGeometry(window, strides, dilation, pads, full_pads, spatial, out)


def pad_spatial(x: jax.Array, full_pads: tuple[tuple[int, int], ...], value: Any) -> jax.Array:
    """Pads the spatial dims of ``[N, *spatial, C]`` with ``value`` (a reduction identity)."""
    if all(lo == 0 and hi == 0 for lo, hi in full_pads):
        return x
    config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in full_pads] + [(0, 0, 0)]
    return lax.pad(x, jnp.asarray(value, x.dtype), config)


def window_offsets(geom: PoolGeometry) -> list[tuple[int, ...]]:
    """Window positions ``k`` (per-dim indices) in row-major order."""
    return list(np.ndindex(*geom.window))


def window_slices(xpad: jax.Array, geom: PoolGeometry) -> list[jax.Array]:
    """One ``[N, *out, C]`` strided slice of the padded input per window position.

    Slice ``j`` (window position ``k``, row-major) holds ``xpad[:, o·s + k·r, :]`` for every
    output position ``o``.
    """
    n, c = xpad.shape[0], xpad.shape[-1]
    result = []
    for k in window_offsets(geom):
        start = [0] + [ki * r for ki, r in zip(k, geom.dilation)] + [0]
        limit = ([n] + [st + (o - 1) * s + 1 for st, o, s in zip(start[1:], geom.out, geom.strides)]
                 + [c])
        result.append(lax.slice(xpad, start, limit, [1, *geom.strides, 1]))
    return result


def slices_transpose(parts: list[jax.Array], xpad_shape: tuple[int, ...], dtype: Any,
                     geom: PoolGeometry) -> jax.Array:
    """The adjoint of :func:`window_slices`: scatters per-slice cotangents back (overlaps add).

    Window element ``e = k·dilation`` of output ``o`` sits at padded position
    ``o·s + e = (o + e // s)·s + e % s``: on the sub-grid of phase ``e % s``, shifted by
    ``e // s``. So each slice's cotangent is shifted (a cheap edge pad on the small output
    grid), summed per phase, and the ``prod(s)`` phase grids are interleaved with one
    stack + reshape. For tiling windows (stride == window) that is a pure permutation,
    and XLA's own transpose of strided slices (adding ``P`` interior-padded full-size
    arrays) is ~4× slower there on CPU.
    """
    d = len(geom.window)
    n, c = xpad_shape[0], xpad_shape[-1]
    padded = xpad_shape[1:-1]
    s = geom.strides
    offs = [tuple(ki * r for ki, r in zip(k, geom.dilation)) for k in window_offsets(geom)]
    q_max = [max(e[i] // s[i] for e in offs) for i in range(d)]
    grid = [max(-(-p // si), o + qm) for p, si, o, qm in zip(padded, s, geom.out, q_max)]
    zero = jnp.zeros((), dtype)
    # Materialise the cotangents first: fused into the interleave below, XLA would
    # recompute each one (for max pooling, a chain of window compares) per output element.
    parts = lax.optimization_barrier(list(parts))
    if not (geom.tiles or all(si == 1 for si in s)):
        # Measured (experiments/pool_timing.py): for overlapping strided windows such as
        # 3×3 / stride 2, XLA's transpose of the strided slices is ~2× faster than the
        # phase interleave below; for tiling and stride-1 (e.g. dilated) windows the
        # interleave is 2-4× faster.
        proto = jax.ShapeDtypeStruct(xpad_shape, dtype)
        (g,) = jax.linear_transpose(lambda a: tuple(window_slices(a, geom)), proto)(tuple(parts))
        return g
    phases: dict[tuple[int, ...], jax.Array] = {}
    for e, g in zip(offs, parts):
        r = tuple(ei % si for ei, si in zip(e, s))
        q = tuple(ei // si for ei, si in zip(e, s))
        if all(qi == 0 for qi in q) and list(geom.out) == grid:
            placed = g
        else:
            config = ([(0, 0, 0)] + [(qi, m - qi - o, 0) for qi, m, o in zip(q, grid, geom.out)]
                      + [(0, 0, 0)])
            placed = lax.pad(g, zero, config)
        phases[r] = placed if r not in phases else phases[r] + placed
    zeros = jnp.zeros((n, *grid, c), dtype)
    stacked = jnp.stack([phases.get(r, zeros) for r in np.ndindex(*s)], axis=0)
    stacked = stacked.reshape(*s, n, *grid, c)
    # [s1..sd, N, M1..Md, C] -> [N, M1, s1, ..., Md, sd, C]: position m·s + r.
    perm = [d] + [a for i in range(d) for a in (d + 1 + i, i)] + [2 * d + 1]
    full = stacked.transpose(perm).reshape(n, *(m * si for m, si in zip(grid, s)), c)
    return lax.slice(full, (0,) * (d + 2), (n, *padded, c))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def over_windows(fn: Any, geom: PoolGeometry, xpad: jax.Array, *args: Any) -> jax.Array:
    """``fn(window_slices(xpad, geom), *args)`` — a pooling built from the window slices.

    ``fn`` maps the list of ``[N, *out, C]`` slices (and extra differentiable ``args``) to an
    ``[N, *out, C]`` result. The backward pass differentiates ``fn`` on the slices and maps
    the per-slice cotangents back with :func:`slices_transpose`; left to autodiff, XLA
    fuses elementwise work into the interior-padded slice transposes and gets ~3× slower
    on CPU.
    """
    return fn(window_slices(xpad, geom), *args)


def _over_fwd(fn, geom, xpad, *args):
    y, vjp = jax.vjp(fn, window_slices(xpad, geom), *args)
    return y, vjp


def _over_bwd(fn, geom, vjp, g):
    d_parts, *d_args = vjp(g)
    shape = (g.shape[0], *(n + lo + hi for n, (lo, hi) in zip(geom.spatial, geom.full_pads)),
             g.shape[-1])
    return (slices_transpose(list(d_parts), shape, g.dtype, geom), *d_args)


over_windows.defvjp(_over_fwd, _over_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_over_windows(xpad: jax.Array, geom: PoolGeometry) -> jax.Array:
    """Windowed max of an already (−∞-)padded input; the gradient goes to one maximum.

    Ties: the whole cotangent goes to the *first* maximal position of the window in
    row-major order — PyTorch's choice, and like XLA's ``reduce_window`` (which also routes
    it to a single element), rather than ``jnp.max``'s even split between ties.
    """
    return functools.reduce(jnp.maximum, window_slices(xpad, geom))


def _max_fwd(xpad, geom):
    y = max_over_windows(xpad, geom)
    return y, (xpad, y)


def _max_bwd(geom, res, g):
    xpad, y = res
    taken = None
    parts = []
    zero = jnp.zeros((), g.dtype)
    for s in window_slices(xpad, geom):
        hit = s == y
        sel = hit if taken is None else hit & ~taken
        taken = sel if taken is None else taken | sel
        parts.append(jnp.where(sel, g, zero))
    return (slices_transpose(parts, xpad.shape, xpad.dtype, geom),)


max_over_windows.defvjp(_max_fwd, _max_bwd)
