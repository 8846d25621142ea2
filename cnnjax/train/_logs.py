"""Per-epoch training logs: ``metrics.csv``, TensorBoard event files (optional), progress.

``fit(..., log_dir=DIR)`` (by default its ``workdir``) writes one row per finished epoch to
``DIR/metrics.csv`` — every field of the history entry, the header once — flushed and
fsynced row by row, so a killed run's log holds every epoch it finished. When
``tensorboardX`` is installed (``pip install 'cnnjax[tensorboard]'``; it needs no
TensorFlow) the same scalars also go to TensorBoard event files in ``DIR`` (tags
``train/loss``, ``train/accuracy``, ``test/loss``, ``test/accuracy``, ``time/seconds``,
``time/eval_seconds``, ``learning_rate``, step = epoch).

Open them with::

    tensorboard --logdir DIR          # pip install tensorboard (the viewer)
    python -c "import pandas; print(pandas.read_csv('DIR/metrics.csv'))"

A resumed run rewrites ``metrics.csv`` from the restored history before appending, so the
file never repeats or misses an epoch, whatever the previous process managed to write.
TensorBoard files are append-only: a resumed run starts a new event file, and TensorBoard
shows a rewritten epoch's newest value.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from collections.abc import Sequence

import jax

_log = logging.getLogger("cnnjax.train")


class _StdoutHandler(logging.StreamHandler):
    """A handler writing to the *current* ``sys.stdout`` (redirections made later apply)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns one; the property wins
        pass


# fit's per-epoch lines when stdout is not a terminal: a logger of their own, so a program can
# silence or redirect them with the logging configuration (``propagate`` off: not twice).
_epoch_log = logging.getLogger("cnnjax.train.progress")
_epoch_log.addHandler(_StdoutHandler())
_epoch_log.setLevel(logging.INFO)
_epoch_log.propagate = False

CSV_FILE = "metrics.csv"

# The history fields in their order in the file; fields a caller adds come after them.
FIELDS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
          "eval_seconds", "learning_rate")

_TAGS = {"train_loss": "train/loss", "train_accuracy": "train/accuracy",
         "test_loss": "test/loss", "test_accuracy": "test/accuracy",
         "seconds": "time/seconds", "eval_seconds": "time/eval_seconds",
         "learning_rate": "learning_rate"}

_warned_no_tensorboard = False


def _writer_class():
    """tensorboardX's ``SummaryWriter``, or ``None`` when it is not installed (logged once)."""
    global _warned_no_tensorboard
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        if not _warned_no_tensorboard:
            _warned_no_tensorboard = True
            _log.info("tensorboardX is not installed: writing metrics.csv only "
                      "(pip install 'cnnjax[tensorboard]' for TensorBoard event files)")
        return None
    return SummaryWriter


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


class MetricsLog:
    """Appends each epoch's history entry to ``workdir/metrics.csv`` (and TensorBoard).

    Only process 0 writes; on the others every method does nothing.

    Args:
      workdir: the directory (created if needed).
      history: the entries already done (a resumed run's restored history); the CSV is
        rewritten to hold exactly these before new rows are appended.
      tensorboard: ``'auto'`` (event files when tensorboardX is importable), ``True``
        (required: ``ImportError`` without it) or ``False``.
      restart: delete the directory's TensorBoard event files first (a run started over).

    Example:
      >>> log = MetricsLog("runs/a")  # doctest: +SKIP
      >>> log.append({"epoch": 1, "train_loss": 0.5, ...})  # doctest: +SKIP
      >>> log.close()  # doctest: +SKIP
    """

    def __init__(self, workdir: str | os.PathLike, history: Sequence[dict] = (), *,
                 tensorboard: bool | str = "auto", restart: bool = False):
        self.directory = os.path.abspath(os.fspath(workdir))
        self.path = os.path.join(self.directory, CSV_FILE)
        self._active = jax.process_index() == 0
        self._fields: list[str] | None = None
        self._writer = None
        if not self._active:
            return
        os.makedirs(self.directory, exist_ok=True)
        if restart:  # a run started over: the old run's event files would mix with its own
            for name in os.listdir(self.directory):
                if name.startswith("events.out.tfevents."):
                    os.remove(os.path.join(self.directory, name))
        self._rewrite(list(history))
        if tensorboard:
            cls = _writer_class()
            if cls is None and tensorboard is True:
                raise ImportError("MetricsLog: tensorboard=True needs tensorboardX "
                                  "(pip install 'cnnjax[tensorboard]').")
            if cls is not None:
                self._writer = cls(logdir=self.directory)

    def _rewrite(self, history: list[dict]) -> None:
        """Writes the header and ``history`` atomically (temporary file, then rename)."""
        if not history:
            if os.path.exists(self.path):
                os.remove(self.path)
            return
        self._fields = self._columns(history[0])
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self._fields)
            for entry in history:
                writer.writerow([_cell(entry.get(k)) for k in self._fields])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @staticmethod
    def _columns(entry: dict) -> list[str]:
        return [k for k in FIELDS if k in entry] + [k for k in entry if k not in FIELDS]

    def append(self, entry: dict) -> None:
        """Writes one epoch (a history entry) as a CSV row and as TensorBoard scalars."""
        if not self._active:
            return
        header = self._fields is None
        if header:
            self._fields = self._columns(entry)
        buf = io.StringIO()
        writer = csv.writer(buf)
        if header:
            writer.writerow(self._fields)
        writer.writerow([_cell(entry.get(k)) for k in self._fields])
        with open(self.path, "w" if header else "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        if self._writer is not None:
            step = int(entry["epoch"])
            for key, tag in _TAGS.items():
                value = entry.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(tag, float(value), step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Progress:
    """Per-epoch progress: a rich bar on a terminal, one line per epoch elsewhere, or nothing.

    ``mode``: ``'bar'``, ``'lines'`` (``epoch 2/5 · train loss … acc … · test acc … · 3.1s ·
    ETA 6s`` on stdout: logs and CI keep one readable line per epoch) or ``None``.
    """

    def __init__(self, mode: str | None, epochs: int):
        self._bar = None
        self._mode = mode
        self._epochs = epochs
        self._times: list[float] = []
        if mode == "bar":
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
            self._bar.start()

    def task(self, description: str, total: int):
        if self._bar is None:
            return None
        return self._bar.add_task(description, total=total)

    def advance(self, task):
        if task is not None:
            self._bar.update(task, advance=1)

    def epoch_done(self, entry: dict) -> None:
        if self._mode != "lines":
            return
        seconds = entry["seconds"] + entry["eval_seconds"]
        self._times.append(seconds)
        # The first epoch of a process includes compilation: later ones predict better.
        typical = self._times[1:] or self._times
        eta = sum(typical) / len(typical) * (self._epochs - entry["epoch"])
        test = ("" if entry["test_accuracy"] is None else
                f" · test loss {entry['test_loss']:.4f} acc {entry['test_accuracy']:.4f}")
        _epoch_log.info("epoch %d/%d · train loss %.4f acc %.4f%s · %.1fs · ETA %.0fs",
                        entry["epoch"], self._epochs, entry["train_loss"],
                        entry["train_accuracy"], test, seconds, eta)

    def close(self):
        if self._bar is not None:
            self._bar.stop()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``metrics.csv`` as dicts (numbers parsed, empty cells ``None``).

    Example:
      >>> read_metrics("runs/a/metrics.csv")[-1]["test_accuracy"]  # doctest: +SKIP
      0.93
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CSV_FILE)
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: _parse(v) for k, v in row.items()})
    return rows


def _parse(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
