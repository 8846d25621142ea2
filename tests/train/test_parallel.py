"""Data parallelism: every step on 4 forced host devices (and on two processes joined by
jax.distributed) equals the one-device step to round-off for every conv impl, whole runs
agree closely, BN is synchronised, and checkpoints restore on another device count. The
device-count scenarios run in subprocesses (dp_worker.py), since XLA_FLAGS and
jax.distributed must be set before JAX starts; they are launched together, once."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from cnnjax.data import epoch_permutation, normalization_stats
from cnnjax.train import fit
from tests.train.step_check import IMPLS, STEPS, assert_steps_agree
from tests.train.tiny_models import TinyBN, digits_subset, flat_state

WORKER = os.path.join(os.path.dirname(__file__), "dp_worker.py")
KW = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)
TIMEOUT = 540


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finish(procs):
    """Waits for every worker (killing the rest once one fails), then reports failures."""
    errors = {}
    for what, proc in procs.items():
        try:
            _, errors[what] = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, errors[what] = proc.communicate()
        if proc.returncode != 0:  # the others may wait for it forever (jax.distributed)
            for other in procs.values():
                if other.poll() is None:
                    other.kill()
                    other.communicate()
    for what, proc in procs.items():
        assert proc.returncode == 0, f"{what} failed:\n{errors[what][-3000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    four_env = dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = {"devices": subprocess.Popen(
        [sys.executable, WORKER, "devices", str(tmp / "four.npz"), str(tmp / "ckpt4")],
        env=four_env, **run)}
    port = free_port()
    for pid in range(2):
        procs[f"process {pid}"] = subprocess.Popen(
            [sys.executable, WORKER, "process", str(pid), "2", str(port),
             str(tmp / f"p{pid}.npz"), str(tmp / "ckpt_mp")], env=env, **run)
    finish(procs)
    return tmp


def load(path, prefix):
    d = np.load(path)
    return {k[len(prefix) + 1:]: d[k] for k in d.files if k.startswith(prefix + "/")}


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def test_four_devices_match_one_device(runs):
    # Same global batches: params AND BatchNorm running statistics agree to round-off.
    assert_close(load(runs / "four.npz", "four"), load(runs / "four.npz", "one"))


@pytest.mark.parametrize("impl", IMPLS)
def test_each_sharded_step_equals_the_single_device_step(runs, impl):
    # The guarantee stated in fit's docstring: at the same parameters and batch, every step's
    # gradients and BatchNorm batch statistics on 4 devices equal one device's to round-off.
    d = np.load(runs / "four.npz")
    grad, stats, sens = (d[f"steps/{impl}/{k}"] for k in ("grad", "stats", "sensitivity"))
    assert len(grad) == len(stats) == STEPS
    assert_steps_agree(grad, stats, sens, impl)


def test_each_two_process_step_equals_the_single_device_step(runs):
    for pid in range(2):
        d = np.load(runs / f"p{pid}.npz")
        assert len(d["steps/grad"]) == STEPS
        assert_steps_agree(d["steps/grad"], d["steps/stats"], d["steps/sensitivity"], pid)


@pytest.mark.slow
def test_resnet20_sharded_steps_equal_single_device_steps(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, WORKER, "resnet", str(tmp_path / "r.npz"), "10"],
                          env=env, capture_output=True, text=True, timeout=3000, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = np.load(tmp_path / "r.npz")
    for impl in IMPLS:
        # ResNet-20 has ~5e7 pre-activations per step: some step or other lands one within
        # round-off of a ReLU kink (measured: 4 to 7 of 10 steps, on random images).
        assert_steps_agree(*(d[f"{impl}/{k}"] for k in ("grad", "stats", "sensitivity")), impl,
                           min_smooth=0.2)


def test_batch_size_must_divide_device_count(runs):
    message = str(np.load(runs / "four.npz")["message"])
    assert message == ("fit: batch_size must be a positive multiple of the number of devices "
                       "(4), got 30.")


def test_batch_norm_statistics_are_global(runs):
    # InputBN on 4 devices, 64 examples, batch 32: two steps. Running stats must follow the
    # statistics of each whole global batch (flax: momentum 0.9, biased variance).
    train, _ = digits_subset()
    images = train.images[:64]
    mean, std = normalization_stats(images)
    x = (images.astype(np.float64) / 255 - mean) / std
    perm = epoch_permutation(64, seed=0, epoch=1)
    ra_mean, ra_var = np.zeros(1), np.ones(1)
    local_vars = []
    for b in (perm[:32], perm[32:]):
        xb = x[b].reshape(-1, 1)
        ra_mean = 0.9 * ra_mean + 0.1 * xb.mean(0)
        ra_var = 0.9 * ra_var + 0.1 * xb.var(0)
        local_vars.append(np.mean([x[q].var() for q in np.split(b, 4)]))
    got = load(runs / "four.npz", "bn")
    np.testing.assert_allclose(got["['batch_stats']['BatchNorm_0']['mean']"], ra_mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["['batch_stats']['BatchNorm_0']['var']"], ra_var, rtol=1e-5)
    # Averaged per-device statistics would differ by far more than the tolerance above
    # (so this test can fail).
    local = 0.9 * (0.9 + 0.1 * local_vars[0]) + 0.1 * local_vars[1]
    assert abs(local - ra_var[0]) > 10 * 1e-5


def test_two_processes_match_one_process(runs):
    p0, p1 = (load(runs / f"p{i}.npz", "state") for i in range(2))
    for k in p0:  # every process ends with the same replicated state
        np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)
    single = fit(TinyBN(), *digits_subset(), epochs=2, **KW)
    assert_close(p0, flat_state(single.state))


def test_multiprocess_checkpoint_restores_on_one_device(runs, tmp_path):
    # Written once by the two processes; restored here on a single device (nothing to do).
    shutil.copytree(runs / "ckpt_mp", tmp_path / "ckpt")
    restored = fit(TinyBN(), *digits_subset(), epochs=2, workdir=tmp_path / "ckpt", **KW)
    assert [h["epoch"] for h in restored.history] == [1, 2]
    got = flat_state(restored.state)
    for k, v in load(runs / "p0.npz", "state").items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)


def test_checkpoint_from_four_devices_continues_on_one(runs, tmp_path):
    shutil.copytree(runs / "ckpt4", tmp_path / "ckpt")
    data = digits_subset()
    restored = fit(TinyBN(), *data, epochs=1, workdir=tmp_path / "ckpt", **KW)
    saved = load(runs / "four.npz", "ckpt")
    got = flat_state(restored.state)
    for k in saved:  # restored bit for bit
        np.testing.assert_array_equal(got[k], saved[k], err_msg=k)
    continued = fit(TinyBN(), *data, epochs=2, workdir=tmp_path / "ckpt", **KW)
    assert int(continued.state.step) == 20
    assert_close(flat_state(continued.state), load(runs / "four.npz", "one"))
