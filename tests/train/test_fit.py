"""fit: learning, determinism, checkpoint/resume, no recompilation, options and errors."""
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnnjax.data import Dataset, normalize
from cnnjax.train import TrainState, _loop, cross_entropy, fit, make_optimizer, make_schedule
from tests.train.tiny_models import TinyBN, TinyNoBN, TinyPool, digits_subset, flat_state

COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)


@pytest.fixture(scope="module")
def data():
    return digits_subset()


def strip_seconds(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def assert_states_equal(a, b):
    fa, fb = flat_state(a), flat_state(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    for x, y in zip(jax.tree.leaves(a.opt_state), jax.tree.leaves(b.opt_state)):
        np.testing.assert_array_equal(x, y)
    assert int(a.step) == int(b.step)


def test_cross_entropy_matches_definition(rng):
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, -1, 2, 3], np.int32)
    loss, correct, count = cross_entropy(logits, labels)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    keep = labels >= 0
    np.testing.assert_allclose(loss, -logp[keep, labels[keep]].sum(), rtol=1e-5)
    assert float(correct) == np.sum(logits.argmax(1)[keep] == labels[keep]) and float(count) == 5
    assert loss.dtype == jnp.float32
    # Log-softmax outputs (the lectures' MNIST net) give the same loss.
    np.testing.assert_allclose(cross_entropy(logp, labels)[0], loss, rtol=1e-5)


def test_loss_decreases_within_a_few_steps(data):
    train, test = data
    start = fit(TinyBN(), train, test, epochs=0, **COMMON)
    assert start.history == [] and int(start.state.step) == 0
    after = fit(TinyBN(), train, test, epochs=1, **COMMON)  # 10 steps
    assert int(after.state.step) == 10

    def test_loss(state):
        logits = TinyBN().apply({"params": state.params, "batch_stats": state.batch_stats},
                                normalize(test.images, *after.normalization), train=False)
        return float(cross_entropy(logits, test.labels)[0]) / len(test.labels)

    assert test_loss(start.state) > 2.0  # ~log(10) at initialisation
    assert after.history[0]["test_loss"] == pytest.approx(test_loss(after.state), rel=1e-5)
    # Eval uses BN running averages, still mostly their initial values after 10 steps, so
    # the drop is modest; train loss (batch statistics) drops faster.
    assert after.history[0]["test_loss"] < 0.85 * test_loss(start.state)
    assert after.history[0]["train_loss"] < 0.85 * test_loss(start.state)
    h = after.history[0]
    assert set(h) >= {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                      "seconds"} and h["epoch"] == 1
    assert 0 <= h["test_accuracy"] <= 1 and h["seconds"] > 0


def test_same_seed_same_history_params_and_single_compile(data, caplog):
    _loop._steps.cache_clear()
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        a = fit(TinyBN(), *data, epochs=2, **COMMON)
        # Same configuration, other run: the cached compiled steps are reused.
        b = fit(TinyBN(), *data, epochs=2, **COMMON)
    messages = [r.getMessage() for r in caplog.records]
    # 2 x 20 steps and 2 x 2 x 4 eval batches (the last one padded): one compile each.
    assert sum("Compiling jit(_train_step)" in m for m in messages) == 1
    assert sum("Compiling jit(_eval_step)" in m for m in messages) == 1
    assert strip_seconds(a.history) == strip_seconds(b.history)
    assert_states_equal(a.state, b.state)
    c = fit(TinyBN(), *data, epochs=2, **{**COMMON, "seed": 1})
    assert strip_seconds(c.history) != strip_seconds(a.history)


class Interrupt(Exception):
    pass


