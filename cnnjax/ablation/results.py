"""The results file of an ablation study: one JSON line per finished run, written atomically.

``out_dir/results.jsonl`` is the study's source of truth. Every finished run is appended as one
JSON object (one line); the file is always rewritten whole through a temporary file and
:func:`os.replace`, under an advisory lock, so it holds complete records only, whatever moment
the process is killed at, and two studies writing it cannot lose each other's records.

A run's identity is ``(pool, model, dataset, seed, hyperparameters)`` (:func:`run_key`); its
file-system name is :func:`run_id`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"

#: The fields every record must have to be identified and summarised.
REQUIRED_FIELDS = ("pool", "model", "dataset", "seed", "hyperparameters", "params", "history",
                   "test_accuracy", "test_loss", "seconds_per_epoch")


def results_path(out_dir: str | os.PathLike) -> Path:
    """``out_dir/results.jsonl``."""
    return Path(out_dir) / RESULTS_FILE


def load_results(path: str | os.PathLike) -> list[dict]:
    """Reads the finished runs recorded in a results file.

    Args:
        path: ``results.jsonl`` or the ablation's output directory holding it.

    Returns:
        One dict per finished run, in the order they finished; ``[]`` if there is no file.
        An incomplete last line (a write cut short by an external appender) is ignored;
        any other line that is not a JSON object, or that lacks one of
        :data:`REQUIRED_FIELDS`, raises ``ValueError`` naming the line, because a corrupt
        results file must never be silently summarised.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # no trailing newline: the last write never completed
                break
            raise ValueError(
                f"load_results: line {i + 1} of {path} is not valid JSON; the results file "
                f"is corrupt (delete that line to re-run the run it recorded).") from None
        if not isinstance(record, dict):
            raise ValueError(f"load_results: line {i + 1} of {path} must be a JSON object, "
                             f"got {type(record).__name__}.")
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise ValueError(f"load_results: line {i + 1} of {path} lacks the field(s) "
                             f"{', '.join(map(repr, missing))} every run record has; the results "
                             f"file is corrupt (delete that line to re-run the run it recorded).")
        records.append(record)
    return records


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Appends one record by rewriting the whole file atomically.

    Rewriting (temp file in the same directory, fsync, ``os.replace``) instead of appending
    in place means a reader, or a re-run after ``kill -9``, sees either the old file or the
    new one, never half a line. The file is small (one line per run), so this costs nothing.
    """
    with _locked(path):
        _rewrite_with(path, record)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock beside ``path``, so two studies writing the same results
    file cannot lose each other's records (read-modify-write); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(path.with_name("." + path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _rewrite_with(path: Path, record: Mapping[str, Any]) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        # Drop an incomplete last line left by some other writer (load_results ignores it).
        old = old[: old.rfind("\n") + 1]
    _atomic_write(path, old + json.dumps(record, sort_keys=True, allow_nan=True) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same directory and
    ``os.replace`` (atomic on POSIX and Windows): readers never see a partial file."""
    # A plain open (not mkstemp) so the file gets the usual umask permissions, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def _canonical(hyperparameters: Mapping[str, Any]) -> str:
    return json.dumps(dict(hyperparameters), sort_keys=True, separators=(",", ":"))


def hyperparameter_hash(hyperparameters: Mapping[str, Any]) -> str:
    """Eight hex digits identifying a set of hyperparameters (stable across runs)."""
    return hashlib.sha1(_canonical(hyperparameters).encode()).hexdigest()[:8]


def run_key(record: Mapping[str, Any]) -> tuple:
    """The identity of a run: ``(pool, model, dataset, seed, hyperparameters)``."""
    return (record["pool"], record["model"], record["dataset"], int(record["seed"]),
            _canonical(record["hyperparameters"]))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-")


def run_id(pool: str, model: str, dataset: str, seed: int,
           hyperparameters: Mapping[str, Any]) -> str:
    """A file-system-safe name for one run, e.g. ``lenet5_digits_lp-p-3_s0_1a2b3c4d``."""
    return (f"{_slug(model)}_{_slug(dataset)}_{_slug(pool)}_s{int(seed)}_"
            f"{hyperparameter_hash(hyperparameters)}")
