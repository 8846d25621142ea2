"""Tests for cnnjax/models: every model × every pool spec, parameter counts, summary, folding."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnnjax import models, nn

# The smallest input each model accepts (the matrix runs eagerly at batch 2 to stay fast).
SMALL = {
    "lenet5": (8, 8, 1), "mnistnet": (8, 8, 1), "alexnet": (15, 15, 3), "vgg11": (32, 32, 3),
    "vgg11_bn": (32, 32, 3), "vgg16": (32, 32, 3), "vgg16_bn": (32, 32, 3),
    "resnet20": (4, 4, 3), "resnet18": (8, 8, 3), "nin": (4, 4, 3), "googlenet": (4, 4, 3),
}
RNGS = ("params", "dropout", "pool")


def _rngs(seed):
    return {k: jax.random.key(seed + i) for i, k in enumerate(RNGS)}


def _n_params(variables):
    return sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(variables["params"]))


def _loss(params, rest, model, x, y, rngs):
    logits, updates = model.apply({"params": params, **rest}, x, train=True, rngs=rngs,
                                  mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), (logits, updates)


def test_names_cover_the_zoo():
    assert set(SMALL) == set(models.NAMES)
    with pytest.raises(ValueError, match="models.get: unknown model 'lenet'; valid names are"):
        models.get("lenet")
    assert isinstance(models.get("VGG16_BN", num_classes=3), models.VGG)


# The matrix runs eagerly (XLA compiles each primitive once and reuses it across specs), at
# batch 2 and the smallest input per model, with the XLA convolution (the conv impls have their
# own tests; fewer primitives keep this fast) and narrow FC heads. The other zoo entries
# (vgg11, vgg16, vgg16_bn, resnet18) share their pooling sites' code with these and get a
# smoke test below.
# The bigger models cost minutes of XLA compilation on 2 cores (every spec compiles its pool
# at every site's shape, and the eager backward pass compiles every layer), so their rows of
# the matrix are marked slow; a quick run (-m "not slow") covers each of them with the jitted
# training step of test_second_jitted_step_does_not_recompile (a stochastic pool; GoogLeNet max).
_SLOW = pytest.mark.slow
MATRIX = [
    pytest.param("lenet5", {}, id="lenet5"),
    # MNISTNet's pools are LeNet5's sites; its training step is tested jitted below.
    pytest.param("mnistnet", {}, id="mnistnet", marks=_SLOW),
    pytest.param("resnet20", {}, id="resnet20", marks=_SLOW),
    pytest.param("nin", {}, id="nin", marks=_SLOW),
    pytest.param("alexnet", {"hidden": 32}, id="alexnet", marks=_SLOW),
    pytest.param("vgg11_bn", {"hidden": 32}, id="vgg11_bn", marks=_SLOW),
    pytest.param("googlenet", {}, id="googlenet", marks=_SLOW),
]


def _train_and_eval(name, shape, spec, **kw):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *shape)), jnp.float32)
    y = jnp.asarray([0, 1])
    model = models.get(name, num_classes=3, pool=spec, **kw)
    variables = model.init(_rngs(0), x, train=False)
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}
    (loss, (logits, updates)), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, rest, model, x, y, _rngs(1))
    assert logits.shape == (2, 3), spec
    assert np.all(np.isfinite(logits)) and np.isfinite(loss), spec
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves), spec
    assert any(np.any(g != 0) for g in leaves), spec
    if "batch_stats" in rest:  # training updated the running statistics
        changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(a != b)),
                                         updates["batch_stats"], rest["batch_stats"])
        assert any(jax.tree_util.tree_leaves(changed)), spec
    out = model.apply({"params": params, **{**rest, **updates}}, x, train=False)
    assert out.shape == (2, 3) and np.all(np.isfinite(out)), spec


@pytest.mark.parametrize("name, kw", MATRIX)
def test_every_model_with_every_pool(name, kw):
    """init, a training apply (mutable batch_stats, dropout and pool RNGs) with gradients, and
    an eval apply, with finite logits and gradients, for every pool spec."""
    for spec in nn.POOL_SPECS:
        _train_and_eval(name, SMALL[name], spec, impl="xla", **kw)


# The rows marked slow are models whose training step test_second_jitted_step_does_not_recompile
# already runs in the default set (resnet18: test_cifar_and_native_sizes, shape level).
@pytest.mark.parametrize("name, specs", [
    pytest.param("alexnet", ("mixed:learn",), marks=_SLOW),
    pytest.param("vgg11_bn", ("gated",), marks=_SLOW), ("vgg11", ("max",)),
    ("vgg16", ("max",)), ("vgg16_bn", ("max",)),
    pytest.param("resnet20", ("stochastic", "lp:learn"), marks=_SLOW),
    pytest.param("nin", ("spectral", "stochastic_mixed"), marks=_SLOW),
    pytest.param("resnet18", ("max",), marks=_SLOW),
])
def test_other_variants_train_and_eval(name, specs):
    kw = {"hidden": 32} if name.startswith(("vgg", "alexnet")) else {}
    for spec in specs:
        _train_and_eval(name, SMALL[name], spec, impl="xla", **kw)


@pytest.mark.parametrize("spec, key", [
    ("lp:learn", "p_raw"),
    pytest.param("mixed:learn", "alpha_logit", marks=_SLOW),
    pytest.param("gated", "gate", marks=_SLOW),
])
def test_learned_pool_parameters_get_gradients(spec, key):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8, 8, 1)), jnp.float32)
    model = models.LeNet5(num_classes=3, pool=spec)
    v = model.init(_rngs(0), x, train=False)
    grads = jax.grad(lambda p: _loss(p, {}, model, x, jnp.asarray([0, 2]), _rngs(1))[0])(
        v["params"])
    pool_grads = [g for path, g in jax.tree_util.tree_leaves_with_path(grads)
                  if path[-1].key == key]
    assert len(pool_grads) == 2, spec  # both pooling sites learn their own parameter
    assert all(np.all(np.isfinite(g)) and np.any(g != 0) for g in pool_grads), spec


def test_pool_factory_is_accepted():
    x = jnp.zeros((1, 8, 8, 1), jnp.float32)
    factory = functools.partial(nn.MixedPool, alpha=0.25)
    model = models.LeNet5(num_classes=3, pool=factory)
    v = model.init(_rngs(0), x, train=False)
    assert model.apply(v, x, train=False).shape == (1, 3)
    with pytest.raises(TypeError, match="pool must be a spec string or a module factory"):
        models.LeNet5(pool=3).init(_rngs(0), x, train=False)
    with pytest.raises(ValueError, match="unknown pooling spec 'median3'"):
        models.LeNet5(pool="median3").init(_rngs(0), x, train=False)


@pytest.mark.parametrize("name, shape, n_params", [
    ("lenet5", (28, 28, 1), 1_256_080),   # the lectures' LeNet-5 table
    ("mnistnet", (28, 28, 1), 1_199_882),  # the lectures' PyTorch MNIST example
])
def test_parameter_counts(name, shape, n_params):
    model = models.get(name, num_classes=10)
    shapes = jax.eval_shape(lambda: model.init(_rngs(0), jnp.zeros((1, *shape)), train=False))
    assert _n_params(shapes) == n_params


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cifar_and_native_sizes(name):
    """Shape-level check (no compilation) at 32×32×3 and the lectures' native sizes."""
    sizes = [(32, 32, 3)]
    if name in ("lenet5", "mnistnet"):
        sizes.append((28, 28, 1))
    if name == "alexnet":
        sizes.append((227, 227, 3))
    for shape in sizes:
        model = models.get(name, num_classes=7)
        x = jnp.zeros((2, *shape))
        v = jax.eval_shape(lambda: model.init(_rngs(0), x, train=False))
        out = jax.eval_shape(lambda v: model.apply(v, x, train=True, rngs=_rngs(1),
                                                   mutable=["batch_stats"])[0], v)
        assert out.shape == (2, 7), shape


