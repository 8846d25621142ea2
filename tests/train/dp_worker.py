"""Worker for the data-parallel tests, run in a fresh interpreter by test_parallel.py.

A subprocess is needed because device counts (``XLA_FLAGS``) and ``jax.distributed`` must
be set before JAX initialises. Usage::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python dp_worker.py devices OUT WORKDIR
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python dp_worker.py resnet OUT STEPS
    python dp_worker.py process PROCESS_ID NUM_PROCESSES PORT OUT WORKDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

# The same configuration as tests/conftest.py.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_disable_most_optimizations", True)

from tests.train.step_check import IMPLS, STEPS, compare_steps  # noqa: E402

KW = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)


def save(path, **results):
    from tests.train.tiny_models import flat_state

    arrays = {}
    for name, value in results.items():
        if hasattr(value, "params"):
            arrays.update({f"{name}/{k}": v for k, v in flat_state(value).items()})
        else:
            arrays[name] = np.asarray(value)
    np.savez(path, **arrays)


def devices_mode(out, workdir):
    from cnnjax.data import Dataset
    from cnnjax.train import fit
    from tests.train.tiny_models import InputBN, TinyBN, digits_subset

    assert jax.device_count() == 4, jax.devices()
    train, test = digits_subset()
    one = fit(TinyBN(), train, test, epochs=2, devices=1, **KW)
    four = fit(TinyBN(), train, test, epochs=2, devices=None, **KW)
    ckpt = fit(TinyBN(), train, test, epochs=1, devices=4, workdir=workdir, **KW)
    small = Dataset(train.images[:64], train.labels[:64], 10, "digits")
    bn = fit(InputBN(), small, None, epochs=1, devices=4, **KW)
    try:
        fit(TinyBN(), train, test, epochs=1, **{**KW, "batch_size": 30})
        message = "no error"
    except ValueError as e:
        message = str(e)
    from cnnjax.train import make_mesh
    from tests.train.tiny_models import ConvBNNet

    per_step = {}
    for impl in IMPLS:
        per_step.update(zip((f"steps/{impl}/{k}" for k in ("grad", "stats", "sensitivity")),
                            compare_steps(ConvBNNet(impl=impl), train, 32, STEPS,
                                          [make_mesh(1), make_mesh(4)])))
    steps = len(train.labels) // KW["batch_size"]
    save(out, **per_step, one=one.state, four=four.state, ckpt=ckpt.state, bn=bn.state,
         message=message, step_seconds_1=one.history[1]["seconds"] / steps,
         step_seconds_4=four.history[1]["seconds"] / steps,
         test_accuracy_1=one.history[-1]["test_accuracy"],
         test_accuracy_4=four.history[-1]["test_accuracy"])


def process_mode(process_id, num_processes, port, out, workdir):
    from cnnjax.train import fit
    from tests.train.tiny_models import TinyBN, digits_subset

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes,
                               process_id=process_id)
    assert jax.process_count() == num_processes and jax.device_count() == num_processes
    result = fit(TinyBN(), *digits_subset(), epochs=2, workdir=workdir, **KW)
    from cnnjax.train import make_mesh
    from tests.train.tiny_models import ConvBNNet

    # Each process computes the one-device reference on its own device.
    steps = compare_steps(ConvBNNet(impl="auto"), digits_subset()[0], 32, STEPS,
                          [make_mesh(jax.local_devices()[:1]), make_mesh()])
    save(out, state=result.state, test_accuracy=result.history[-1]["test_accuracy"],
         train_loss=result.history[-1]["train_loss"],
         **dict(zip(("steps/grad", "steps/stats", "steps/sensitivity"), steps)))
    jax.distributed.shutdown()


def resnet_mode(out, steps):
    """ResNet-20 (CIFAR shapes, batch 16) per conv impl, one device vs four."""
    from cnnjax import models
    from cnnjax.data import Dataset
    from cnnjax.train import make_mesh

    assert jax.device_count() == 4, jax.devices()
    rng = np.random.default_rng(0)
    n = 16 * int(steps)
    data = Dataset(rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8),
                   rng.integers(0, 10, n).astype(np.int32), 10, "random")
    results = {}
    for impl in IMPLS:
        grad, stats, sens = compare_steps(models.get("resnet20", num_classes=10, impl=impl),
                                          data, 16, int(steps), [make_mesh(1), make_mesh(4)])
        results.update({f"{impl}/grad": grad, f"{impl}/stats": stats,
                        f"{impl}/sensitivity": sens})
        print(f"{impl}: gradients {' '.join(f'{g:.1e}' for g in grad)}; batch statistics "
              f"max {stats.max():.1e}; one-device sensitivity "
              f"{' '.join(f'{v:.1e}' for v in sens)}", flush=True)
    np.savez(out, **results)


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        devices_mode(*sys.argv[2:])
    elif sys.argv[1] == "resnet":
        resnet_mode(*sys.argv[2:])
    else:
        pid, n, port, out, workdir = sys.argv[2:]
        process_mode(int(pid), int(n), int(port), out, workdir)
