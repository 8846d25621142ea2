"""fit on flax.nnx models: the same runs as linen, resume, refusal, result.model, devices."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cnnjax import models
from cnnjax.data import normalize
from cnnjax.nnx import models as nnx_models
from cnnjax.train import _loop, _nnx, fit
from tests.train.tiny_models import digits_subset, flat_state

KW = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)
SHAPE = (8, 8, 1)  # the digits
TINY_RESNET = {"stage_sizes": (1, 1), "widths": (4, 8)}


@pytest.fixture(scope="module")
def data():
    return digits_subset()


def strip(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def twins(name, pool="max", shape=SHAPE, **kw):
    """A linen model and its NNX twin holding the linen init of fit's seed 0."""
    linen = models.get(name, num_classes=10, pool=pool, **kw)
    state = fit(linen, *digits_subset(64, 10), epochs=0, **KW).state
    model = nnx_models.get(name, num_classes=10, pool=pool, input_shape=shape,
                           rngs=nnx.Rngs(0), **kw)
    nnx_models.load_linen_variables(model, linen, {"params": state.params,
                                                   "batch_stats": state.batch_stats})
    return linen, model


def assert_histories_close(a, b, rtol=1e-4):
    assert len(a) == len(b)
    for ha, hb in zip(strip(a), strip(b)):
        assert ha.keys() == hb.keys()
        for k in ha:
            np.testing.assert_allclose(ha[k], hb[k], rtol=rtol, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("name, pool, kw", [
    ("lenet5", "max", {}),
    pytest.param("lenet5", "gem:learn", {}, marks=pytest.mark.slow),
    # BatchNorm: the running statistics travel through the step.
    pytest.param("resnet20", "max", TINY_RESNET, marks=pytest.mark.slow),
])
def test_same_history_as_linen_from_the_same_parameters(data, name, pool, kw):
    linen, model = twins(name, pool, SHAPE, **kw)
    before = jax.tree_util.tree_map(np.asarray, nnx.state(model, nnx.Param))
    a = fit(linen, *data, epochs=2, **KW)
    b = fit(model, *data, epochs=2, **KW)
    assert_histories_close(a.history, b.history)
    # The model passed in keeps its parameters; result.model holds the trained ones.
    after = jax.tree_util.tree_map(np.asarray, nnx.state(model, nnx.Param))
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)
    assert type(b.model) is type(model) and b.model is not model and a.model is linen
    fa, fb = flat_state(a.state), flat_state(b.state)
    assert len(fa) == len(fb)


def test_result_model_predicts_what_the_trained_state_predicts(data):
    model = nnx_models.get("resnet20", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(0),
                           **TINY_RESNET)
    result = fit(model, *data, epochs=1, **KW)
    x = normalize(jnp.asarray(data[1].images[:16]), *result.normalization)
    trained = result.model
    trained.eval()
    adapter = _nnx.NnxModel.wrap(model)
    expected = adapter.apply({"params": result.state.params,
                              "batch_stats": result.state.batch_stats}, x, train=False)
    np.testing.assert_allclose(trained(x), expected, rtol=1e-5, atol=1e-6)
    logits = _loop._eval_step(result.state, data[1].images[:16], data[1].labels[:16],
                              *map(jnp.asarray, result.normalization), model=adapter)
    assert float(logits["count"]) == 16


def test_stochastic_pool_reproducible_resumable_and_noisy(data, tmp_path):
    def build(seed=0):
        return nnx_models.get("lenet5", num_classes=10, pool="stochastic", input_shape=SHAPE,
                              rngs=nnx.Rngs(seed))

    full = fit(build(), *data, epochs=2, **KW)
    again = fit(build(), *data, epochs=2, **KW)
    assert strip(full.history) == strip(again.history)  # a pure function of its arguments
    other_seed = fit(build(), *data, epochs=2, **{**KW, "seed": 1})
    assert strip(other_seed.history) != strip(full.history)
    first = fit(build(), *data, epochs=1, workdir=str(tmp_path), **KW)
    resumed = fit(build(), *data, epochs=2, workdir=str(tmp_path), **KW)
    assert strip(resumed.history) == strip(full.history)
    for k, v in flat_state(full.state).items():
        np.testing.assert_array_equal(flat_state(resumed.state)[k], v, err_msg=k)
    assert len(first.history) == 1
    # Training draws noise: the train-mode logits differ between steps' keys.
    adapter = _nnx.NnxModel.wrap(build())
    x = jnp.asarray(data[0].images[:8], jnp.float32)
    v = adapter.variables()
    y1 = adapter.apply(v, x, train=True, rngs={"pool": jax.random.PRNGKey(1)})
    y2 = adapter.apply(v, x, train=True, rngs={"pool": jax.random.PRNGKey(2)})
    assert not np.allclose(y1, y2)
    np.testing.assert_array_equal(adapter.apply(v, x), adapter.apply(v, x))


