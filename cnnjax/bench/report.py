"""The benchmark's Markdown report and its targets (each a measured ratio and a threshold)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnjax.bench.conv_suite import CHOICES, IMPLS
from cnnjax.bench.timing import geomean, ratio


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The benchmark result as Markdown tables (what ``cnnjax bench`` prints)."""
    meta = result["meta"]
    out = [f"cnnjax bench — {meta['date']}, jax {meta['jax']} ({meta['backend']}), "
           f"{meta['cores']} cores, {meta['cpu']}, torch {meta['torch'] or 'absent'}, "
           f"batch {meta['batch']}, median of {meta['repeats']} interleaved runs"
           + (f", glibc malloc tuned ({' '.join(f'{k}={v}' for k, v in meta['malloc_env'].items())})"
              if meta.get("malloc_env") else ""), ""]
    for note in result["notes"]:
        out.append(f"> note: {note}")
    if result["notes"]:
        out.append("")
    mm = result.get("matmul")
    if mm:
        out.append(f"Matmul peak (float32, {mm['jax_size']}²): jax {fmt(mm['jax_gflops'])} "
                   f"GFLOP/s, torch {fmt(mm['torch_gflops'])} GFLOP/s.")
        out.append("")
    conv = result.get("conv")
    if conv:
        peak = (mm or {}).get("jax_gflops")
        names = [*IMPLS, "flax"] + (["torch"] if "torch" in conv[0]["fwd_ms"] else [])
        for phase, key in (("forward+backward", "fwd_bwd"), ("forward", "fwd")):
            out.append(f"### Conv layers, {phase} — GFLOP/s (higher is better)")
            rows = []
            for r in conv:
                g = r[f"{key}_gflops"]
                rows.append([r["layer"], r["shape"], r["auto_impl"],
                             *(fmt(g[n]) for n in names),
                             fmt(r[f"auto_over_xla_{key}"], 2) + "×",
                             fmt(r.get(f"auto_over_torch_{key}"), 2) + "×",
                             fmt(ratio(g["auto"], peak) and 100 * g["auto"] / peak, 0) + "%"])
            gm = [geomean([r[f"{key}_gflops"][n] for r in conv]) for n in names]
            rows.append(["geometric mean", "", "", *(fmt(v) for v in gm),
                         fmt(geomean([r[f"auto_over_xla_{key}"] for r in conv]), 2) + "×",
                         fmt(geomean([r.get(f"auto_over_torch_{key}") for r in conv]), 2)
                         + "×", ""])
            out.append(table(["layer", "shape", "auto→", *names, "auto/xla", "auto/torch",
                               "auto/peak"], rows))
            out.append("")
    if conv:
        out.append("### Conv layers, forward+backward — ms per impl and what `auto` ran "
                   "(lower is better)")
        rows = [[r["layer"], r["shape"], r["auto_impl"], r.get("auto_source", "–"),
                 *(fmt(r["fwd_bwd_ms"][n], 2) for n in CHOICES), fmt(r["fwd_bwd_ms"]["auto"], 2),
                 r.get("best_impl", "–"), fmt(r.get("auto_over_best_fwd_bwd"), 2) + "×"]
                for r in conv]
        out.append(table(["layer", "shape", "auto→", "how", *(f"{n}" for n in CHOICES),
                          "auto", "fastest", "auto/fastest"], rows))
        out.append("")
    pool = result.get("pool")
    if pool:
        out.append(f"### Pooling, {'x'.join(map(str, pool['shape']))}, 2×2 — ms and ratio to "
                   "max_pool (lower is better)")
        out.append(table(["op", "fwd ms", "fwd+bwd ms", "fwd ×max_pool", "fwd+bwd ×max_pool"],
                          [[r["op"], fmt(r["fwd_ms"], 2), fmt(r["fwd_bwd_ms"], 2),
                            fmt(r["fwd_vs_max_pool"], 2), fmt(r["fwd_bwd_vs_max_pool"], 2)]
                           for r in pool["rows"]]))
        if pool["missing"]:
            out.append(f"\nNot available in this cnnjax: {', '.join(pool['missing'])}.")
        out.append("")
    train = result.get("train")
    if train and train["rows"]:
        names = list(train["rows"][0]["ms"])
        out.append("### Training step (Adam) — ms/step (lower is better)")
        out.append(table(
            ["model", "batch", *names, "flax/cnnjax", "cnnjax/torch", "fit nnx/linen"],
            [[r["model"], str(r["batch"]), *(fmt(r["ms"][n]) for n in names),
              fmt(r["flax_over_cnnjax"], 2) + "×", fmt(r.get("cnnjax_over_torch"), 2) + "×",
              fmt(r.get("nnx_over_linen"), 3) + "×"]
             for r in train["rows"]]))
        out.append("")
    if train and train.get("bn_fold"):
        b = train["bn_fold"]
        out.append("### Eval with batch norm folded into the convs")
        out.append(table(["model", "batch", "unfolded ms", "folded ms", "speedup",
                           "max |Δlogit|"],
                          [[b["model"], str(b["batch"]), fmt(b["unfolded_ms"]),
                            fmt(b["folded_ms"]), fmt(b["speedup"], 2) + "×",
                            f"{b['max_abs_logit_diff']:.1e}"]]))
        out.append("")
    for model, prof in ((train or {}).get("profile") or {}).items():
        if "layers" not in prof:
            continue
        total = prof["thunk_ms_per_step"] or 1.0
        out.append(f"### Where the cnnjax {model} step goes (XLA profiler, ms/step summed over "
                   f"threads, total {prof['thunk_ms_per_step']:.1f})")
        out.append(table(["part", "ms", "share"],
                          [[k, fmt(v), f"{100 * v / total:.0f}%"]
                           for k, v in prof["layers"].items()]))
        out.append("")
        out.append(table(["top XLA op", "from", "ms"],
                          [[o["hlo"], o["op_name"][-70:].replace("|", "/"), fmt(o["ms"])]
                           for o in prof["ops"]]))
        out.append("")
    if train and train.get("memory"):
        out.append("### Training-step memory (XLA compiled statistics, MB)")
        out.append(table(["model", "variant", "arguments", "outputs", "temp", "peak"],
                          [[m["model"], m["variant"], fmt(m["arguments_mb"]),
                            fmt(m["outputs_mb"]), fmt(m["temp_mb"]), fmt(m["peak_mb"])]
                           for m in train["memory"]]))
        out.append("")
    fft = result.get("fft")
    if fft:
        out.append(f"### FFT check, {fft[0]['shape']} — ms (lower is better)")
        rows = [[str(r["kernel"]), r["auto_impl"],
                 *(fmt(r["fwd_ms"][i]) for i in IMPLS),
                 *(fmt(r["fwd_bwd_ms"][i]) for i in IMPLS),
                 fmt(r["fft_over_xla_fwd"], 2) + "×", fmt(r["fft_over_xla_fwd_bwd"], 2) + "×"]
                for r in fft]
        out.append(table(["k", "auto→", *(f"fwd {i}" for i in IMPLS),
                           *(f"f+b {i}" for i in IMPLS), "xla/fft fwd", "xla/fft f+b"], rows))
        out.append("")
    checks = result.get("targets", [])  # computed once, in benchmark()
    if checks:
        out.append("### Targets")
        if meta["batch"] != 128:
            out.append(f"(The targets are defined at batch 128; this run used batch "
                       f"{meta['batch']}.)\n")
        out.append(table(["target", "measured", "met"],
                          [[c["target"], c["measured"], "yes" if c["met"] else "**no**"]
                           for c in checks]))
        out.append("")
    out.append(f"Total benchmark time {meta['seconds']:.0f} s.")
    return "\n".join(out)


