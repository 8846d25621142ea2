"""Checkpoints: damaged ones are skipped with a warning, none intact is one clear error, and
killing a run while it writes a checkpoint never leaves a run that cannot resume."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from cnnjax.train import Checkpointer, fit
from cnnjax.train._checkpoint import check_files, file_record
from tests.train.tiny_models import TinyBN, digits_subset, flat_state

COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False, schedule="cosine")
WORKER = os.path.join(os.path.dirname(__file__), "ckpt_worker.py")


@pytest.fixture(scope="module")
def data():
    return digits_subset()


@pytest.fixture(scope="module")
def full(data):
    """The uninterrupted 3-epoch run."""
    return fit(TinyBN(), *data, epochs=3, **COMMON)


def strip_seconds(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def assert_same_run(a, b):
    assert strip_seconds(a.history) == strip_seconds(b.history)
    fa, fb = flat_state(a.state), flat_state(b.state)
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    assert int(a.state.step) == int(b.state.step)


def _damage_state(step_dir):
    for root, _, files in os.walk(os.path.join(step_dir, "state")):
        for f in files:
            if os.path.basename(root) == "d":  # the array data chunks
                with open(os.path.join(root, f), "r+b") as fh:
                    fh.write(b"\xff" * 64)


def _garbage_meta(step_dir):
    with open(os.path.join(step_dir, "meta", "metadata"), "w") as fh:
        fh.write("{not json")


def _changed_byte(step_dir):
    # One byte of the JSON item: still valid JSON, only the file record sees it.
    path = os.path.join(step_dir, "meta", "metadata")
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace('"epochs": 3', '"epochs": 4'))


def _removed_file(step_dir):
    os.remove(os.path.join(step_dir, "state", "manifest.ocdbt"))


def _unrecorded_garbage_meta(step_dir):
    # No file record (a run killed right after orbax's rename): orbax's read must fail.
    os.remove(os.path.join(step_dir, "cnnjax_files.json"))
    _garbage_meta(step_dir)


def _truncated_history(step_dir):
    path = os.path.join(step_dir, "meta", "metadata")
    with open(path) as fh:
        meta = json.load(fh)
    meta["history"] = meta["history"][:1]
    with open(path, "w") as fh:
        json.dump(meta, fh)


class Stop(Exception):
    pass


def _stopped_after_two(data, workdir):
    """The 3-epoch run of ``full``, interrupted after epoch 2's checkpoint."""
    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(TinyBN(), *data, epochs=3, workdir=workdir, on_epoch_end=stop_after_two, **COMMON)


@pytest.mark.parametrize("damage", [_damage_state, _garbage_meta, _changed_byte,
                                    _truncated_history, _removed_file,
                                    _unrecorded_garbage_meta])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(data, full, tmp_path, damage):
    # A corrupt newest checkpoint used to end every resume with a raw TensorStore traceback
    # (or, for garbage metadata, "does not match this model"), though epoch 1 was intact.
    run = dict(COMMON, epochs=3)
    _stopped_after_two(data, tmp_path)
    damage(str(tmp_path / "2"))
    seen = []
    with pytest.warns(RuntimeWarning, match=r"^fit: the checkpoint of epoch 2 in .* is damaged "
                                            r"\(.*\); resuming from epoch 1 and deleting the "
                                            r"damaged one\(s\)\.$"):
        resumed = fit(TinyBN(), *data, workdir=tmp_path,
                      on_epoch_end=lambda e: seen.append(e["epoch"]), **run)
    assert seen == [2, 3]  # epoch 2 recomputed, bit for bit
    assert_same_run(resumed, full)
    ckpt = Checkpointer(tmp_path)
    assert ckpt.epochs() == [2, 3]
    ckpt.close()


def test_no_intact_checkpoint_is_one_line_naming_what_to_delete(data, tmp_path):
    fit(TinyBN(), *data, epochs=2, workdir=tmp_path, **COMMON)
    _damage_state(str(tmp_path / "2"))
    _garbage_meta(str(tmp_path / "1"))
    with pytest.raises(ValueError) as info:
        fit(TinyBN(), *data, epochs=2, workdir=tmp_path, **COMMON)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"fit: no intact checkpoint in {tmp_path} (")
    assert "epoch 2: ValueError: state/" in message
    assert "epoch 1: ValueError: meta/metadata has " in message
    assert message.endswith(f"); delete {tmp_path / '2'} and {tmp_path / '1'}, or start over "
                            "with restart=True (cnnjax train --restart).")
    # Nothing was deleted behind the user's back; restart=True starts over.
    assert sorted(n for n in os.listdir(tmp_path) if n.isdigit()) == ["1", "2"]
    again = fit(TinyBN(), *data, epochs=1, workdir=tmp_path, restart=True, **COMMON)
    assert [h["epoch"] for h in again.history] == [1]


