"""``reuse_host_memory``: XLA:CPU's per-execution buffers reused instead of page-faulted anew."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

import cnnjax.cli
from cnnjax import _host_memory
from cnnjax.train import reuse_host_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# A program with a ~100 MB temporary buffer (two 32 MB cumulative sums kept alive together),
# the size of MnistNet's training step at batch 128; prints the median minor page faults per
# call. (While the heap still grows, a call now and then faults its buffer in anew: medians.)
_PROGRAM = """
import resource, sys
import cnnjax  # applies it when CNNJAX_REUSE_HOST_MEMORY=1, before JAX is imported
import jax, jax.numpy as jnp
from cnnjax.train import reuse_host_memory
if sys.argv[1] == "late":  # after JAX's and cnnjax.train's imports, as the command does
    print("applied", reuse_host_memory(), reuse_host_memory())
x = jnp.ones((8 << 20,))
f = jax.jit(lambda x: jnp.sum(jnp.cumsum(x * 2) * jnp.flip(jnp.cumsum(x))))
assert f.lower(x).compile().memory_analysis().temp_size_in_bytes > 64 << 20
counts = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print("faults", sorted(counts[5:])[7])  # the median after warm-up
"""


# The same in plain C calls from a worker thread (as XLA's are), without JAX: quick.
_C_PROGRAM = """
import ctypes, importlib.util, resource, sys, threading
spec = importlib.util.spec_from_file_location("host_memory", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if sys.argv[1] == "reuse":
    print("applied", module.reuse_host_memory(), module.reuse_host_memory())
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size, counts = 100 << 20, []
def work():
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        p = libc.malloc(size)
        ctypes.memset(p, 1, size)
        libc.free(p)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print("faults", sorted(counts[1:])[4])
"""


def _faults(mode: str, program: str = _PROGRAM, env_value: str | None = None
            ) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "CNNJAX_REUSE_HOST_MEMORY"}
    if env_value is not None:
        env["CNNJAX_REUSE_HOST_MEMORY"] = env_value
    proc = subprocess.run([sys.executable, "-c", program, mode, _host_memory.__file__],
                          env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    return float(lines["faults"]), lines.get("applied", "")


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's mallopt")
def test_a_freed_100_mb_buffer_is_reused_by_the_next_malloc_of_a_thread():
    default, _ = _faults("default", _C_PROGRAM)
    reused, applied = _faults("reuse", _C_PROGRAM)
    assert applied == "True True"
    assert default > 20_000  # 25,600 fresh 4 kB pages per round
    assert reused < 0.01 * default


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's mallopt")
def test_xla_buffers_are_not_page_faulted_again_every_call():
    default, _ = _faults("default")
    at_import, _ = _faults("default", env_value="1")
    late, applied = _faults("late")
    off, _ = _faults("late", env_value="0")
    assert applied == "True True"  # applied, and a second call is a no-op that says so
    # 100 MB of fresh pages is ~25,000 faults per call; reused, (almost) none.
    assert default > 10_000 and off > 0.5 * default
    assert at_import < 0.05 * default
    assert late < 0.05 * default


def test_off_by_environment_variable_and_off_elsewhere(monkeypatch):
    monkeypatch.setattr(_host_memory, "_applied", False)
    monkeypatch.setenv("CNNJAX_REUSE_HOST_MEMORY", "0")
    assert reuse_host_memory() is False
    monkeypatch.delenv("CNNJAX_REUSE_HOST_MEMORY")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert reuse_host_memory() is False
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert reuse_host_memory() is False


def test_the_command_sets_it_for_its_own_process_and_heavy_commands_only(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cnnjax.cli, "reuse_host_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(sys, "argv", ["cnnjax", "train", "--epochs", "0"])
    assert cnnjax.cli.main() == 2  # a usage error, after the setting
    assert calls == [1]
    assert cnnjax.cli.main(["train", "--epochs", "0"]) == 2  # a caller's own process
    monkeypatch.setattr(sys, "argv", ["cnnjax", "--help"])
    assert cnnjax.cli.main() == 0
    assert calls == [1]
    assert set(cnnjax.cli.HEAVY_COMMANDS) == {"train", "eval", "bench", "tune"}
    capsys.readouterr()
