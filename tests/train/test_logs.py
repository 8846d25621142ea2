"""Training logs: metrics.csv rows per epoch, resume without duplicates, TensorBoard files,
and the one-line-per-epoch progress when stdout is not a terminal."""
import csv
import glob
import logging
import os
import struct

import numpy as np
import pytest

from cnnjax.train import MetricsLog, _logs, fit, read_metrics
from tests.train.tiny_models import TinyNoBN, digits_subset

COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)
FIELDS = ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
          "eval_seconds", "learning_rate"]


@pytest.fixture(scope="module")
def data():
    return digits_subset(n_train=128, n_test=64)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_has_one_row_per_epoch_with_every_history_field(data, tmp_path):
    result = fit(TinyNoBN(), *data, epochs=2, workdir=str(tmp_path), **COMMON)
    rows = _rows(tmp_path / "metrics.csv")
    assert rows[0] == FIELDS
    assert [r[0] for r in rows[1:]] == ["1", "2"]
    parsed = read_metrics(tmp_path)
    for got, want in zip(parsed, result.history):
        assert got == pytest.approx(want)


def test_resume_continues_the_file_without_duplicates(data, tmp_path):
    fit(TinyNoBN(), *data, epochs=1, workdir=str(tmp_path), **COMMON)
    # A process killed after the checkpoint of epoch 2 but with a stale extra row: the
    # resumed run rewrites the file from the restored history.
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("2,9,9,9,9,9,9,9\n")
    result = fit(TinyNoBN(), *data, epochs=3, workdir=str(tmp_path), **COMMON)
    parsed = read_metrics(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in parsed] == [1, 2, 3]
    assert parsed[1]["train_loss"] == pytest.approx(result.history[1]["train_loss"])


def test_log_dir_separate_from_workdir_and_false_disables(data, tmp_path):
    fit(TinyNoBN(), *data, epochs=1, workdir=str(tmp_path / "w"), log_dir=str(tmp_path / "l"),
        **COMMON)
    assert (tmp_path / "l" / "metrics.csv").exists()
    assert not (tmp_path / "w" / "metrics.csv").exists()
    fit(TinyNoBN(), *data, epochs=1, workdir=str(tmp_path / "x"), log_dir=False, **COMMON)
    assert not (tmp_path / "x" / "metrics.csv").exists()
    fit(TinyNoBN(), *data, epochs=1, log_dir=str(tmp_path / "nockpt"), **COMMON)
    assert len(read_metrics(tmp_path / "nockpt")) == 1


def _read_events(path):
    """Every ``Event`` of a TFRecord event file (length, length CRC, payload, payload CRC)."""
    from tensorboardX.proto.event_pb2 import Event
    with open(path, "rb") as f:
        raw = f.read()
    events = []
    pos = 0
    while pos < len(raw):
        (length,) = struct.unpack("<Q", raw[pos:pos + 8])
        payload = raw[pos + 12:pos + 12 + length]
        assert len(payload) == length, "truncated event record"
        events.append(Event.FromString(payload))
        pos += 12 + length + 4
    return events


def test_tensorboard_event_files_hold_the_scalars(data, tmp_path):
    pytest.importorskip("tensorboardX")
    result = fit(TinyNoBN(), *data, epochs=2, log_dir=str(tmp_path), **COMMON)
    (path,) = glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
    scalars = {}
    for event in _read_events(path):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    got = scalars["test/accuracy"]
    assert [step for step, _ in got] == [1, 2]
    want = [h["test_accuracy"] for h in result.history]
    np.testing.assert_allclose([v for _, v in got], want, rtol=1e-6)


def test_tensorboard_event_file_written(data, tmp_path):
    pytest.importorskip("tensorboardX")
    fit(TinyNoBN(), *data, epochs=1, log_dir=str(tmp_path), **COMMON)
    files = glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
    assert len(files) == 1 and os.path.getsize(files[0]) > 0


def test_without_tensorboardx_one_info_log_and_csv_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_logs, "_warned_no_tensorboard", False)
    monkeypatch.setitem(__import__("sys").modules, "tensorboardX", None)  # import fails
    caplog.set_level(logging.INFO, logger="cnnjax.train")
    for d in ("a", "b"):
        log = MetricsLog(tmp_path / d)
        log.append({"epoch": 1, "train_loss": 0.5})
        log.close()
    infos = [r for r in caplog.records if "tensorboardX" in r.getMessage()]
    assert len(infos) == 1 and infos[0].levelno == logging.INFO
    assert not glob.glob(str(tmp_path / "a" / "events*"))
    with pytest.raises(ImportError, match="tensorboardX"):
        MetricsLog(tmp_path / "c", tensorboard=True)


def test_progress_lines_when_not_a_terminal(data, capsys):
    fit(TinyNoBN(), *data, epochs=2, **{**COMMON, "progress": "auto"})  # stdout is captured
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 · train loss ") and " · test loss " in lines[0]
    assert lines[1].endswith("ETA 0s")


def test_bad_progress_value(data):
    with pytest.raises(ValueError, match=r"^fit: progress must be .*got 'loud'\.$"):
        fit(TinyNoBN(), *data, epochs=1, **{**COMMON, "progress": "loud"})


def test_restart_starts_the_logs_over(data, tmp_path):
    fit(TinyNoBN(), *data, epochs=2, workdir=str(tmp_path), **COMMON)
    fit(TinyNoBN(), *data, epochs=1, workdir=str(tmp_path), restart=True, **COMMON)
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1]
    assert len(glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))) <= 1