def test_interrupted_then_resumed_equals_uninterrupted(data, tmp_path):
    kw = dict(COMMON, epochs=3, schedule="cosine")
    full = fit(TinyBN(), *data, **kw)

    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(TinyBN(), *data, workdir=tmp_path, on_epoch_end=stop_after_two, **kw)
    resumed_epochs = []
    resumed = fit(TinyBN(), *data, workdir=tmp_path,
                  on_epoch_end=lambda e: resumed_epochs.append(e["epoch"]), **kw)
    assert resumed_epochs == [3]  # epochs 1-2 came from the checkpoint
    assert strip_seconds(resumed.history) == strip_seconds(full.history)
    assert_states_equal(resumed.state, full.state)
    # A finished run re-run is a no-op that returns the final state.
    again = fit(TinyBN(), *data, workdir=tmp_path, **kw)
    assert_states_equal(again.state, full.state)


def test_extend_run_without_batch_stats(data, tmp_path):
    # 2 epochs, then the same command with epochs=3 (constant schedule) == 3 epochs at once;
    # the model has an empty batch_stats collection, which must checkpoint fine too.
    fit(TinyNoBN(), *data, epochs=2, workdir=tmp_path, **COMMON)
    resumed = fit(TinyNoBN(), *data, epochs=3, workdir=tmp_path, **COMMON)
    full = fit(TinyNoBN(), *data, epochs=3, **COMMON)
    assert resumed.state.batch_stats == {}
    assert_states_equal(resumed.state, full.state)
    assert strip_seconds(resumed.history) == strip_seconds(full.history)
    # Resuming with other settings or another model is refused, not silently mixed.
    with pytest.raises(ValueError, match=r"holds another run: seed was 0, now 1; "):
        fit(TinyNoBN(), *data, epochs=4, workdir=tmp_path, **{**COMMON, "seed": 1})
    with pytest.raises(ValueError, match=r"holds another run: model was "
                                         r"tests.train.tiny_models.TinyNoBN, now "
                                         r"tests.train.tiny_models.TinyBN \(and \d+ more "
                                         r"fields\); "):
        fit(TinyBN(), *data, epochs=4, workdir=tmp_path, **COMMON)


def test_optimizers_schedules_and_augmentation(rng):
    # Small RGB data named like CIFAR: augment='auto' turns on crop+flip inside the step.
    images = rng.integers(0, 256, size=(16, 8, 8, 3)).astype(np.uint8)
    labels = rng.integers(0, 10, size=16).astype(np.int32)
    cifar = Dataset(images, labels, 10, "cifar10")
    kw = dict(epochs=1, batch_size=8, learning_rate=1e-2, seed=0, progress=False,
              weight_decay=1e-4)
    auto = fit(TinyNoBN(), cifar, (images[:5], labels[:5]), optimizer="sgd",
               schedule="warmup_cosine", **kw)
    plain = fit(TinyNoBN(), cifar, (images[:5], labels[:5]), optimizer="sgd",
                schedule="warmup_cosine", augment=None, **kw)
    adamw = fit(TinyNoBN(), cifar, None, optimizer="adamw", schedule="cosine", augment=None,
                **kw)
    for r in (auto, plain, adamw):
        assert np.isfinite(r.history[0]["train_loss"]) and int(r.state.step) == 2
    assert auto.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert adamw.history[0]["test_loss"] is None
    # 2 steps: 1 warmup step (5%, at least 1), then the peak at the last step.
    assert auto.history[0]["learning_rate"] == pytest.approx(1e-2)


def test_make_schedule_and_optimizer():
    warm = make_schedule("warmup_cosine", 0.1, 100, warmup_steps=10)
    assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(0.1)
    assert float(make_schedule("cosine", 0.1, 100)(100)) == pytest.approx(0.0, abs=1e-7)
    assert float(make_schedule("constant", 0.1, 100)(57)) == pytest.approx(0.1)
    # 'adam' with weight decay is Adam on grad + wd * param (torch.optim.Adam's L2 penalty).
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = make_optimizer("adam", make_schedule("constant", 0.1, 1), weight_decay=0.1)
    ref = optax.adam(0.1)
    with jax.numpy_dtype_promotion("standard"):
        got, _ = tx.update(grads, tx.init(params), params)
        want, _ = ref.update({"w": grads["w"] + 0.1 * params["w"]}, ref.init(params))
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size must be a positive multiple of the number of devices"),
    (dict(batch_size=1000), "batch_size must be <= the 320 training examples, got 1000"),
    (dict(epochs=-1), "epochs must be an int >= 0, got -1"),
    (dict(learning_rate=0.0), "learning_rate must be > 0, got 0.0"),
    (dict(optimizer="rmsprop"), "optimizer must be one of 'adam', 'adamw', 'sgd'"),
    (dict(schedule="step"), "schedule must be one of 'constant', 'cosine', 'warmup_cosine'"),
    (dict(augment="mixup"), "augment must be 'auto'"),
    (dict(devices=5), "devices must be between 1 and the 1 available devices, got 5"),
])
def test_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(TinyBN(), *data, **{**COMMON, "epochs": 1, **kwargs})


