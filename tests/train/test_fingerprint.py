"""The run fingerprint: resuming continues only the same experiment; restart starts over."""
import functools
import os
import subprocess
import sys

import numpy as np
import optax
import pytest

from cnnjax.data import Dataset
from cnnjax.train import Checkpointer, fit
from cnnjax.train._fingerprint import checksum, stable_repr
from tests.train.tiny_models import TinyNoBN, TinyPool, digits_subset, flat_state

COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)


@pytest.fixture(scope="module")
def data():
    return digits_subset()


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A workdir holding one finished epoch of TinyPool(pool='max')."""
    workdir = tmp_path_factory.mktemp("fp") / "run"
    fit(TinyPool(), *data, epochs=1, workdir=workdir, **COMMON)
    return workdir


def _pixel_changed(ds):
    images = ds.images.copy()
    images[5, 3, 3, 0] ^= 1
    return ds._replace(images=images)


def _labels_swapped(ds):
    labels = ds.labels.copy()
    i, j = np.flatnonzero(labels != labels[0])[0], 0
    labels[[i, j]] = labels[[j, i]]
    return ds._replace(labels=labels)


def _fewer(ds):
    return Dataset(ds.images[:288], ds.labels[:288], ds.num_classes, ds.name)


# (model, how the data change, fit keyword changes, the message's field, old and new values)
CHANGES = {
    "pool": (TinyPool(pool="avg"), None, {}, "model.pool", "'max'", "'avg'"),
    "model field": (TinyPool(num_classes=12), None, {}, "model.num_classes", "10", "12"),
    "model class": (TinyNoBN(), None, {}, "model", "tests.train.tiny_models.TinyPool",
                    "tests.train.tiny_models.TinyNoBN"),
    "image pixel": (TinyPool(), (_pixel_changed, None), {}, "train_data.images",
                    r"uint8\[320,8,8,1\] crc32=\w{8}", r"uint8\[320,8,8,1\] crc32=\w{8}"),
    "labels": (TinyPool(), (_labels_swapped, None), {}, "train_data.labels",
               r"int32\[320\] crc32=\w{8}", r"int32\[320\] crc32=\w{8}"),
    "dataset size": (TinyPool(), (_fewer, None), {}, "train_data.labels",
                     r"int32\[320\] crc32=\w{8}", r"int32\[288\] crc32=\w{8}"),
    "dataset name": (TinyPool(), (lambda d: d._replace(name="mnist"), None), {},
                     "train_data.name", "'digits'", "'mnist'"),
    "test set": (TinyPool(), (None, _pixel_changed), {}, "test_data.images",
                 r"uint8\[100,8,8,1\] crc32=\w{8}", r"uint8\[100,8,8,1\] crc32=\w{8}"),
    "no test set": (TinyPool(), (None, lambda d: None), {}, "test_data.name", "'digits'",
                    "None"),
    "optimizer": (TinyPool(), None, {"optimizer": "sgd"}, "optimizer", "'adam'", "'sgd'"),
    "optax optimizer": (TinyPool(), None, {"optimizer": optax.adam(3e-3)}, "optimizer",
                        "'adam'", r"optax\._src\.base\.GradientTransformationExtraArgs\(.*"),
    "learning rate": (TinyPool(), None, {"learning_rate": 1e-3}, "learning_rate", "0.003",
                      "0.001"),
    "weight decay": (TinyPool(), None, {"weight_decay": 1e-4}, "weight_decay", "0.0",
                     "0.0001"),
    "schedule": (TinyPool(), None, {"schedule": "cosine"}, "schedule", "'constant'",
                 "'cosine' over 20 steps"),
    "augmentation": (TinyPool(), None, {"augment": "crop"}, "augment", "None", "'crop'"),
    "batch size": (TinyPool(), None, {"batch_size": 16}, "batch_size", "32", "16"),
    "seed": (TinyPool(), None, {"seed": 1}, "seed", "0", "1"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_resume_refuses_any_other_setting(data, finished, change):
    # `--pool max` then `--pool avg` on the same workdir used to resume max-pool weights into
    # the avg-pool model; the dataset was compared by example count only.
    model, transform, kwargs, field, old, new = CHANGES[change]
    train, test = data
    if transform is not None:
        train = transform[0](train) if transform[0] else train
        test = transform[1](test) if transform[1] else test
    message = (rf"^fit: workdir {finished} holds another run: {field} was {old}, now {new}"
               r"( \(and \d+ more fields?\))?; use another workdir, the same settings, or "
               r"restart=True \(cnnjax train --restart\) to start over\.$")
    with pytest.raises(ValueError, match=message):
        fit(model, train, test, epochs=2, workdir=finished, **{**COMMON, **kwargs})


def test_epochs_may_grow_unless_the_schedule_depends_on_them(data, tmp_path):
    fit(TinyPool(), *data, epochs=1, workdir=tmp_path / "c", **COMMON)
    grown = fit(TinyPool(), *data, epochs=2, workdir=tmp_path / "c", **COMMON)
    assert [h["epoch"] for h in grown.history] == [1, 2]
    kw = dict(COMMON, schedule="cosine")
    fit(TinyPool(), *data, epochs=1, workdir=tmp_path / "cos", **kw)
    with pytest.raises(ValueError, match=r"schedule was 'cosine' over 10 steps, now 'cosine' "
                                         r"over 20 steps; "):
        fit(TinyPool(), *data, epochs=2, workdir=tmp_path / "cos", **kw)


def test_restart_deletes_the_old_run_and_trains_fresh(data, tmp_path):
    workdir = tmp_path / "w"
    fit(TinyPool(), *data, epochs=2, workdir=workdir, **COMMON)
    with pytest.raises(ValueError, match="model.pool was 'max', now 'avg'"):
        fit(TinyPool(pool="avg"), *data, epochs=1, workdir=workdir, **COMMON)
    epochs_seen = []
    again = fit(TinyPool(pool="avg"), *data, epochs=1, workdir=workdir, restart=True,
                on_epoch_end=lambda e: epochs_seen.append(e["epoch"]), **COMMON)
    fresh = fit(TinyPool(pool="avg"), *data, epochs=1, **COMMON)
    assert epochs_seen == [1]  # trained, not resumed
    for k, v in flat_state(fresh.state).items():
        np.testing.assert_array_equal(flat_state(again.state)[k], v, err_msg=k)
    ckpt = Checkpointer(workdir)
    assert ckpt.epochs() == [1]  # the max-pool run's epochs 1 and 2 are gone
    with pytest.raises(ValueError, match=r"^fit: restart=True needs a workdir .*got "
                                         r"workdir=None\.$"):
        fit(TinyPool(), *data, epochs=1, restart=True, **COMMON)
    assert ckpt.read_meta(1)["fingerprint"]["model.pool"] == "'avg'"
    ckpt.close()


def test_checkpoint_without_fingerprint_is_refused(data, tmp_path):
    state = fit(TinyPool(), *data, epochs=0, **COMMON).state
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, state, {"history": [{"epoch": 1}], "config": {"seed": 0}})
    ckpt.close()
    with pytest.raises(ValueError, match=r"holds a checkpoint without a run fingerprint \(written "
                                         r"by an older cnnjax\).*restart=True"):
        fit(TinyPool(), *data, epochs=2, workdir=tmp_path, **COMMON)


def _program():
    return """