def test_checkpoint_without_file_record_restores(data, full, tmp_path):
    # Killed between orbax's atomic rename and the file record: the checkpoint is complete.
    _stopped_after_two(data, tmp_path)
    os.remove(tmp_path / "2" / "cnnjax_files.json")
    seen = []
    resumed = fit(TinyBN(), *data, epochs=3, workdir=tmp_path,
                  on_epoch_end=lambda e: seen.append(e["epoch"]), **COMMON)
    assert seen == [3]
    assert_same_run(resumed, full)


def test_file_record_sees_every_byte(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(bytes(range(256)) * 9)
    (tmp_path / "y").write_bytes(b"abc")
    record = file_record(str(tmp_path))
    assert record == {"a/x.bin": [2304, zlib.crc32(bytes(range(256)) * 9)],
                      "y": [3, zlib.crc32(b"abc")]}
    assert check_files(str(tmp_path)) is False  # nothing recorded yet
    (tmp_path / "cnnjax_files.json").write_text(json.dumps(record))
    assert check_files(str(tmp_path)) is True
    data = bytearray((tmp_path / "a" / "x.bin").read_bytes())
    data[1000] ^= 1
    (tmp_path / "a" / "x.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"a/x.bin has changed \(CRC-32 mismatch\)"):
        check_files(str(tmp_path))
    (tmp_path / "y").write_bytes(b"ab")
    (tmp_path / "a" / "x.bin").unlink()
    with pytest.raises(ValueError, match="a/x.bin is missing"):
        check_files(str(tmp_path))


# ------------------------------------------------------------------ kill -9 while writing


def _entries(workdir):
    try:
        return {n: os.stat(os.path.join(workdir, n)).st_ino for n in os.listdir(workdir)}
    except FileNotFoundError:
        return {}


def _kill_while_writing(proc, workdir, rng, mode, timeout=120):
    """SIGKILLs ``proc`` once it writes a checkpoint of its own: right after a temporary
    checkpoint directory appears (``'write'``), or at a random moment after it finished one
    (``'random'``). Returns whether a checkpoint was being written at the kill, or ``None``
    if the run finished first."""
    before = _entries(workdir)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        fresh = [n for n, ino in _entries(workdir).items() if before.get(n) != ino]
        if mode == "write" and any("tmp" in n for n in fresh):
            time.sleep(rng.uniform(0, 0.02))
            break
        if mode == "random" and any(n.isdigit() for n in fresh):
            time.sleep(rng.uniform(0, 0.3))
            break
        time.sleep(0.001)
    if proc.poll() is not None:
        return None
    writing = any("tmp" in n for n in _entries(workdir))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return writing


def _kill_loop(tmp_path, kills, epochs=12, while_writing=0, attempts=None):
    """Kills the worker ``kills`` times, and more (up to ``attempts``) until at least
    ``while_writing`` kills landed inside a checkpoint write: whether one does depends on
    timing, so a loaded machine needs more tries; then lets it finish and compares with an
    uninterrupted run."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    workdir, out = str(tmp_path / "w"), str(tmp_path / "out.json")
    cmd = [sys.executable, WORKER, workdir, str(epochs), out]
    reference = subprocess.Popen([sys.executable, WORKER, "", str(epochs),
                                  str(tmp_path / "ref.json")], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rng = random.Random(0)
    writing = []
    attempts = attempts or kills
    while len(writing) < attempts and (len(writing) < kills or sum(writing) < while_writing):
        with open(tmp_path / f"attempt{len(writing)}.log", "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
            mode = ("write", "random")[len(writing) % 2]
            was_writing = _kill_while_writing(proc, workdir, rng, mode)
        if was_writing is None:
            break
        writing.append(was_writing)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    with open(out) as f, open(tmp_path / "ref.json") as g:
        got, want = json.load(f), json.load(g)
    assert got == want  # the same history, to the last bit, and the same step
    return writing


def test_kill_while_writing_a_checkpoint_still_resumes(tmp_path):
    # A SIGKILL in the middle of a checkpoint write (its temporary directory exists).
    writing = _kill_loop(tmp_path, kills=1, while_writing=1, attempts=5)
    assert writing[-1] is True


@pytest.mark.slow
def test_many_kills_while_writing_checkpoints_still_resume(tmp_path):
    writing = _kill_loop(tmp_path, kills=10, epochs=40, while_writing=4, attempts=20)
    assert len(writing) >= 10 and sum(writing) >= 4