def test_workdir_of_another_nnx_model_is_refused(data, tmp_path):
    def build(pool):
        return nnx_models.get("lenet5", num_classes=10, pool=pool, input_shape=SHAPE,
                              rngs=nnx.Rngs(0))

    fit(build("max"), *data, epochs=1, workdir=str(tmp_path), **KW)
    with pytest.raises(ValueError, match=r"fit: workdir .* holds another run: model.fields was "
                                         r".*pool='max'.*, now .*pool='avg'"):
        fit(build("avg"), *data, epochs=2, workdir=str(tmp_path), **KW)
    linen = models.get("lenet5", num_classes=10)
    with pytest.raises(ValueError, match=r"fit: workdir .* holds another run: model was "):
        fit(linen, *data, epochs=2, workdir=str(tmp_path), **KW)


def test_adapter_identity_and_step_cache(data):
    a = nnx_models.get("lenet5", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(0))
    b = nnx_models.get("lenet5", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(1))
    b.eval()  # the mode does not change the program
    c = nnx_models.get("lenet5", num_classes=10, pool="avg", input_shape=SHAPE,
                       rngs=nnx.Rngs(0))
    wa, wb, wc = map(_nnx.NnxModel.wrap, (a, b, c))
    assert wa == wb and hash(wa) == hash(wb) and wa != wc
    assert wa.module == "cnnjax.nnx.models._lenet.LeNet5" and "pool='max'" in wa.fields
    assert "convs/0: cnnjax.nnx._conv.Conv(" in wa.graph
    # Two models of one architecture share the compiled steps, and each trains from its own
    # parameters (never the first model's, baked into a cached step).
    ra = fit(a, *data, epochs=1, **KW)
    rb = fit(b, *data, epochs=1, **KW)
    assert ra.history[0]["train_loss"] != rb.history[0]["train_loss"]
    rb2 = fit(nnx_models.get("lenet5", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(1)),
              *data, epochs=1, **KW)
    assert strip(rb.history) == strip(rb2.history)


def test_load_linen_variables_checks_the_layers():
    linen = models.get("lenet5", num_classes=10)
    v = linen.init(jax.random.key(0), jnp.zeros((1, *SHAPE)), train=False)
    model = nnx_models.get("lenet5", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(0))
    nnx_models.load_linen_variables(model, linen, v)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *SHAPE)), jnp.float32)
    np.testing.assert_allclose(model(x), linen.apply(v, x, train=False), rtol=1e-5, atol=1e-6)
    other = nnx_models.get("mnistnet", num_classes=10, input_shape=SHAPE, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="load_linen_variables: "):
        nnx_models.load_linen_variables(other, linen, v)


WORKER = """
import sys
sys.path.insert(0, {root!r})
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
import numpy as np
from flax import nnx
from cnnjax.nnx import models as nnx_models
from cnnjax.train import fit
from tests.train.tiny_models import digits_subset
assert jax.device_count() == 2
kw = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)
data = digits_subset()
def build():
    return nnx_models.get("resnet20", num_classes=10, input_shape=(8, 8, 1), rngs=nnx.Rngs(0),
                          stage_sizes=(1, 1), widths=(4, 8))
one = fit(build(), *data, epochs=1, devices=1, **kw)
two = fit(build(), *data, epochs=1, devices=2, **kw)
a, b = one.history[0], two.history[0]
assert abs(a["train_loss"] - b["train_loss"]) < 1e-2 * a["train_loss"], (a, b)
assert abs(a["test_loss"] - b["test_loss"]) < 5e-2 * a["test_loss"], (a, b)
two.model.eval()
print("ok")
"""


@pytest.mark.slow
def test_data_parallel_on_two_host_devices():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run([sys.executable, "-c", WORKER.format(root=root)], env=env,
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
