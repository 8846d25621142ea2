"""The lectures' hand-made 3x3 kernels and what they do to a photo.

Seed ``000`` ("Multiple filters: intuitive examples") shows four matrices: image blurring (a
box of ones), edge detection (the 4-neighbour Laplacian), image enhancement (sharpening) and
vertical detection (a horizontal difference that responds to vertical edges).
"""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.viz._common import check_png_path, new_figure, sample_photos, save, to_grey


def classic_kernels() -> dict[str, np.ndarray]:
    """The lectures' four 3x3 kernels, as float64 ``[3, 3]`` arrays, in the lectures' order.

    * ``'blur'``: the box of ones divided by 9, so a constant image stays the same constant
      (the slide shows the ones; the 1/9 keeps brightness).
    * ``'edge'``: the Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (zero on constants).
    * ``'sharpen'``: ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`` = identity minus the Laplacian.
    * ``'vertical'``: ``[[0, 0, 0], [-1, 1, 0], [0, 0, 0]]``, ``x[i, j] - x[i, j-1]`` under
      cross-correlation: large where brightness changes left to right, i.e. on vertical edges.

    Example:
      >>> float(classic_kernels()['edge'].sum())
      0.0
    """
    return {
        "blur": np.ones((3, 3)) / 9.0,
        "edge": np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
        "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
        "vertical": np.array([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    }


def apply_classic_kernels(image: jax.typing.ArrayLike, *,
                          padding_mode: str = "replicate") -> dict[str, jax.Array]:
    """Cross-correlates a greyscale image with each of :func:`classic_kernels` via ``cnnjax.conv``.

    Args:
      image: ``[H, W]`` (or ``[H, W, 1]``/``[H, W, 3]``, converted to grey) image; a float
        image keeps its dtype, uint8 is scaled to [0, 1] float32.
      padding_mode: border rule for the 1-pixel padding that keeps the size ``H x W``;
        ``'replicate'`` (default) keeps a constant image constant up to the border.

    Returns:
      Dict name -> ``[H, W]`` filtered image.

    Example:
      >>> out = apply_classic_kernels(np.ones((5, 5)))
      >>> float(out['blur'][0, 0]), float(out['edge'][2, 2])
      (1.0, 0.0)
    """
    from cnnjax import conv

    arr = np.asarray(image)
    if arr.ndim == 3 or arr.dtype == np.uint8:
        dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
        arr = to_grey(arr).astype(dtype)
    x = jnp.asarray(arr)[None, :, :, None]
    kernels = classic_kernels()
    # One conv with the four kernels as output channels: [3, 3, C_in=1, C_out=4].
    w = jnp.asarray(np.stack(list(kernels.values()), axis=-1)[:, :, None, :], x.dtype)
    # Jitted as a whole: eager dispatch would compile each primitive of the conv separately.
    y = jax.jit(functools.partial(conv, padding=1, padding_mode=padding_mode))(x, w)[0]
    return {name: y[:, :, i] for i, name in enumerate(kernels)}


def plot_classic_kernels(image: jax.typing.ArrayLike | None, path: str | Path, *,
                         figsize: tuple[float, float] = (12.0, 4.4), dpi: float = 80) -> Path:
    """Draws each classic kernel (top row) above the photo it produced (bottom row).

    Args:
      image: greyscale or RGB image; ``None``: a 240x300 crop (the pagoda) of scikit-learn's
        ``china.jpg`` sample photo, small enough that a 3x3 kernel's effect is visible.
      path: output PNG path.
      figsize, dpi: the PNG is ``figsize * dpi`` pixels.

    Returns:
      ``path`` as a ``Path``.

    Example:
      >>> plot_classic_kernels(None, 'kernels.png')  # doctest: +SKIP
    """
    check_png_path(path, "plot_classic_kernels")
    photo = sample_photos()[0][100:340, 150:450] if image is None else to_grey(image)
    outputs = apply_classic_kernels(photo.astype(np.float32))
    kernels = classic_kernels()
    titles = {"blur": "box blur", "edge": "Laplacian (edges)", "sharpen": "sharpen",
              "vertical": "vertical edges"}
    fig = new_figure(figsize, dpi)
    grid = fig.add_gridspec(2, 5, height_ratios=(1, 2.2), left=0.01, right=0.99, top=0.87,
                            bottom=0.02, wspace=0.05, hspace=0.12)
    ax = fig.add_subplot(grid[1, 0])
    ax.imshow(photo, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_title("input (greyscale)", fontsize=10)
    ax.axis("off")
    fig.add_subplot(grid[0, 0]).axis("off")
    for col, name in enumerate(kernels, start=1):
        k = kernels[name]
        kax = fig.add_subplot(grid[0, col])
        lim = np.abs(k).max()
        kax.imshow(k, cmap="coolwarm", vmin=-lim, vmax=lim)
        for (i, j), v in np.ndenumerate(k):
            label = "1/9" if name == "blur" else f"{v:g}"
            kax.text(j, i, label, ha="center", va="center", fontsize=8,
                     color="white" if abs(v) > 0.6 * lim else "black")
        kax.set_title(titles[name], fontsize=10)
        kax.set_xticks([])
        kax.set_yticks([])
        out = np.asarray(outputs[name], dtype=np.float64)
        iax = fig.add_subplot(grid[1, col])
        if name in ("blur", "sharpen"):
            iax.imshow(np.clip(out, 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
        else:
            # Signed responses: a symmetric range around 0 (mid-grey) at the 98th percentile,
            # so a few saturated pixels do not wash out the edges.
            lim = float(np.percentile(np.abs(out), 98)) or 1.0
            iax.imshow(out, cmap="gray", vmin=-lim, vmax=lim)
        iax.axis("off")
    fig.suptitle("The lectures' 3x3 kernels applied with cnnjax.conv (grey = 0 for the "
                 "signed edge responses)", fontsize=11, y=0.98)
    return save(fig, path, "plot_classic_kernels")
