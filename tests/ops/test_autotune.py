"""Tests of the measured ``impl='auto'`` dispatch (``_autotune.py``) and ``cnnjax.conv_choice``.

Every test here opts in to measuring with the ``autotune`` fixture (a fresh cache directory
in ``tmp_path``); tiny shapes and a tiny budget keep each measurement well under a second.
"""
import json
import multiprocessing
import os
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax.ops import _autotune
from cnnjax.ops._conv_geometry import ConvGeometry

X_SHAPE, W_SHAPE = (2, 6, 6, 3), (3, 3, 3, 4)
DIRECT = ("xla", "im2col", "xla_im2col_grad")


@pytest.fixture(autouse=True)
def _small_budget(monkeypatch):
    monkeypatch.setattr(_autotune, "_MIN_ROUNDS", 1)
    monkeypatch.setattr(_autotune, "_MAX_ROUNDS", 1)
    monkeypatch.setattr(_autotune, "_MIN_FLOPS", 0)
    monkeypatch.setattr(_autotune, "_FAST_ENOUGH_S", 0)


@pytest.fixture
def count_measures(monkeypatch):
    """Counts calls of ``_autotune.measure`` (each one a real measurement)."""
    calls = []
    real = _autotune.measure

    def counted(*args, **kw):
        calls.append(args[:2])
        return real(*args, **kw)
    monkeypatch.setattr(_autotune, "measure", counted)
    return calls


def _load(path):
    with open(path) as f:
        return json.load(f)


def _cache_file(cache_dir):
    files = [f for f in os.listdir(cache_dir) if f.endswith(".json")]
    assert len(files) == 1, files
    return os.path.join(cache_dir, files[0])


def test_tuned_choice_is_applicable_and_computes_what_xla_does(autotune, rng):
    choice = cnnjax.conv_choice(X_SHAPE, W_SHAPE, padding=1)
    assert choice.source == "tuned"
    assert choice.impl in DIRECT + ("fft",)
    assert set(choice.times_ms) == set(_autotune.candidates(X_SHAPE, W_SHAPE, _geom(1)))
    assert choice.impl == min(choice.times_ms, key=choice.times_ms.get)
    assert all(t > 0 for t in choice.times_ms.values())
    x = rng.normal(size=X_SHAPE).astype(np.float32)
    w = rng.normal(size=W_SHAPE).astype(np.float32)
    np.testing.assert_allclose(cnnjax.conv(x, w, padding=1, impl="auto"),
                               cnnjax.conv(x, w, padding=1, impl="xla"), rtol=1e-5, atol=1e-5)
    assert cnnjax.conv_impl(X_SHAPE, W_SHAPE, padding=1) == choice.impl


def _geom(p, k=3, stride=1, groups=1):
    return ConvGeometry((k, k), (stride, stride), ((p, p),) * 2, (1, 1), groups)


def test_fft_is_a_candidate_only_where_it_can_win():
    assert "fft" not in _autotune.candidates((4, 8, 8, 16), (1, 1, 16, 16), _geom(0, k=1))
    assert "fft" in _autotune.candidates((4, 64, 64, 16), (11, 11, 16, 16), _geom(0, k=11))
    assert "fft" not in _autotune.candidates((4, 8, 8, 16), (3, 3, 16, 16),
                                             _geom(0, stride=8))


def test_cache_written_then_reused_without_measuring_again(autotune, count_measures):
    first = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert first.source == "tuned" and len(count_measures) == 1
    path = _cache_file(autotune)
    assert first.cache_path == path
    data = _load(path)
    assert data["machine"] == _autotune.machine_key()
    (entry,) = data["entries"].values()
    assert entry["impl"] == first.impl
    assert cnnjax.conv_choice(X_SHAPE, W_SHAPE).source == "cache"  # memory
    _autotune.clear_memo()  # a new process: only the file remains
    again = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert (again.source, again.impl, again.times_ms) == ("cache", first.impl, first.times_ms)
    x = jnp.ones(X_SHAPE, jnp.float32)
    jax.grad(lambda x: cnnjax.conv(x, jnp.ones(W_SHAPE, jnp.float32)).sum())(x)
    assert len(count_measures) == 1
    # Another dtype or geometry is another configuration.
    cnnjax.conv_choice(X_SHAPE, W_SHAPE, dtype="float64")
    cnnjax.conv_choice(X_SHAPE, W_SHAPE, stride=2)
    assert len(count_measures) == 3
    assert len(_load(path)["entries"]) == 3


