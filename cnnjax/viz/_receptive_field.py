"""Receptive fields growing with depth (lectures, "Receptive Field": the region of the input
that affects a unit), computed with ``cnnjax.receptive_field`` and drawn on the input grid."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from cnnjax.ops.checks import fail
from cnnjax.viz._common import check_png_path, new_figure, save
from cnnjax.models import introspect


def _layer_list(layers: Sequence[Any], op: str) -> list[tuple[int, int, int, int]]:
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence) or \
                len(layer) not in (3, 4):
            fail(op, f"layers[{i}] must be (kernel_size, stride, padding[, dilation]), "
                     f"got {layer!r}.", TypeError)
        k, s, p, *rest = (int(v) for v in layer)
        out.append((k, s, p, rest[0] if rest else 1))
    return out


def receptive_field_table(model_or_layers: Any, input_shape: Sequence[int]) -> list[dict]:
    """The receptive field of every conv/pool layer of a model (or of a list of layers).

    Args:
      model_or_layers: a flax model ``__call__(x, *, train)`` (its conv and pooling modules are
        found by running it shape-only; branches such as residual shortcuts and Inception
        paths are followed, see :func:`cnnjax.models.introspect.receptive_fields`), or a
        sequence of ``(kernel_size, stride, padding, dilation)`` layers applied to both axes.
      input_shape: ``(H, W)`` or ``(H, W, C)`` of one example.

    Returns:
      One dict per layer: ``name``, ``size`` ``(h, w)`` in input pixels, ``jump`` ``(h, w)``,
      ``start`` ``(h, w)`` (input coordinate of the first output's centre) and ``out_size``
      ``(h, w)``.

    Example:
      >>> [r['size'] for r in receptive_field_table([(3, 1, 1, 1)] * 2, (8, 8))]
      [(3, 3), (5, 5)]
    """
    from cnnjax import receptive_field

    op = "plot_receptive_field"
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        fail(op, f"input_shape must be (H, W) or (H, W, C) positive ints, got {input_shape!r}.")
    spatial = shape[:2]
    rows = []
    if isinstance(model_or_layers, Sequence) and not isinstance(model_or_layers, str):
        spec = _layer_list(model_or_layers, op)
        sizes = list(spatial)
        for i in range(len(spec)):
            rfs = [receptive_field(spec[: i + 1])[-1] for _ in spatial]
            k, s, p, r = spec[i]
            sizes = [(n + 2 * p - r * (k - 1) - 1) // s + 1 for n in sizes]
            if min(sizes) < 1:
                fail(op, f"layers[{i}] {spec[i]} does not fit the input {spatial}: the output "
                         f"would be {tuple(sizes)}.")
            rows.append(_row(f"layer {i + 1}", rfs, sizes))
        return rows
    x = jnp.zeros((1, *spatial, shape[2] if len(shape) == 3 else 1), jnp.float32)
    calls, _ = introspect.trace(model_or_layers, None, x, op=op)
    found = introspect.layers(calls, model=model_or_layers, op=op)
    for call, chain in zip(found, introspect.receptive_fields(calls, spatial, op)):
        rfs = [receptive_field([geo[a] for geo in chain])[-1] for a in range(2)]
        out = call.output
        out_sizes = out.shape[1:3] if out.ndim == 4 else (1, 1)
        rows.append(_row(f"{call.name} ({type(call.module).__name__})", rfs, out_sizes))
    return rows


def _row(name: str, rfs: Sequence[Any], out_sizes: Sequence[int]) -> dict:
    return {"name": name, "size": tuple(int(r.size) for r in rfs),
            "jump": tuple(int(r.jump) for r in rfs), "start": tuple(float(r.start) for r in rfs),
            "out_size": tuple(int(v) for v in out_sizes)}


def plot_receptive_field(model_or_layers: Any, input_shape: Sequence[int], path: str | Path, *,
                         title: str | None = None, figsize: tuple[float, float] = (11.0, 4.8),
                         dpi: float = 100) -> Path:
    """Receptive-field size per layer (left) and what the centre unit of each layer sees (right).

    The right panel draws the input's pixel grid and, for each layer, the input region seen by
    its centre output unit (``centre = start + o * jump`` with ``o = (out - 1) // 2``, the
    region ``centre +- (size - 1) / 2``, clipped to the input); the deepest layer is outlined
    in black. See :func:`receptive_field_table` for the arguments.

    Args:
      model_or_layers: a flax model, or ``(kernel_size, stride, padding, dilation)`` layers.
      input_shape: ``(H, W)`` or ``(H, W, C)``.
      path: output PNG path.
      title: figure title (default names the input size).
      figsize, dpi: the PNG is ``figsize * dpi`` pixels.

    Returns:
      ``path`` as a ``Path``.

    Example:
      >>> plot_receptive_field([(3, 1, 1, 1)] * 4, (16, 16), 'rf.png')  # doctest: +SKIP
    """
    check_png_path(path, "plot_receptive_field")
    rows = receptive_field_table(model_or_layers, input_shape)
    height, width = (int(v) for v in tuple(input_shape)[:2])
    fig = new_figure(figsize, dpi)
    ax, gax = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.5, 1)})
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3, top=0.84, wspace=0.15)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    # viridis stops before its pale yellow end, which would vanish on the white grid.
    colours = [cmap(0.85 * i / max(len(rows) - 1, 1)) for i in range(len(rows))]
    idx = np.arange(len(rows))
    sizes_h = [r["size"][0] for r in rows]
    sizes_w = [r["size"][1] for r in rows]
    if sizes_h == sizes_w:
        ax.bar(idx, sizes_h, color=colours)
    else:
        ax.bar(idx - 0.2, sizes_h, 0.4, color=colours, label="height")
        ax.bar(idx + 0.2, sizes_w, 0.4, color=colours, hatch="//", label="width")
        ax.legend(fontsize=8)
    if len(rows) <= 24:
        for i, sh in zip(idx, sizes_h):
            ax.text(i, sh, str(sh), ha="center", va="bottom", fontsize=7)
    ax.axhline(height, color="grey", linestyle="--", linewidth=1)
    ax.text(-0.5, height, f" input height {height}", ha="left", va="bottom", fontsize=8,
            color="grey")
    ax.set_xticks(idx)
    many = len(rows) > 16
    # Many layers: the module path alone (the class is in it for the usual naming) keeps the
    # labels legible.
    ax.set_xticklabels([r["name"].split(" (")[0] if many else r["name"] for r in rows],
                       rotation=60, ha="right", fontsize=6 if many else 7)
    ax.set_ylabel("receptive field (input pixels)")
    ax.set_xlim(-0.6, len(rows) - 0.4)

    gax.set_xlim(-0.5, width - 0.5)
    gax.set_ylim(height - 0.5, -0.5)
    gax.set_aspect("equal")
    if max(height, width) <= 64:
        gax.set_xticks(np.arange(-0.5, width, 1.0), minor=True)
        gax.set_yticks(np.arange(-0.5, height, 1.0), minor=True)
        gax.grid(which="minor", color="lightgrey", linewidth=0.4)
    from matplotlib.patches import Rectangle

    # Widest first, so the smaller (earlier) regions stay visible on top of the deeper ones.
    for i, (row, colour) in reversed(list(enumerate(zip(rows, colours)))):
        box = []
        for a, limit in enumerate((height, width)):
            o = (row["out_size"][a] - 1) // 2
            centre = row["start"][a] + o * row["jump"][a]
            half = (row["size"][a] - 1) / 2
            box.append((max(centre - half, 0.0) - 0.5, min(centre + half, limit - 1) + 0.5,
                        centre))
        (y0, y1, cy), (x0, x1, cx) = box
        last = i == len(rows) - 1
        face = matplotlib.colors.to_rgba(colour, 0.1 if last else 0.2)
        gax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=face,
                                edgecolor="black" if last else colour,
                                linewidth=1.8 if last else 1.0))
        if last:
            gax.plot([cx], [cy], marker="+", color="red", markersize=10)
    gax.set_title("input region seen by the centre unit of each layer\n(colours as in the "
                  "bars; deepest outlined, its centre +)", fontsize=9)
    gax.tick_params(labelsize=7)
    fig.suptitle(title or f"Receptive field per layer on a {height}x{width} input", fontsize=11,
                 y=0.98)
    return save(fig, path, "plot_receptive_field")
