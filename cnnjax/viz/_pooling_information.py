"""How much of an image survives pooling: Rippel, Snoek & Adams 2015, "Spectral Representations
for Convolutional Neural Networks", Fig. 4.

Pool a greyscale image down to a fraction of its values, bring the pooled map back to full size
and measure the normalised reconstruction error ``||x - x_hat|| / ||x||``. Spectral pooling keeps
the lowest frequencies, which is the best L2 approximation a band-limited map can give, so its
curve lies below the spatial pools' at every fraction kept — the lectures' claim that spectral
pooling "preserves considerably more information per parameter" (lectures).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops.checks import check_choice, fail
from cnnjax.viz._common import check_png_path, new_figure, sample_photos, save

METHODS = ("spectral", "max", "avg", "lp")
DEFAULT_RATIOS = (1 / 4, 1 / 9, 1 / 16, 1 / 25, 1 / 36, 1 / 64)
# 240 x 360 is divisible by every default window (2, 3, 4, 5, 6, 8), so the spatial pools tile
# the photo exactly and nearest upsampling is plain repetition.
DEFAULT_SIZE = (240, 360)
_LABELS = {"spectral": "spectral", "max": "max", "avg": "average", "lp": "Lp"}


def _window_for_ratio(ratio: float, op: str) -> int:
    """The window ``k`` with ``1 / k**2 == ratio`` (a k x k pool keeps 1/k^2 of the values)."""
    if not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        fail(op, f"ratios must be numbers in (0, 1), got {ratio!r}.")
    k = round(1 / math.sqrt(ratio))
    if k < 2 or abs(1 / k**2 - ratio) > 1e-6:
        fail(op, f"ratios must be 1/k**2 for an integer pooling window k >= 2 (1/4, 1/9, ...), "
                 f"got {ratio!r}.")
    return k


def _as_batch(images: jax.typing.ArrayLike | None, op: str) -> jax.Array:
    """``[N, H, W]`` or ``[N, H, W, 1]`` (or ``None``: the sample photos) -> ``[N, H, W, 1]``."""
    if images is None:
        return jnp.asarray(sample_photos(DEFAULT_SIZE), jnp.float32)[..., None]
    x = jnp.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        fail(op, f"images must be greyscale [N, H, W] or [N, H, W, 1], got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        fail(op, f"images must have a floating dtype, got {x.dtype}.", TypeError)
    return x


def _spectral_upsample(y: jax.Array, full: tuple[int, int]) -> jax.Array:
    """Zero-pads the spectrum of ``y`` ``[N, h, w, C]`` to ``full`` and inverts the DFT.

    The scale ``H·W / (h·w)`` undoes the unnormalised DFT's size factor so a constant map stays
    the same constant (matching ``spectral_pool``'s normalisation). Taking the real part splits an
    even-size Nyquist coefficient evenly between +-Nyquist, the band-limited interpolation.
    """
    n, h, w, c = y.shape
    big_h, big_w = full
    spec = jnp.fft.fftshift(jnp.fft.fft2(y, axes=(1, 2)), axes=(1, 2))
    # In fftshift order index j holds frequency j - size//2; keep that frequency on the big grid.
    top, left = big_h // 2 - h // 2, big_w // 2 - w // 2
    padded = jnp.zeros((n, big_h, big_w, c), spec.dtype).at[:, top:top + h, left:left + w].set(spec)
    out = jnp.fft.ifft2(jnp.fft.ifftshift(padded, axes=(1, 2)), axes=(1, 2)).real
    return out * (big_h * big_w / (h * w))


def pooling_reconstruction(images: jax.typing.ArrayLike, window: int, method: str, *,
                           p: float = 2.0, upsample: str = "nearest") -> jax.Array:
    """Pools ``images`` by ``window`` with ``method`` and brings the result back to full size.

    Args:
      images: ``[N, H, W, 1]`` float images.
      window: pooling window and stride ``k``; the pooled map is ``[N, H//k, W//k, 1]``
        (``spectral_pool`` is asked for exactly that size, so every method keeps the same
        number of values).
      method: ``'spectral'`` (inverse DFT of the zero-padded spectrum), ``'max'``, ``'avg'`` or
        ``'lp'`` (power mean ``(mean |x|^p)^(1/p)``, i.e. ``lp_pool`` with uniform weights
        ``1/k^2`` so its scale matches the image's); the spatial pools are upsampled with
        ``jax.image.resize(method=upsample)``.
      p: the Lp pool's exponent.
      upsample: ``'nearest'`` or ``'linear'`` (bilinear) for the spatial pools.

    Returns:
      ``x_hat`` ``[N, H, W, 1]``, same dtype as ``images``.
    """
    from cnnjax import avg_pool, lp_pool, max_pool, spectral_pool

    op = "pooling_reconstruction"
    check_choice(method, METHODS, op, "method")
    check_choice(upsample, ("nearest", "linear"), op, "upsample")
    x = jnp.asarray(images)
    n, big_h, big_w, c = x.shape
    small = (big_h // window, big_w // window)
    if min(small) < 1:
        fail(op, f"window must be at most the image size {(big_h, big_w)}, got {window}.")
    if method == "spectral":
        return _spectral_upsample(spectral_pool(x, small), (big_h, big_w)).astype(x.dtype)
    if method == "max":
        y = max_pool(x, window)
    elif method == "avg":
        y = avg_pool(x, window)
    else:
        weights = jnp.full((window, window), 1.0 / window**2, x.dtype)
        y = lp_pool(x, window, p=p, weights=weights)
    return jax.image.resize(y, (n, big_h, big_w, c), method=upsample).astype(x.dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _evaluate(x: jax.Array, window: int, method: str, p: float,
              upsample: str) -> tuple[jax.Array, jax.Array]:
    """``(mean normalised error, reconstruction of the first image)``.

    One compiled program per (window, method), shared by the numbers and the plot's
    thumbnails: eager dispatch would compile every primitive of the pool, the FFTs and the
    resize separately for each new shape.
    """
    x_hat = pooling_reconstruction(x, window, method, p=p, upsample=upsample)
    err = jnp.sqrt(jnp.sum((x - x_hat) ** 2, axis=(1, 2, 3)) / jnp.sum(x * x, axis=(1, 2, 3)))
    return jnp.mean(err), x_hat[0]


def pooling_information(images: jax.typing.ArrayLike | None = None,
                        ratios: Sequence[float] | None = DEFAULT_RATIOS, *,
                        methods: Sequence[str] = METHODS, p: float = 2.0,
                        upsample: str = "nearest") -> dict:
    """Normalised reconstruction error against the fraction of values kept (Rippel et al. 2015).

    For each ratio ``1/k^2`` every method pools the images to ``[H//k, W//k]`` and
    :func:`pooling_reconstruction` brings them back to ``[H, W]``; the error of one image is
    ``||x - x_hat||_2 / ||x||_2``, averaged over the images.

    Args:
      images: greyscale ``[N, H, W]`` or ``[N, H, W, 1]`` floats; default scikit-learn's two
        sample photos in grey, downscaled to 240x360.
      ratios: fractions of values kept, each ``1/k^2`` for an integer window ``k >= 2``;
        ``None``: 1/4, 1/9, 1/16, 1/25, 1/36, 1/64.
      methods: subset of ``('spectral', 'max', 'avg', 'lp')``.
      p, upsample: see :func:`pooling_reconstruction`.

    Returns:
      ``{'ratios': [...], 'windows': [...], 'kept': [...], 'errors': {method: [...]}}`` with
      plain Python floats (``kept`` is the exact fraction ``(H//k)(W//k)/(HW)``).

    Example:
      >>> info = pooling_information(ratios=[1 / 4, 1 / 16])  # doctest: +SKIP
      >>> info['errors']['spectral'][0] < info['errors']['max'][0]  # doctest: +SKIP
      True
    """
    op = "pooling_information"
    x = _as_batch(images, op)
    ratios = DEFAULT_RATIOS if ratios is None else ratios
    for m in methods:
        check_choice(m, METHODS, op, "methods")
    windows = [_window_for_ratio(r, op) for r in ratios]
    big_h, big_w = x.shape[1:3]
    errors: dict[str, list[float]] = {m: [] for m in methods}
    for k in windows:
        for m in methods:
            errors[m].append(float(_evaluate(x, k, m, p, upsample)[0]))
    return {
        "ratios": [float(r) for r in ratios],
        "windows": windows,
        "kept": [(big_h // k) * (big_w // k) / (big_h * big_w) for k in windows],
        "errors": errors,
    }


def plot_pooling_information(images: jax.typing.ArrayLike | None,
                             ratios: Sequence[float] | None, path: str | Path, *,
                             p: float = 2.0, upsample: str = "nearest",
                             show_ratio: float | str | None = "auto",
                             figsize: tuple[float, float] = (12.0, 4.5),
                             dpi: float = 100) -> Path:
    """Plots :func:`pooling_information` (left) and one photo reconstructed by each method (right).

    Args:
      images, ratios, p, upsample: as in :func:`pooling_information` (``None`` for the
        defaults: the sample photos, ratios 1/4 ... 1/64).
      path: output PNG path.
      show_ratio: the ratio whose reconstructions of the first image are shown (one of
        ``ratios``); ``'auto'``: 1/16 if present, else the middle ratio; ``None`` draws only
        the curve.
      figsize, dpi: the PNG is ``figsize * dpi`` pixels.

    Returns:
      ``path`` as a ``Path``.

    Example:
      >>> plot_pooling_information(None, None, 'pooling_information.png')  # doctest: +SKIP
    """
    op = "plot_pooling_information"
    check_png_path(path, op)
    x = _as_batch(images, op)
    ratios = DEFAULT_RATIOS if ratios is None else ratios
    info = pooling_information(x, ratios, p=p, upsample=upsample)
    if isinstance(show_ratio, str) and show_ratio == "auto":
        show_ratio = next((r for r in info["ratios"] if abs(r - 1 / 16) < 1e-9),
                          info["ratios"][len(info["ratios"]) // 2])
    if show_ratio is not None and not any(abs(show_ratio - r) < 1e-9 for r in info["ratios"]):
        fail(op, f"show_ratio must be one of ratios {list(ratios)}, got {show_ratio!r}.")
    fig = new_figure(figsize, dpi)
    cols = 5 if show_ratio is not None else 2
    grid = fig.add_gridspec(2, cols, left=0.07, right=0.99, top=0.9, bottom=0.12, wspace=0.08,
                            hspace=0.2)
    ax = fig.add_subplot(grid[:, :2])
    for m in METHODS:
        ax.plot(info["kept"], info["errors"][m], marker="o", label=_LABELS[m])
    ax.set_xscale("log")
    ax.set_xticks(info["kept"])
    ax.set_xticklabels([f"1/{k * k}" for k in info["windows"]])
    ax.minorticks_off()
    ax.set_xlabel("fraction of values kept")
    ax.set_ylabel("||x - x_hat|| / ||x||")
    ax.set_title(f"Information kept by pooling ({x.shape[0]} photos, {upsample} upsampling, "
                 f"Lp p={p:g})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if show_ratio is not None:
        k = _window_for_ratio(show_ratio, op)
        thumbs = [("original", np.asarray(x[0, :, :, 0]))]
        for m in METHODS:
            err = info["errors"][m][info["windows"].index(k)]
            rec = np.asarray(_evaluate(x, k, m, p, upsample)[1])
            thumbs.append((f"{_LABELS[m]} ({err:.3f})", rec[:, :, 0]))
        slots = [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3)]
        for (title, img), (r, c) in zip(thumbs, slots):
            tax = fig.add_subplot(grid[r, c])
            tax.imshow(np.clip(img, 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
            tax.set_title(title, fontsize=9)
            tax.axis("off")
        note = fig.add_subplot(grid[1, 4])
        note.axis("off")
        note.text(0.05, 0.5, f"reconstructions of photo 1\nat 1/{k * k} of the values\n"
                             "(error over all photos\nin brackets)", fontsize=9, va="center")
    return save(fig, path, op)
