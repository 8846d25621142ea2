"""Smoke tests of ``cnnjax bench`` (cnnjax/bench/) on tiny configurations.

The timings themselves are machine-dependent; these tests check that every suite runs, that
the JSON and Markdown carry every contender, that the timing protocol interleaves the
contenders, and the one rule the benchmark exists to show: ``impl='auto'`` picks the FFT
path for an 11x11 kernel on a 64x64 input.
"""
import argparse
import json
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax import bench
from cnnjax.bench import profile, report
from cnnjax.bench.conv_suite import fwd_bwd


def _run(tmp_path, capsys, *argv):
    path = tmp_path / "bench.json"
    status = bench.main([*argv, "--repeats", "1", "--no-torch", "--json", str(path)])
    assert status == 0
    text = capsys.readouterr().out
    return json.loads(path.read_text()), text


def test_measure_interleaves_and_takes_medians():
    calls = []
    cands = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = bench.measure(cands, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_measure_settles_each_candidate_before_timing_it(monkeypatch):
    calls, clock = [], iter(range(1000))
    cands = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    # Each clock reading 1 s after the previous: a timed call spans exactly one second.
    monkeypatch.setattr(bench.timing, "time",
                        types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    times = bench.measure(cands, repeats=2, warmup=1, settle=1)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert times == {"a": 1.0, "b": 1.0}  # the settling call is not in the time


def test_conv_suite_reports_every_contender(tmp_path, capsys):
    result, text = _run(tmp_path, capsys, "--suite", "conv", "--layers", "lenet5.conv2",
                        "--batch", "2")
    assert result["matmul"]["jax_gflops"] > 0
    (row,) = result["conv"]
    assert row["layer"] == "lenet5.conv2"
    for key in ("fwd_gflops", "fwd_bwd_gflops"):
        assert set(row[key]) == {"xla", "im2col", "xla_im2col_grad", "fft", "auto", "flax"}
        assert all(v > 0 and math.isfinite(v) for v in row[key].values())
    # GFLOP/s and ms are two views of the same measurement: 2*N*HW*Co*k*k*Ci / t.
    flops = 2 * 2 * 14 * 14 * 50 * 5 * 5 * 20
    assert row["gflop_fwd"] == pytest.approx(flops / 1e9)
    assert row["fwd_gflops"]["xla"] == pytest.approx(flops / row["fwd_ms"]["xla"] / 1e6)
    assert "### Conv layers, forward+backward" in text and "geometric mean" in text
    assert "PyTorch rows skipped" in text
    # What auto ran, how it was chosen (the suite runs with measuring off) and the fastest.
    assert (row["auto_source"], row["batch"]) == ("static", 2)
    ms = row["fwd_bwd_ms"]
    assert row["best_impl"] == min(("xla", "im2col", "xla_im2col_grad", "fft"), key=ms.get)
    assert row["auto_over_best_fwd_bwd"] == pytest.approx(ms["auto"] / ms[row["best_impl"]])
    assert "ms per impl and what `auto` ran" in text


def test_conv_suite_grouped_layers_and_auto_measured(tmp_path, capsys, autotune, monkeypatch):
    from cnnjax.ops import _autotune
    monkeypatch.setattr(_autotune, "_MIN_ROUNDS", 1)
    monkeypatch.setattr(_autotune, "_MAX_ROUNDS", 1)
    monkeypatch.setattr(_autotune, "_MIN_FLOPS", 0)
    monkeypatch.setattr(_autotune, "_FAST_ENOUGH_S", 0)
    result, text = _run(tmp_path, capsys, "--suite", "conv", "--layers", "depthwise.32x32x16",
                        "--batch", "2")
    (row,) = result["conv"]
    assert row["shape"] == "2x32x32x16 k3 s1 p1 g16 -> 16"
    assert row["auto_source"] == "tuned" and row["auto_impl"] in row["auto_tuning_ms"]
    assert row["gflop_fwd"] == pytest.approx(2 * 2 * 32 * 32 * 16 * 9 / 1e9)
    assert "'auto' within 5% of the fastest impl" in text


def test_pool_suite_is_relative_to_max_pool(tmp_path, capsys):
    result, text = _run(tmp_path, capsys, "--suite", "pool", "--batch", "2")
    rows = {r["op"]: r for r in result["pool"]["rows"]}
    assert rows["max_pool"]["fwd_vs_max_pool"] == 1.0
    assert rows["max_pool"]["fwd_bwd_vs_max_pool"] == 1.0
    assert "flax.linen.max_pool" in rows and "avg_pool" in rows
    assert result["pool"]["shape"] == [2, 24, 24, 64]
    assert "### Pooling" in text


def test_train_memory_and_bn_fold(tmp_path, capsys):
    result, text = _run(tmp_path, capsys, "--suite", "train,memory", "--models", "lenet5",
                        "--batch", "2", "--profile")
    (row,) = result["train"]["rows"]
    assert set(row["ms"]) == {"cnnjax", "cnnjax[xla]", "flax", "fit[linen]", "fit[nnx]"}
    assert row["flax_over_cnnjax"] == pytest.approx(row["ms"]["flax"] / row["ms"]["cnnjax"])
    assert row["nnx_over_linen"] == pytest.approx(row["ms"]["fit[nnx]"] / row["ms"]["fit[linen]"])
    # fit's step compiles the NNX LeNet-5 to the linen one's program.
    assert row["hlo_ops"]["fit[nnx]"] == row["hlo_ops"]["fit[linen]"] > 100
    fold = result["train"]["bn_fold"]
    # The folded model computes the same logits (the fold is exact up to round-off).
    assert fold["max_abs_logit_diff"] < 1e-3
    variants = {m["variant"] for m in result["train"]["memory"]}
    assert variants == {"cnnjax", "cnnjax[xla]", "flax"}
    assert all(m["peak_mb"] > m["temp_mb"] >= 0 for m in result["train"]["memory"])
    assert "### Training step" in text and "### Eval with batch norm folded" in text
    prof = result["train"]["profile"]["lenet5"]
    assert prof["thunk_ms_per_step"] > 0
    assert any(k.startswith("fwd Conv") for k in prof["layers"])
    assert any(k.startswith("bwd Conv") for k in prof["layers"])


def test_profile_buckets_ops_by_layer_and_phase():
    hlo = ('  %ynn_fusion.9 = f32[8,4]{1,0} fusion(%a), metadata={op_name='
           '"jit(step)/jvp(LeNet5)/Conv_1/conv_general_dilated" stack_frame_id=1}\n'
           '  ROOT %dot.2 = f32[4]{0} dot(%b), metadata={op_name='
           '"jit(step)/transpose(jvp(LeNet5))/Dense_0/dot_general"}\n')
    names = profile.hlo_op_names(hlo)
    assert names == {"ynn_fusion.9": "jvp(LeNet5)/Conv_1/conv_general_dilated",
                     "dot.2": "transpose(jvp(LeNet5))/Dense_0/dot_general"}
    assert profile.layer_of(names["ynn_fusion.9"]) == "fwd Conv_1"
    assert profile.layer_of(names["dot.2"]) == "bwd Dense_0"
    assert profile.layer_of("adam/mul") == "optimizer / loss"


def test_fft_check_auto_uses_fft_for_large_kernels(tmp_path, capsys):
    result, _ = _run(tmp_path, capsys, "--suite", "fft", "--quick", "--batch", "8")
    choice = {r["kernel"]: r["auto_impl"] for r in result["fft"]}
    assert choice[11] == "fft"
    assert choice[3] != "fft"


def test_bad_suite_is_a_usage_error(capsys):
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--suite", "conv,nope"])
    assert "unknown nope" in capsys.readouterr().err


def test_torch_rows_when_installed(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "bench.json"
    assert bench.main(["--suite", "conv", "--layers", "mnistnet.conv1", "--batch", "2",
                       "--repeats", "1", "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["conv"]
    assert row["fwd_bwd_gflops"]["torch"] > 0
    assert "auto_over_torch_fwd_bwd" in row


def test_targets_are_checked_against_the_measurements():
    result = {
        "train": {"rows": [{"model": "mnistnet", "cnnjax_over_torch": 0.9,
                            "flax_over_cnnjax": 2.0, "nnx_over_linen": 1.06}],
                  "bn_fold": {"speedup": 1.1}},
        "conv": [{"layer": "a", "auto_over_xla_fwd_bwd": 12.0, "batch": 128,
                  "auto_over_best_fwd_bwd": 1.0, "auto_impl": "im2col", "best_impl": "im2col"},
                 {"layer": "b", "auto_over_xla_fwd_bwd": 0.9, "batch": 16,
                  "auto_over_best_fwd_bwd": 1.04, "auto_impl": "im2col", "best_impl": "xla"}],
        "fft": [{"kernel": 3, "fft_over_xla_fwd": 0.2, "fft_over_xla_fwd_bwd": 0.3,
                 "auto_impl": "im2col"},
                {"kernel": 11, "fft_over_xla_fwd": 2.0, "fft_over_xla_fwd_bwd": 3.0,
                 "auto_impl": "im2col"}],
    }
    met = {c["target"]: c["met"] for c in report.targets(result)}
    assert met["mnistnet step ≤ 1.0× PyTorch's time"]
    assert not met["mnistnet step ≥ 3× faster than plain Flax"]
    assert not met["mnistnet fit step: NNX within 5% of linen"]
    assert met["conv fwd+bwd, 'auto' over 'xla', geometric mean ≥ 3×"]  # sqrt(12 * 0.9) = 3.3
    assert not met["no conv layer fwd+bwd slower than 'xla' by > 5%"]
    assert met["conv fwd+bwd, 'auto' within 5% of the fastest impl on every layer"]
    assert met["k=11 on 64×64: 'fft' faster than 'xla'"]
    assert not met["k=11 on 64×64: 'auto' uses 'fft'"]
    assert not any("k=3" in t for t in met)
    assert met["folded-BN eval faster than unfolded"]


def test_fwd_bwd_keeps_the_forward_pass():
    """The timed forward+backward returns ``y``: otherwise XLA drops the forward as dead code
    (a convolution's gradients do not need its output) and only the backward is timed."""
    x = jnp.ones((2, 6, 6, 3), jnp.float32)
    w = jnp.ones((3, 3, 3, 4), jnp.float32)
    ct = jnp.ones((2, 4, 4, 4), jnp.float32)
    fn = lambda x, w: cnnjax.conv(x, w, impl="im2col")  # noqa: E731
    y, dx, dw = fwd_bwd(fn)(x, w, ct)
    np.testing.assert_allclose(y, cnnjax.conv(x, w, impl="xla"), rtol=1e-6)
    assert dx.shape == x.shape and dw.shape == w.shape
    def grads_only(x, w, ct):
        return jax.vjp(fn, x, w)[1](ct)

    kept = fwd_bwd(fn).lower(x, w, ct).compile().as_text().count(" dot(")
    dropped = jax.jit(grads_only).lower(x, w, ct).compile().as_text().count(" dot(")
    assert kept == dropped + 1  # the forward matmul survives next to the backward ones


def test_each_row_is_printed_to_stderr_as_it_finishes_unless_quiet(tmp_path, capsys):
    status = bench.main(["--suite", "fft", "--quick", "--batch", "1", "--repeats", "1",
                         "--no-torch"])
    out, err = capsys.readouterr()
    assert status == 0 and "### " in out
    lines = err.strip().splitlines()
    assert [l.split(":")[0] for l in lines] == ["[bench] fft k=3", "[bench] fft k=11"]
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    from cnnjax.bench.cli import make_config
    assert make_config(parser.parse_args(["--no-torch"])).verbose
    assert not make_config(parser.parse_args(["--no-torch", "--quiet"])).verbose
