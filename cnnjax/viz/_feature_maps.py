"""Feature maps layer by layer for one input (lectures, "Visualize features": hierarchical
convolution and pooling turn pixels into increasingly abstract maps)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from cnnjax.ops.checks import fail
from cnnjax.models import introspect
from cnnjax.viz._common import check_png_path, new_figure, normalise_for_display, save


def feature_maps(model: Any, variables: Any,
                 image: jax.typing.ArrayLike) -> list[tuple[str, np.ndarray]]:
    """The output of every conv and pooling module of ``model`` for one image, in call order.

    Args:
      model: a flax model ``__call__(x, *, train)`` built from conv/pool modules
        (``cnnjax.nn`` or ``flax.linen``); it runs with ``train=False``.
      variables: its variables (``{'params': ..., 'batch_stats': ...}``).
      image: ``[H, W]``, ``[H, W, C]`` or ``[1, H, W, C]``; uint8 is scaled to [0, 1].

    Returns:
      ``[(name, [h, w, C] array), ...]`` with the module path and class as the name.

    Example:
      >>> maps = feature_maps(model, variables, image)  # doctest: +SKIP
      >>> [(n, m.shape) for n, m in maps][0]  # doctest: +SKIP
      ('Conv_0 (Conv)', (28, 28, 20))
    """
    op = "plot_feature_maps"
    x = introspect.as_input(image, op)
    calls, _ = introspect.trace(model, variables, x, op=op)
    maps = []
    for call in introspect.layers(calls, model=model, op=op):
        out = call.output
        if out.ndim == 4:
            maps.append((f"{call.name} ({type(call.module).__name__})", np.asarray(out[0])))
    return maps


def plot_feature_maps(model: Any, variables: Any, image: jax.typing.ArrayLike, path: str | Path,
                      *, max_channels: int = 8, figsize: tuple[float, float] | None = None,
                      dpi: float = 100) -> Path:
    """Draws the input and, one row per conv/pool stage, its first ``max_channels`` feature maps.

    Each map is min-max scaled on its own (grey, bright = large activation), as in the lectures'
    feature-map figures.

    Args:
      model, variables, image: as in :func:`feature_maps`.
      path: output PNG path.
      max_channels: columns of maps per row.
      figsize: inches, default ``(1.3 * (max_channels + 1), 1.3 * rows + 0.5)``; dpi: dots per
        inch. The PNG is ``figsize * dpi`` pixels.

    Returns:
      ``path`` as a ``Path``.

    Example:
      >>> plot_feature_maps(model, variables, images[0], 'maps.png')  # doctest: +SKIP
    """
    op = "plot_feature_maps"
    check_png_path(path, op)
    if not isinstance(max_channels, int) or max_channels < 1:
        fail(op, f"max_channels must be a positive int, got {max_channels!r}.")
    x = np.asarray(introspect.as_input(image, op)[0], dtype=np.float64)
    maps = feature_maps(model, variables, image)
    rows = len(maps) + 1
    cols = max_channels + 1
    figsize = figsize or (1.3 * cols, 1.3 * rows + 0.5)
    fig = new_figure(figsize, dpi)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.5 / figsize[1], bottom=0.01,
                        wspace=0.05, hspace=0.35)
    for ax in axes.ravel():
        ax.axis("off")
    shown = x if x.shape[-1] == 3 else x.mean(axis=-1)
    axes[0, 0].imshow(normalise_for_display(shown), cmap=None if shown.ndim == 3 else "gray")
    axes[0, 0].set_title(f"input {x.shape[0]}x{x.shape[1]}", fontsize=7)
    for r, (name, fmap) in enumerate(maps, start=1):
        axes[r, 0].text(0.0, 0.5, f"{name}\n{fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}",
                        fontsize=7, va="center", ha="left", wrap=True)
        tiles = normalise_for_display(np.moveaxis(fmap, -1, 0)[:max_channels], axes=(1, 2))
        for c, tile in enumerate(tiles, start=1):
            axes[r, c].imshow(tile, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.suptitle(f"Feature maps of {type(model).__name__} (first {max_channels} channels per "
                 "stage)", fontsize=10)
    return save(fig, path, op)