def test_resnet20_parameter_count():
    # He et al. 2016, Table 6: 0.27M (with 1×1 projection shortcuts, as here, 272,474).
    shapes = jax.eval_shape(lambda: models.ResNet20(num_classes=10).init(
        _rngs(0), jnp.zeros((1, 32, 32, 3)), train=False))
    assert 0.26e6 < _n_params(shapes) < 0.28e6


def test_alexnet_native_size_matches_seed_table():
    table = models.summary(models.AlexNet(num_classes=1000), (227, 227, 3))
    for row in ("| Conv (C_out=96, K=11, P=0, S=4) | 96×55×55 |", "| MaxPool(K=3, S=2) | 96×27×27 |",
                "| MaxPool(K=3, S=2) | 256×13×13 |", "| MaxPool(K=3, S=2) | 256×6×6 |",
                "| Linear (9216→4096) | 4096 |", "| Linear (4096→1000) | 1000 |"):
        assert row in table


SEED_LENET5_TABLE = """\
| Layer | Output Size | Weight Size |
|---|---|---|
| Input | 1×28×28 | |
| Conv (C_out=20, K=5, P=2, S=1) | 20×28×28 | 20×1×5×5 |
| ReLU | 20×28×28 | |
| MaxPool(K=2, S=2) | 20×14×14 | |
| Conv (C_out=50, K=5, P=2, S=1) | 50×14×14 | 50×20×5×5 |
| ReLU | 50×14×14 | |
| MaxPool(K=2, S=2) | 50×7×7 | |
| Flatten | 2450 | |
| Linear (2450→500) | 500 | 2450×500 |
| ReLU | 500 | |
| Linear (500→10) | 10 | 500×10 |"""