def test_measuring_inside_an_outer_jit_trace(autotune, count_measures, rng):
    x = rng.normal(size=X_SHAPE).astype(np.float32)
    w = rng.normal(size=W_SHAPE).astype(np.float32)

    def loss(x, w):
        return cnnjax.conv(x, w, padding=1, impl="auto").sum()
    got = jax.jit(lambda x, w: cnnjax.conv(x, w, padding=1, impl="auto"))(x, w)
    assert len(count_measures) == 1
    np.testing.assert_allclose(got, cnnjax.conv(x, w, padding=1, impl="xla"), rtol=1e-5,
                               atol=1e-5)
    g = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w)
    g_xla = jax.grad(lambda x, w: cnnjax.conv(x, w, padding=1, impl="xla").sum(),
                     argnums=(0, 1))(x, w)
    for a, b in zip(g, g_xla):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert len(count_measures) == 1


def _write_entries(args):
    cache_dir, start = args
    os.environ["CNNJAX_CACHE_DIR"] = cache_dir
    machine = _autotune.machine_key()
    path = _autotune.cache_path(machine)
    for i in range(start, start + 10):
        _autotune.store(path, machine, f"key{i}", {"impl": "xla", "times_ms": {"xla": i}})
    return path


def test_concurrent_writers_keep_every_entry(autotune, monkeypatch):
    monkeypatch.setenv("CNNJAX_CACHE_DIR", str(autotune))
    machine = _autotune.machine_key()
    path = _autotune.cache_path(machine)
    threads = [threading.Thread(target=_write_entries, args=((str(autotune), 100 + 10 * t),))
               for t in range(4)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        result = pool.map_async(_write_entries, [(str(autotune), 10 * p) for p in range(3)])
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(result.get(timeout=120)) == {path}
    entries = _load(path)["entries"]
    assert set(entries) == {f"key{i}" for i in [*range(30), *range(100, 140)]}
    assert not [f for f in os.listdir(autotune) if f.endswith(".tmp")]


def test_corrupt_cache_warns_once_and_measures_again(autotune, count_measures):
    cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    path = _cache_file(autotune)
    with open(path, "w") as f:
        f.write('{"format": 1, "entr')
    _autotune.clear_memo()
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable cache file"):
        choice = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert choice.source == "tuned" and len(count_measures) == 2
    _load(path)  # rewritten as valid JSON
    with open(path, "w") as f:
        f.write("[1, 2]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cnnjax.conv_choice(X_SHAPE, W_SHAPE).source == "cache"  # memory; file unread


def test_cache_of_another_machine_key_is_ignored(autotune, count_measures):
    machine = _autotune.machine_key()
    path = _autotune.cache_path(machine)
    key = _autotune.entry_key(X_SHAPE, W_SHAPE, "float32", _geom(0), None)
    other = dict(machine, jax="0.0.1")
    _autotune.store(path, other, key, {"impl": "fft", "times_ms": {"fft": 0.001}})
    assert _load(path)["machine"]["jax"] == "0.0.1"
    choice = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert choice.source == "tuned" and len(count_measures) == 1
    data = _load(path)
    assert data["machine"] == machine and data["entries"][key]["impl"] == choice.impl
    assert _autotune.cache_path(other) != path


def test_reused_host_memory_is_another_machine_key(monkeypatch):
    # im2col chunks differently when freed host memory is reused: its own measurements.
    from cnnjax import _host_memory
    monkeypatch.setattr(_host_memory, "_applied", False)
    plain = _autotune.machine_key()
    monkeypatch.setattr(_host_memory, "_applied", True)
    reused = _autotune.machine_key()
    assert plain["host_memory_reused"] is False and reused["host_memory_reused"] is True
    assert _autotune.cache_path(plain) != _autotune.cache_path(reused)


def test_bad_entry_in_the_cache_is_ignored(autotune, count_measures):
    machine = _autotune.machine_key()
    path = _autotune.cache_path(machine)
    key = _autotune.entry_key(X_SHAPE, W_SHAPE, "float32", _geom(0), None)
    _autotune.store(path, machine, key, {"impl": "nonsense", "times_ms": {}})
    assert cnnjax.conv_choice(X_SHAPE, W_SHAPE).source == "tuned"


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_autotune_off_uses_the_static_rule(autotune, count_measures, monkeypatch, value):
    monkeypatch.setenv("CNNJAX_AUTOTUNE", value)
    choice = cnnjax.conv_choice((8, 28, 28, 1), (3, 3, 1, 32))
    assert choice == ("xla_im2col_grad", "static", choice.reason, {}, None)
    assert "CNNJAX_AUTOTUNE" in choice.reason
    assert not count_measures and not os.path.exists(autotune)


def test_other_backend_and_several_processes_use_the_static_rule(autotune, count_measures,
                                                                  monkeypatch):
    choice = cnnjax.conv_choice(X_SHAPE, W_SHAPE, backend="gpu")
    assert (choice.impl, choice.source) == ("xla", "static")
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    choice = cnnjax.conv_choice((8, 28, 28, 1), (3, 3, 1, 32))
    assert (choice.impl, choice.source) == ("xla_im2col_grad", "static")
    assert "2 processes" in choice.reason
    assert not count_measures


def test_measuring_failure_falls_back_to_the_static_rule(autotune, monkeypatch, rng):
    calls = []

    def broken(*args, **kw):
        calls.append(1)
        raise RuntimeError("no timer")
    monkeypatch.setattr(_autotune, "measure", broken)
    with pytest.warns(RuntimeWarning, match="measuring .* failed .*no timer"):
        choice = cnnjax.conv_choice((8, 28, 28, 1), (3, 3, 1, 32))
    assert (choice.impl, choice.source) == ("xla_im2col_grad", "static")
    x = rng.normal(size=(2, 6, 6, 1)).astype(np.float32)
    w = rng.normal(size=(3, 3, 1, 2)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="no timer"):
        y = cnnjax.conv(x, w, impl="auto")
    np.testing.assert_allclose(y, cnnjax.conv(x, w, impl="xla"), rtol=1e-5, atol=1e-5)
    cnnjax.conv_choice((8, 28, 28, 1), (3, 3, 1, 32))  # not retried in this process
    assert len(calls) == 2
    assert not os.path.exists(autotune)


def test_unwritable_cache_dir_warns_and_keeps_the_choice(autotune, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CNNJAX_CACHE_DIR", str(blocker / "sub"))
    with pytest.warns(RuntimeWarning, match="cannot write the cache file"):
        choice = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert choice.source == "tuned"
    assert cnnjax.conv_choice(X_SHAPE, W_SHAPE).source == "cache"


@pytest.mark.parametrize("kw,exc,match", [
    ({"dtype": "int32"}, TypeError, r"conv_choice: dtype must be a floating dtype .*int32"),
    ({"dtype": "nonsense"}, TypeError, r"conv_choice: dtype must be a floating dtype"),
    ({"stride": 0}, ValueError, r"conv_choice: stride must be >= 1"),
])
def test_conv_choice_bad_input(kw, exc, match):
    with pytest.raises(exc, match=match):
        cnnjax.conv_choice(X_SHAPE, W_SHAPE, **kw)


def test_fast_static_choice_is_timed_alone(autotune, count_measures, monkeypatch):
    monkeypatch.setattr(_autotune, "_FAST_ENOUGH_S", 10.0)
    static = cnnjax.conv_choice(X_SHAPE, W_SHAPE, backend="cpu")
    assert static.source == "tuned" and "fast enough" in static.reason
    monkeypatch.setenv("CNNJAX_AUTOTUNE", "0")
    assert list(static.times_ms) == [cnnjax.conv_impl(X_SHAPE, W_SHAPE)] == [static.impl]


def test_small_convs_and_static_only_blocks_are_not_measured(autotune, count_measures,
                                                             monkeypatch):
    monkeypatch.setattr(_autotune, "_MIN_FLOPS", 4e6)
    small = cnnjax.conv_choice((2, 8, 8, 4), (3, 3, 4, 8))  # 2 * 2 * 36 * 36 * 8 FLOPs
    assert small.source == "static" and "too small" in small.reason
    monkeypatch.setattr(_autotune, "_MIN_FLOPS", 0)
    with _autotune.static_only():
        inside = cnnjax.conv_choice(X_SHAPE, W_SHAPE)
    assert inside.source == "static" and "static_only" in inside.reason
    assert not count_measures
    assert cnnjax.conv_choice(X_SHAPE, W_SHAPE).source == "tuned"


def test_observe_sees_every_choice_of_a_trace(autotune):
    x = jnp.ones(X_SHAPE, jnp.float32)
    w = jnp.ones(W_SHAPE, jnp.float32)
    w2 = jnp.ones((3, 3, 4, 2), jnp.float32)
    with _autotune.observe() as seen:
        jax.eval_shape(lambda x: cnnjax.conv(cnnjax.conv(x, w, padding=1), w2), x)
    assert [(s[0], s[1], s[4].source) for s in seen] == [
        (X_SHAPE, W_SHAPE, "tuned"), ((2, 6, 6, 4), (3, 3, 4, 2), "tuned")]
    with _autotune.observe() as again:
        jax.eval_shape(lambda x: cnnjax.conv(x, w, padding=1), x)
    assert [s[4].source for s in again] == ["cache"]