import functools, optax
from cnnjax import nn
from cnnjax.data import random_crop_flip
from cnnjax.train._fingerprint import stable_repr
from tests.train.tiny_models import TinyPool
def scaled(scale):
    return lambda x: x * scale
values = [TinyPool(pool="lp:p=3"), functools.partial(nn.MaxPool, padding=1),
          optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9)),
          functools.partial(random_crop_flip, flip=False), scaled(0.5),
          nn.BatchNorm(), optax.warmup_cosine_decay_schedule(0.0, 1.0, 5, 50)]
print("\\n".join(stable_repr(v) for v in values))
"""


def test_stable_repr_is_the_same_in_every_process():
    # Checkpoints are resumed by other processes: no memory addresses, no ids.
    env = dict(os.environ, PYTHONHASHSEED="123")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outs = [subprocess.run([sys.executable, "-c", _program()], cwd=root, env=env,
                           capture_output=True, text=True, timeout=120, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1] and " at 0x" not in outs[0]
    lines = outs[0].splitlines()
    assert lines[0] == ("tests.train.tiny_models.TinyPool(num_classes=10, pool='lp:p=3')")
    # Hyperparameters hidden in closures are part of the description.
    assert "weight_decay=0.0001" in lines[2] and "decay=0.9" in lines[2]
    assert "step_size=-0.1" in lines[2] and "scale=0.5" in lines[4]
    assert stable_repr(optax.sgd(0.1)) != stable_repr(optax.sgd(0.2))
    assert stable_repr(functools.partial(max, 1)) == "functools.partial(builtins.max, 1)"


def test_checksum_sees_every_byte():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    b = a.copy()
    b[2, 3] ^= 0x80
    assert checksum(a).startswith("uint8[3,4] crc32=") and checksum(a) != checksum(b)
    assert checksum(a).split()[0] != checksum(a.reshape(4, 3)).split()[0]
