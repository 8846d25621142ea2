"""Shared plumbing for the plots: a headless matplotlib figure, saving, the sample photos.

Figures are built with ``matplotlib.figure.Figure`` directly (the object-oriented API with the
Agg canvas) rather than ``pyplot``: no global backend switch, no display, no figure registry
that leaks memory when a script draws many plots.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from cnnjax.ops.checks import fail

# ITU-R BT.601 luma weights, the usual RGB -> grey conversion (also PIL's "L" mode).
_LUMA = np.array([0.299, 0.587, 0.114])
_SAMPLE_NAMES = ("china.jpg", "flower.jpg")


def require_matplotlib():
    """Imports matplotlib or raises an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "cnnjax.viz needs matplotlib; install it with `pip install cnnjax[viz]`."
        ) from err
    return matplotlib


def new_figure(figsize: tuple[float, float], dpi: float):
    """A ``Figure`` of ``figsize`` inches at ``dpi`` on the Agg canvas (PNG of figsize*dpi px)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def check_png_path(path: str | Path, op: str) -> Path:
    """``Path(path)``, after checking it ends in ``.png`` (checked before any work is done)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        fail(op, f"path must end in '.png' (the plots are written as PNG), got {str(path)!r}.")
    return path


def save(fig: Any, path: str | Path, op: str) -> Path:
    """Writes ``fig`` as PNG to ``path`` (parents created) and returns the path.

    No ``bbox_inches='tight'``: the PNG is exactly ``figsize * dpi`` pixels, which callers and
    tests rely on.
    """
    path = check_png_path(path, op)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=fig.dpi)
    return path


def to_grey(image: Any) -> np.ndarray:
    """``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (uint8 or float) -> float64 ``[H, W]``.

    uint8 is scaled to [0, 1]; RGB is mixed with the BT.601 luma weights.
    """
    img = np.asarray(image)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    img = img.astype(np.float64) / scale
    if img.ndim == 3 and img.shape[-1] == 3:
        img = img @ _LUMA
    elif img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        fail("to_grey", f"image must be [H, W], [H, W, 1] or [H, W, 3], got shape {img.shape}.")
    return img


@functools.lru_cache(maxsize=1)
def _sample_rgb() -> tuple[np.ndarray, ...]:
    # The JPEGs ship inside scikit-learn; reading them with PIL (a matplotlib dependency)
    # avoids importing sklearn.datasets, which takes seconds.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the sample photos come from scikit-learn; install it with "
                          "`pip install cnnjax[data]`.")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "images"
    try:
        from PIL import Image

        return tuple(np.asarray(Image.open(folder / name).convert("RGB"))
                     for name in _SAMPLE_NAMES)
    except (ImportError, OSError):
        from sklearn.datasets import load_sample_images

        return tuple(load_sample_images().images)


def sample_photos(size: tuple[int, int] | None = None) -> np.ndarray:
    """scikit-learn's two sample photos (china, flower), greyscale, float64 ``[2, H, W]`` in [0, 1].

    Args:
      size: optional ``(H, W)`` to downscale to (area averaging via antialiased resize), for
        speed; ``None`` keeps the native 427x640.
    """
    photos = np.stack([to_grey(img) for img in _sample_rgb()])
    if size is not None:
        import jax
        import jax.numpy as jnp

        photos = np.asarray(jax.image.resize(jnp.asarray(photos), (len(photos), *size),
                                              method="linear", antialias=True))
    return photos


def normalise_for_display(a: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """Min-max scales ``a`` to [0, 1] over ``axes`` (a constant block maps to 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo = a.min(axis=axes, keepdims=True)
    hi = a.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.5)
