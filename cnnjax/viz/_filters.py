"""First-layer filters as images, as in the lectures' AlexNet figure (Krizhevsky et al. 2012,
Fig. 3: 96 learned 11x11x3 kernels, each scaled to the full display range)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from cnnjax.ops.checks import fail
from cnnjax.viz._common import check_png_path, new_figure, normalise_for_display, save


def first_conv_kernel(variables: Any) -> np.ndarray:
    """The first 2-D conv kernel ``[kh, kw, C_in, C_out]`` in a (flax) variables tree.

    Leaves are visited depth first in the tree's key order (creation order for a freshly
    initialised flax model), and the first leaf named ``kernel`` with 4 dims is returned.

    Args:
      variables: a variables dict (``{'params': ...}``), a params dict, or anything with a
        ``params`` attribute (e.g. a train state).

    Returns:
      The kernel as a NumPy array.
    """
    tree = getattr(variables, "params", variables)

    def visit(node: Any) -> np.ndarray | None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "kernel" and getattr(value, "ndim", None) == 4:
                    return np.asarray(value)
                found = visit(value)
                if found is not None:
                    return found
        return None

    found = visit(tree)
    if found is None:
        fail("plot_filters", "variables must contain a 2-D conv kernel (a 'kernel' leaf of shape "
                             "[kh, kw, C_in, C_out]), found none.")
    return found


def filter_mosaic(kernel: jax.typing.ArrayLike, *, ncols: int | None = None,
                  zoom: int | None = None) -> np.ndarray:
    """Tiles the ``C_out`` filters of ``kernel`` ``[kh, kw, C_in, C_out]`` into one image.

    Each filter is min-max scaled to [0, 1] on its own (over all its pixels and channels, so an
    RGB filter keeps its colour balance). ``C_in == 3`` gives an RGB mosaic ``[H, W, 3]``,
    ``C_in == 1`` a grey one ``[H, W]``; any other ``C_in`` is shown as the mean over input
    channels, in grey. Tiles are enlarged ``zoom`` times (default: to about 30 pixels) and
    separated by white gaps.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 4:
        fail("plot_filters", f"kernel must be [kh, kw, C_in, C_out], got shape {k.shape}.")
    kh, kw, c_in, c_out = k.shape
    if c_in != 3:
        k = k.mean(axis=2, keepdims=True)
    tiles = normalise_for_display(np.moveaxis(k, -1, 0), axes=(1, 2, 3))  # [C_out, kh, kw, c]
    ncols = ncols or math.ceil(math.sqrt(c_out))
    nrows = math.ceil(c_out / ncols)
    zoom = zoom or max(1, round(30 / max(kh, kw)))
    gap = max(1, zoom // 3)
    th, tw = kh * zoom, kw * zoom
    mosaic = np.ones((nrows * (th + gap) + gap, ncols * (tw + gap) + gap, tiles.shape[-1]))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        big = np.repeat(np.repeat(tile, zoom, axis=0), zoom, axis=1)
        y0, x0 = gap + r * (th + gap), gap + c * (tw + gap)
        mosaic[y0:y0 + th, x0:x0 + tw] = big
    return mosaic if mosaic.shape[-1] == 3 else mosaic[..., 0]


def plot_filters(kernel: Any, path: str | Path, *, ncols: int | None = None,
                 title: str | None = None, figsize: tuple[float, float] | None = None,
                 dpi: float = 100) -> Path:
    """Draws a grid of first-layer filters (grey for ``C_in == 1``, RGB for ``C_in == 3``).

    Args:
      kernel: a conv kernel ``[kh, kw, C_in, C_out]`` or a model's variables (the first conv
        kernel is found by :func:`first_conv_kernel`).
      path: output PNG path.
      ncols: filters per row (default ``ceil(sqrt(C_out))``).
      title: figure title (default states the kernel shape).
      figsize: inches; default 6 inches wide, tall enough for the grid. dpi: dots per inch.
        The PNG is ``figsize * dpi`` pixels.

    Returns:
      ``path`` as a ``Path``.

    Example:
      >>> w = np.random.default_rng(0).normal(size=(5, 5, 1, 20))
      >>> plot_filters(w, 'filters.png')  # doctest: +SKIP
    """
    check_png_path(path, "plot_filters")
    if isinstance(kernel, Mapping) or hasattr(kernel, "params"):
        kernel = first_conv_kernel(kernel)
    k = np.asarray(kernel)
    mosaic = filter_mosaic(k, ncols=ncols)
    if figsize is None:
        aspect = mosaic.shape[0] / mosaic.shape[1]
        figsize = (6.0, 6.0 * aspect + 0.5)
    fig = new_figure(figsize, dpi)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.axis("off")
    kh, kw, c_in, c_out = k.shape
    fig.suptitle(title or f"{c_out} filters {kh}x{kw}x{c_in} (each scaled to its own range)",
                 fontsize=10)
    return save(fig, path, "plot_filters")
