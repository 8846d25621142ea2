"""load / predict / evaluate: a fit workdir reused in a fresh process, on the host."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnjax.train import evaluate, fit, load, predict
from cnnjax.train._io import model_record
from tests.train.tiny_models import TinyBN, TinyPool, digits_subset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = digits_subset(n_train=160, n_test=70)  # 70: the last eval batch is padded
    workdir = tmp_path_factory.mktemp("run")
    result = fit(TinyBN(), *data, epochs=1, workdir=str(workdir), **COMMON)
    return workdir, data, result


_CHILD = """
import json, sys
from cnnjax.train import evaluate, load
from tests.train.tiny_models import digits_subset
run = load(sys.argv[1])
metrics = evaluate(run.model, run.variables, digits_subset(n_train=160, n_test=70)[1],
                   normalization=run.normalization, batch_size=32)
print(json.dumps({**metrics, "model": type(run.model).__name__, "epoch": run.epoch,
                  "dataset": run.dataset, "shape": list(run.image_shape)}))
"""


def test_load_in_a_fresh_process_evaluates_to_fits_last_test_metrics(trained):
    workdir, _, result = trained
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(workdir)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    last = result.history[-1]
    assert got["model"] == "TinyBN" and got["epoch"] == 1 and got["dataset"] == "digits"
    assert got["shape"] == [8, 8, 1] and got["count"] == 70
    assert got["accuracy"] == pytest.approx(last["test_accuracy"], rel=1e-6)
    assert got["loss"] == pytest.approx(last["test_loss"], rel=1e-5)


def test_variables_are_host_arrays_with_batch_stats(trained):
    run = load(trained[0])
    leaves = [*run.variables["params"].values(), *run.variables["batch_stats"].values()]
    assert run.variables["batch_stats"] and leaves
    for leaf in (x for d in leaves for x in d.values()):
        assert type(leaf) is np.ndarray
    assert run.normalization[0].dtype == np.float32
    np.testing.assert_array_equal(run.normalization[0], trained[2].normalization[0])


def test_predict_logits_and_classes(trained):
    workdir, (_, test), result = trained
    run = load(workdir)
    logits = predict(run.model, run.variables, test.images, normalization=run.normalization,
                     batch_size=16)
    assert logits.shape == (70, 10) and logits.dtype == np.float32
    classes = predict(run.model, run.variables, test.images[:5],
                      normalization=run.normalization, output="classes")
    assert classes.shape == (5,) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, logits[:5].argmax(-1))
    # The same as applying the trained state directly.
    from cnnjax.data import normalize
    direct = TinyBN().apply({"params": result.state.params,
                             "batch_stats": result.state.batch_stats},
                            normalize(test.images, *result.normalization), train=False)
    np.testing.assert_allclose(logits, np.asarray(direct), rtol=1e-5, atol=1e-5)


def test_pool_spec_is_recorded_and_rebuilt(tmp_path):
    data = digits_subset(n_train=64, n_test=32)
    fit(TinyPool(pool="avg"), *data, epochs=1, workdir=str(tmp_path), **COMMON)
    run = load(tmp_path)
    assert run.model == TinyPool(pool="avg")


def test_model_record_refuses_non_json_fields():
    assert model_record(TinyPool(pool="max")) == {
        "class": "tests.train.tiny_models.TinyPool",
        "fields": {"num_classes": 10, "pool": "max"}}
    assert model_record(TinyPool(pool=len)) is None


def test_load_errors(tmp_path, trained):
    with pytest.raises(ValueError, match=r"^load: workdir must be a directory .*no such"):
        load(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"^load: workdir must hold fit checkpoints"):
        load(tmp_path)
    with pytest.raises(ValueError, match=r"^load: epoch must be one of the saved epochs 1, "
                                         r"got 7\.$"):
        load(trained[0], epoch=7)


def test_predict_and_evaluate_errors(trained):
    run = load(trained[0])
    images = trained[1][1].images
    with pytest.raises(ValueError, match=r"^predict: output must be 'logits' or 'classes'"):
        predict(run.model, run.variables, images, normalization=run.normalization,
                output="probs")
    with pytest.raises(ValueError, match=r"^predict: batch_size must be a positive int, "
                                         r"got 0\.$"):
        predict(run.model, run.variables, images, normalization=run.normalization,
                batch_size=0)
    with pytest.raises(ValueError, match=r"^predict: normalization must be"):
        predict(run.model, run.variables, images, normalization=None)
    with pytest.raises(ValueError, match=r"^predict: images must be \[N, H, W, C\]"):
        predict(run.model, run.variables, images[0], normalization=run.normalization)
    with pytest.raises(ValueError, match=r"^evaluate: dataset must hold at least one"):
        evaluate(run.model, run.variables, (images[:0], np.zeros(0, np.int32)),
                 normalization=run.normalization)


_FOUR_DEVICES = """
import json, sys
import jax
from cnnjax.train import fit
from tests.train.tiny_models import TinyBN, digits_subset
assert jax.device_count() == 4
r = fit(TinyBN(), *digits_subset(n_train=160, n_test=70), epochs=1, batch_size=32,
        learning_rate=3e-3, seed=0, progress=False, workdir=sys.argv[1])
print(json.dumps(r.history[-1]))
"""


# A four-device checkpoint restored on one device: test_parallel.py (default set).
@pytest.mark.slow
def test_a_run_trained_on_four_devices_loads_on_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", _FOUR_DEVICES, str(tmp_path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    last = json.loads(out.stdout.strip().splitlines()[-1])
    import jax
    assert jax.device_count() == 1
    run = load(tmp_path)
    metrics = evaluate(run.model, run.variables, digits_subset(n_train=160, n_test=70)[1],
                       normalization=run.normalization)
    assert metrics["accuracy"] == pytest.approx(last["test_accuracy"], rel=1e-6)
    assert metrics["loss"] == pytest.approx(last["test_loss"], rel=1e-5)
