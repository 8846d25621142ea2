"""``cnnjax tune``: measure ``impl='auto'`` for every convolution of a model's training step.

The model's ``fit`` training step is traced and run once on random data of the requested
shape, so every convolution it contains is measured and cached exactly as the first real
training run would do it (see ``cnnjax.conv_choice``); the table then shows, per distinct
convolution, the impl chosen, each impl's forward+backward time and where the choice is
stored. Later runs on this machine read the cache and compile at once.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnjax.bench.report import fmt, table

TUNED_IMPLS = ("xla", "im2col", "xla_im2col_grad", "fft")


def tune_model(model: Any, input_shape: Sequence[int], batch_size: int,
               num_classes: int = 10) -> list[dict[str, Any]]:
    """Runs one ``fit`` step of ``model`` on random ``[batch_size, *input_shape]`` images.

    Returns one row per distinct convolution the training step traced: its input and
    kernel shapes, stride/padding/groups, the choice (``impl``, ``source``, ``reason``,
    ``times_ms``, ``cache_path``).
    """
    import jax

    from cnnjax import train
    from cnnjax.data import Dataset
    from cnnjax.ops import _autotune

    jax.clear_caches()  # fit's compiled steps are cached: trace them again to see every conv
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, *input_shape), dtype=np.uint8)
    labels = (np.arange(batch_size) % num_classes).astype(np.int32)
    data = Dataset(images, labels, num_classes, "random")
    with _autotune.observe() as seen:
        train.fit(model, data, None, epochs=1, batch_size=batch_size, learning_rate=1e-3,
                  seed=0, augment=None, progress=False)
    rows: dict[tuple, dict[str, Any]] = {}
    for x_shape, w_shape, geom, dtype, choice in seen:
        key = (x_shape, w_shape, geom, dtype)
        # Measured beats static: the train step's trace comes after fit's init trace.
        if key not in rows or rows[key]["source"] == "static":
            rows[key] = {"x_shape": x_shape, "w_shape": w_shape, "stride": geom.stride,
                         "padding": geom.padding, "groups": geom.groups, "dtype": dtype,
                         **choice._asdict()}
    return [r for r in rows.values() if r["x_shape"][0] == batch_size]


def _layer(r: dict[str, Any]) -> str:
    x, w = r["x_shape"], r["w_shape"]
    k = "x".join(map(str, w[:-2]))
    text = f"{'x'.join(map(str, x))} k{k}"
    if any(s != 1 for s in r["stride"]):
        text += f" s{'x'.join(map(str, r['stride']))}"
    pads = [f"{lo}:{hi}" if lo != hi else str(lo) for lo, hi in r["padding"]]
    if any(p != "0" for p in pads):
        text += f" p{pads[0] if len(set(pads)) == 1 else ','.join(pads)}"
    if r["groups"] > 1:
        text += f" g{r['groups']}"
    return f"{text} -> {w[-1]}"


def format_tune(rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown table ``cnnjax tune`` prints: layer -> choice, each impl's ms."""
    body = [[_layer(r), r["impl"], r["source"],
             *(fmt(r["times_ms"].get(i), 2) for i in TUNED_IMPLS)] for r in rows]
    out = [table(["conv (input, kernel, stride, padding -> C_out)", "auto→", "how",
                  *(f"{i} ms" for i in TUNED_IMPLS)], body)]
    static = sorted({r["reason"] for r in rows if r["source"] == "static"})
    for reason in static:
        out.append(f"static: {reason}")
    paths = sorted({r["cache_path"] for r in rows if r["cache_path"]})
    out.append(f"cache: {', '.join(paths) if paths else 'none written'}")
    return "\n".join(out)
