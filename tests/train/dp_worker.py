"""Worker for the data-parallel tests, run in a fresh interpreter by test_parallel.py.

A subprocess is needed because device counts (``XLA_FLAGS``) and ``jax.distributed`` must
be set before JAX initialises. Usage::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python dp_worker.py devices OUT WORKDIR
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
    steps = len(train.labels) // KW["batch_size"]
    save(out, one=one.state, four=four.state, ckpt=ckpt.state, bn=bn.state,
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
    save(out, state=result.state, test_accuracy=result.history[-1]["test_accuracy"],
         train_loss=result.history[-1]["train_loss"])
    jax.distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        devices_mode(*sys.argv[2:])
    else:
        pid, n, port, out, workdir = sys.argv[2:]
        process_mode(int(pid), int(n), int(port), out, workdir)
