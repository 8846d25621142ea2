"""Where a training step spends its time: XLA's profiler trace attributed to model layers."""
from __future__ import annotations

import glob
import gzip
import json
import os
import re
import tempfile
from typing import Any

import jax

from cnnjax.bench.config import Config


_OP_NAME = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]*)"')


def hlo_op_names(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> the JAX op it came from (``op_name`` metadata)."""
    names = {}
    for line in hlo_text.splitlines():
        m = _OP_NAME.match(line)
        if m:
            names[m.group(1)] = m.group(2).removeprefix("jit(step)/")
    return names


def layer_of(op_name: str) -> str:
    """A readable bucket for an op: ``'fwd Conv_1'``, ``'bwd Dense_0'``, ``'optimizer'``..."""
    phase = "bwd" if "transpose(" in op_name else "fwd"
    m = re.search(r"\b((?:Conv|Dense|ConvBN|MaxPool|AvgPool|Pool|Dropout|ReLU|Flatten|LogSoftmax)\w*)/", op_name)
    if m:
        return f"{phase} {m.group(1)}"
    if any(t in op_name for t in ("pool", "reduce_window", "max_pool")):
        return f"{phase} pooling"
    if phase == "fwd" and "jvp(" not in op_name:
        return "optimizer / loss"
    return f"{phase} other"


def profile_step(trainer: Any, cfg: Config, steps: int = 5, top: int = 12
                 ) -> dict[str, Any]:
    """Where one training step's time goes: an XLA profiler trace, per op and per layer.

    Runs ``steps`` steps under ``jax.profiler.trace`` (Perfetto JSON), sums the duration of
    every executed XLA thunk and maps it back to the JAX op that produced it through the
    compiled HLO's ``op_name`` metadata. Thunks run concurrently on the CPU's threads, so the
    per-op sum can exceed the wall time of a step; the shares are what matter.
    """
    names = hlo_op_names(trainer.step.as_text())
    for _ in range(2):
        trainer()
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            for _ in range(steps):
                trainer()
        files = glob.glob(os.path.join(tmp, "**", "*.json.gz"), recursive=True)
        if not files:
            return {"error": "the profiler wrote no Perfetto trace"}
        with gzip.open(files[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    per_op: dict[str, float] = {}
    for e in events:
        base = str(e.get("name", "")).removeprefix("end: ")
        if e.get("ph") == "X" and base in names and not str(e["name"]).startswith("end: "):
            per_op[base] = per_op.get(base, 0.0) + e.get("dur", 0) / 1e3 / steps
    per_layer: dict[str, float] = {}
    for op, ms in per_op.items():
        layer = layer_of(names[op])
        per_layer[layer] = per_layer.get(layer, 0.0) + ms
    total = sum(per_op.values())
    ops = sorted(per_op.items(), key=lambda kv: -kv[1])[:top]
    return {"thunk_ms_per_step": total,
            "layers": dict(sorted(per_layer.items(), key=lambda kv: -kv[1])),
            "ops": [{"hlo": op, "op_name": names[op], "ms": ms} for op, ms in ops]}