#: Pooling targets: (op, what it is timed against, the largest acceptable ratio), fwd+bwd.
POOL_TARGETS = (
    ("soft_pool", "avg_pool", 3.0), ("lip_pool", "avg_pool", 3.0),
    ("gem_pool", "avg_pool", 3.0), ("lse_pool", "avg_pool", 3.0),
    ("blur_pool", "torch pad+depthwise conv (blur)", 2.0),
    ("max_blur_pool", "torch max_pool2d(s=1)+blur (maxblur)", 2.0),
    ("fractional_max_pool", "torch fractional_max_pool2d", 1.0),
)


def _where(row: dict[str, Any]) -> str:
    return f"{row['layer']}" + (f" (batch {row['batch']})" if "batch" in row else "")


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The speed targets, checked against this run's measurements."""
    checks = []
    train = result.get("train") or {}
    for r in train.get("rows", []):
        if "cnnjax_over_torch" in r:
            v = r["cnnjax_over_torch"]
            checks.append({"target": f"{r['model']} step ≤ 1.0× PyTorch's time",
                           "measured": f"{v:.2f}×", "met": v <= 1.0})
        v = r["flax_over_cnnjax"]
        checks.append({"target": f"{r['model']} step ≥ 3× faster than plain Flax",
                       "measured": f"{v:.2f}×", "met": v >= 3.0})
        if "nnx_over_linen" in r:
            v = r["nnx_over_linen"]
            checks.append({"target": f"{r['model']} fit step: NNX within 5% of linen",
                           "measured": f"{v:.3f}×", "met": v <= 1.05})
    conv = result.get("conv") or []
    if conv:
        ratios = [r["auto_over_xla_fwd_bwd"] for r in conv]
        gm = geomean(ratios)
        checks.append({"target": "conv fwd+bwd, 'auto' over 'xla', geometric mean ≥ 3×",
                       "measured": f"{gm:.2f}×", "met": gm >= 3.0})
        worst = min(conv, key=lambda r: r["auto_over_xla_fwd_bwd"])
        v = worst["auto_over_xla_fwd_bwd"]
        checks.append({"target": "no conv layer fwd+bwd slower than 'xla' by > 5%",
                       "measured": f"worst {_where(worst)} {v:.2f}×", "met": v >= 1 / 1.05})
        timed = [r for r in conv if "auto_over_best_fwd_bwd" in r]
        if timed:
            worst = max(timed, key=lambda r: r["auto_over_best_fwd_bwd"])
            v = worst["auto_over_best_fwd_bwd"]
            checks.append({"target": "conv fwd+bwd, 'auto' within 5% of the fastest impl on "
                                     "every layer",
                           "measured": f"worst {_where(worst)} {v:.2f}× "
                                       f"({worst['auto_impl']} vs {worst['best_impl']})",
                           "met": v <= 1.05})
    for r in result.get("fft") or []:
        if r["kernel"] >= 11:
            ok = r["fft_over_xla_fwd"] > 1 and r["fft_over_xla_fwd_bwd"] > 1
            checks.append({"target": f"k={r['kernel']} on 64×64: 'fft' faster than 'xla'",
                           "measured": f"fwd {r['fft_over_xla_fwd']:.2f}×, fwd+bwd "
                                       f"{r['fft_over_xla_fwd_bwd']:.2f}×", "met": ok})
            checks.append({"target": f"k={r['kernel']} on 64×64: 'auto' uses 'fft'",
                           "measured": r["auto_impl"], "met": r["auto_impl"] == "fft"})
    pool = {r["op"]: r for r in (result.get("pool") or {}).get("rows", [])}

    def pool_ratio(a: str, b: str) -> float | None:
        return (pool[a]["fwd_bwd_ms"] / pool[b]["fwd_bwd_ms"]) if a in pool and b in pool else None

    for name, base, limit in POOL_TARGETS:
        v = pool_ratio(name, base)
        if v is not None:
            checks.append({"target": f"{name} fwd+bwd ≤ {limit:g}× {base}",
                           "measured": f"{v:.2f}×", "met": v <= limit})
    fold = train.get("bn_fold")
    if fold:
        checks.append({"target": "folded-BN eval faster than unfolded",
                       "measured": f"{fold['speedup']:.2f}×", "met": fold["speedup"] > 1.0})
    return checks