def test_summary_lenet5_matches_seed_table():
    text = models.summary(models.LeNet5(num_classes=10), (28, 28, 1))
    assert text.startswith(SEED_LENET5_TABLE + "\n")
    assert "Total parameters: 1,256,080" in text
    # conv5 → 5, pool2 → 6, conv5 at jump 2 → 14, pool2 → 16
    assert "Receptive field: 16×16" in text
    assert models.summary(models.LeNet5(), (1, 28, 28, 1)) == text


def test_summary_receptive_field_uses_longest_branch():
    # ResNet-20: stem + 18 convs of 3×3 at jumps 1 (6 convs), 2 (first at 1), 4 → 81.
    text = models.summary(models.ResNet20(), (32, 32, 3))
    assert "Receptive field: 81×81" in text
    assert "| AvgPool(K=2, S=2, P=SAME) | 16×16×16 | |" in text
    text = models.summary(models.LeNet5(pool="gated"), (28, 28, 1))
    assert "| GatedPool(K=2, S=2) | 20×14×14 | 2×2 |" in text


@pytest.mark.parametrize("name, shape", [("vgg11_bn", (32, 32, 3)), ("resnet20", (8, 8, 3))])
def test_fold_batch_norms_same_logits(name, shape):
    # (GoogLeNet uses the same ConvBN blocks; XLA convs keep the eager applies quick.)
    model = models.get(name, num_classes=5, impl="xla")
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, *shape)), jnp.float32)
    v = model.init(_rngs(0), x, train=False)
    # Non-trivial statistics and affine parameters, as after training.
    r = np.random.default_rng(3)
    def randomise(path, a):
        key = path[-1].key
        if key == "mean" or (key == "bias" and path[-2].key == "bn"):
            return jnp.asarray(r.normal(size=a.shape), a.dtype)
        if key == "var" or (key == "scale" and path[-2].key == "bn"):
            return jnp.asarray(r.uniform(0.5, 2.0, size=a.shape), a.dtype)
        return a
    v = jax.tree_util.tree_map_with_path(randomise, v)
    fmodel, fv = models.fold_batch_norms(model, v)
    assert fmodel.fold_bn and "batch_stats" not in fv
    assert _n_params(fv) < _n_params(v)
    expected = model.apply(v, x, train=False)
    got = fmodel.apply(fv, x, train=False)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4 * float(jnp.abs(expected).max()))
    with pytest.raises(ValueError, match="ConvBN: a folded Conv→BatchNorm is for inference only"):
        fmodel.apply(fv, x, train=True, rngs=_rngs(1))
    with pytest.raises(ValueError, match="already folded"):
        models.fold_batch_norms(fmodel, fv)


def test_fold_batch_norms_without_bn_is_identity():
    model = models.LeNet5()
    v = {"params": {"a": jnp.ones(2)}}
    m2, v2 = models.fold_batch_norms(model, v)
    assert m2 is model and v2 == v


@pytest.mark.parametrize("name, shape", [
    ("lenet5", (8, 8, 1)), ("mnistnet", (8, 8, 1)), ("alexnet", (15, 15, 3)),
    ("vgg11_bn", (32, 32, 3)), ("resnet20", (4, 4, 3)), ("nin", (4, 4, 3)),
    ("googlenet", (4, 4, 3)),
])
def test_second_jitted_step_does_not_recompile(name, shape):
    # The XLA conv keeps the traced graph small (compile time); the default impl is traced by
    # the other tests.
    # A stochastic pool exercises the 'pool' RNG inside the jitted step; GoogLeNet (11 pooling
    # sites) uses max pooling to keep its compile time down.
    pool = "max" if name == "googlenet" else "stochastic"
    model = models.get(name, num_classes=3, pool=pool, impl="xla")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *shape)), jnp.float32)
    y = jnp.asarray([0, 2])
    v = jax.jit(lambda x: model.init(_rngs(0), x, train=False))(x)  # one compile, not eager
    tx = optax.sgd(0.01)
    traces = []

    @jax.jit
    def step(params, rest, opt_state, key):
        traces.append(1)  # runs once per trace (= compilation)
        rngs = {"dropout": jax.random.fold_in(key, 0), "pool": jax.random.fold_in(key, 1)}
        (loss, (_, updates)), grads = jax.value_and_grad(_loss, has_aux=True)(
            params, rest, model, x, y, rngs)
        upd, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, upd), {**rest, **updates}, opt_state, loss

    params = v["params"]
    rest = {k: val for k, val in v.items() if k != "params"}
    opt_state = tx.init(params)
    for i in range(2):
        params, rest, opt_state, loss = step(params, rest, opt_state, jax.random.key(i))
        assert np.isfinite(loss)
    assert len(traces) == 1
    assert step._cache_size() == 1