def test_bad_data(data):
    with pytest.raises(TypeError, match="train_data must be a cnnjax.data.Dataset"):
        fit(TinyBN(), "digits", data[1], epochs=1, **COMMON)


def test_state_is_a_plain_pytree(data):
    state = fit(TinyNoBN(), *data, epochs=0, **COMMON).state
    assert isinstance(state, TrainState)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
    assert state.step.dtype == jnp.int32
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))


def test_one_line_per_epoch_when_not_a_terminal_and_logs_epochs(data, capsys, caplog):
    caplog.set_level(logging.INFO, logger="cnnjax.train")
    fit(TinyBN(), *data, epochs=1, **{**COMMON, "progress": "auto"})  # stdout is captured
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1/1 · train loss ") and out.count("\n") == 1 and err == ""
    assert any(r.getMessage().startswith("epoch 1/1: train loss") for r in caplog.records)


# ------------------------------------------------------------------ labels against the model


def test_model_with_too_few_logits_is_refused(data):
    # A 3-class model on 10-class labels used to train without complaint.
    train, test = data
    with pytest.raises(ValueError, match=r"^fit: the model returns 3 logits but train_data has "
                                         r"10 classes \(labels 0\.\.9\); build the model with "
                                         r"num_classes=10\.$"):
        fit(TinyNoBN(num_classes=3), train, test, epochs=1, **COMMON)
    # Training labels that fit, test labels that do not.
    keep = train.labels < 3
    small = Dataset(train.images[keep], train.labels[keep], 3, "digits")
    with pytest.raises(ValueError, match=r"returns 3 logits but test_data has 10 classes"):
        fit(TinyNoBN(num_classes=3), small, test, epochs=1, **COMMON)
    # A dataset declaring more classes than its labels show is checked by num_classes.
    with pytest.raises(ValueError, match=r"train_data has 10 classes \(labels 0\.\.2\)"):
        fit(TinyNoBN(num_classes=3), small._replace(num_classes=10), None, epochs=1, **COMMON)
    with pytest.raises(ValueError, match=r"fit: train_data labels must be >= 0 .*got -1\."):
        fit(TinyNoBN(), (train.images, np.where(keep, train.labels, -1)), None, epochs=1,
            **COMMON)
    with pytest.raises(ValueError, match=r"fit: train_data labels must be integers, got dtype "
                                         r"float32\."):
        fit(TinyNoBN(), train._replace(labels=train.labels.astype(np.float32)), None,
            epochs=1, **COMMON)
    assert len(fit(TinyNoBN(num_classes=3), small, None, epochs=1, **COMMON).history) == 1


def test_model_that_cannot_run_on_the_images_is_one_error(data):
    tiny = Dataset(data[0].images[:, :1, :1], data[0].labels, 10, "digits")
    with pytest.raises(ValueError, match=r"^fit: the model cannot run on train_data's images "
                                         r"of shape \(1, 1, 1\) \(max_pool: window_shape .*\)\.$"):
        fit(TinyPool(), tiny, None, epochs=1, **COMMON)
    with pytest.raises(ValueError, match=r"fit: test_data images must have the training "
                                         r"images' shape \(8, 8, 1\), got \(1, 1, 1\)\."):
        fit(TinyPool(), data[0], tiny, epochs=1, **COMMON)
