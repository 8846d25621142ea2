"""Live progress of an ablation study: the current cell, its epoch, and when the study ends.

A study is a list of *units*, each one training program: a grid cell's pending seeds trained
together (vectorised), or one seed of a cell. The estimate of the time left counts the first
epoch of each unit apart from the others, because it includes compiling the steps (or loading
them from the compilation cache), which later epochs do not.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Unit:
    """One training program of the study.

    Attributes:
      cell: the 1-based index of its grid cell (pool × model × dataset).
      cells: the number of grid cells.
      model, dataset, pool: the cell.
      seeds: the seeds trained by this program (several when vectorised).
      epochs: the epochs to reach.
    """
    cell: int
    cells: int
    model: str
    dataset: str
    pool: str
    seeds: tuple[int, ...]
    epochs: int


def format_duration(seconds: float | None) -> str:
    """``'3m10s'``, ``'1h02m'``, ``'45s'``; ``'?'`` when unknown.

    Example:
      >>> format_duration(190.4)
      '3m10s'
    """
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def estimate_remaining(first: Sequence[float], steady: Sequence[float],
                       remaining: Sequence[tuple[bool, int]]) -> float | None:
    """Seconds left: measured epoch times × the epochs still to train.

    Args:
      first: measured times of first epochs (one per unit that has trained one).
      steady: measured times of the other epochs.
      remaining: per unfinished unit, ``(needs_first, epochs)``: whether its next epoch is
        its first one in this process (it compiles) and how many epochs it still trains.

    Returns:
      ``Σ [needs_first]·mean(first) + (epochs − [needs_first])·mean(steady)``; where no steady
      epoch has been measured, ``mean(first)`` stands for it (an overestimate); ``None``
      before any epoch was measured, or ``0.0`` when nothing remains.
    """
    if not any(e for _, e in remaining):
        return 0.0
    if not first and not steady:
        return None
    t_first = sum(first) / len(first) if first else sum(steady) / len(steady)
    t_steady = sum(steady) / len(steady) if steady else t_first
    total = 0.0
    for needs_first, epochs in remaining:
        if epochs <= 0:
            continue
        total += (t_first + (epochs - 1) * t_steady) if needs_first else epochs * t_steady
    return total


def format_line(unit: Unit, epoch: int, accuracies: Sequence[float | None] | None,
                eta: float | None) -> str:
    """The per-epoch line, e.g.
    ``[cell 3/25] lenet5 digits pool=avg seeds=0,1,2 epoch 2/5 · test acc 0.97/0.96/0.97 ·
    ETA 3m10s``."""
    parts = [f"[cell {unit.cell}/{unit.cells}] {unit.model} {unit.dataset} pool={unit.pool} "
             f"seeds={','.join(str(s) for s in unit.seeds)} epoch {epoch}/{unit.epochs}"]
    if accuracies and all(a is not None for a in accuracies):
        parts.append("test acc " + "/".join(f"{a:.2f}" for a in accuracies))
    parts.append(f"ETA {format_duration(eta)}")
    return " · ".join(parts)


class StudyProgress:
    """Shows a study's progress: a live line in a terminal, else one line per epoch.

    The runner calls :meth:`plan` with every unit, then :meth:`start` and :meth:`epoch` as
    it trains, and :meth:`close` at the end. Epoch times are measured here, between calls.

    Args:
      stream: where to write (default ``sys.stderr``).
      live: a rich live line (``True``), plain lines (``False``), or ``None``: live when
        ``stream`` is a terminal.
    """

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None):
        self._stream = sys.stderr if stream is None else stream
        if live is None:
            live = bool(getattr(self._stream, "isatty", lambda: False)())
        self._live = None
        self._console = None
        if live:
            from rich.console import Console
            from rich.live import Live
            self._console = Console(file=self._stream)
            self._live = Live("", console=self._console, transient=True,
                              refresh_per_second=4)
            self._live.start()
        self._units: list[Unit] = []
        self._left: list[int] = []
        self._fresh: list[bool] = []
        self._first: list[float] = []
        self._steady: list[float] = []
        self._ticks: dict[int, float] = {}
        self._lock = threading.Lock()
        #: Units trained at once (the runner's ``workers``): the ETA divides by it.
        self.workers = 1

    def plan(self, units: Sequence[Unit], done_epochs: Sequence[int] | None = None) -> None:
        """The study's units, with the epochs each has already trained (checkpoints)."""
        self._units = list(units)
        done = [0] * len(units) if done_epochs is None else list(done_epochs)
        self._left = [u.epochs - d for u, d in zip(self._units, done)]
        self._fresh = [True] * len(self._units)

    def start(self, index: int, done_epochs: int = 0) -> None:
        """Unit ``index`` starts (``done_epochs`` restored from its checkpoint)."""
        with self._lock:
            self._left[index] = self._units[index].epochs - done_epochs
            self._ticks[index] = time.perf_counter()
            if self._live is not None:
                self._show(self._line(index, done_epochs + 1, None, running=True))

    def epoch(self, index: int, epoch: int, accuracies: Sequence[float | None] | None,
              seconds: float | None = None) -> str:
        """Unit ``index`` finished ``epoch``; returns (and shows) its line.

        ``seconds`` defaults to the time since :meth:`start` or the previous epoch of the
        same unit.
        """
        with self._lock:
            return self._epoch(index, epoch, accuracies, seconds)

    def _epoch(self, index, epoch, accuracies, seconds) -> str:
        now = time.perf_counter()
        seconds = now - self._ticks.get(index, now) if seconds is None else seconds
        self._ticks[index] = now
        (self._first if self._fresh[index] else self._steady).append(seconds)
        self._fresh[index] = False
        self._left[index] = max(0, self._units[index].epochs - epoch)
        line = self._line(index, epoch, accuracies)
        if self._live is not None:
            if epoch == self._units[index].epochs:
                # A finished unit's last line stays above the live one.
                self._console.print(line, markup=False, highlight=False)
            self._show(line if epoch < self._units[index].epochs else "")
        else:
            print(line, file=self._stream, flush=True)
        return line

    def eta(self) -> float | None:
        """Seconds the study still needs, by :func:`estimate_remaining` (epoch times measured
        while ``workers`` units trained at once, so the sum is divided by ``workers``)."""
        left = estimate_remaining(self._first, self._steady,
                                  list(zip(self._fresh, self._left)))
        units_left = sum(1 for n in self._left if n > 0)
        return None if left is None else left / max(1, min(self.workers, units_left))

    def _show(self, line: str) -> None:
        from rich.text import Text  # plain text: "[cell 3/25]" is not rich markup
        self._live.update(Text(line))

    def _line(self, index: int, epoch: int, accuracies, running: bool = False) -> str:
        line = format_line(self._units[index], epoch, accuracies, self.eta())
        return line.replace(f"epoch {epoch}/", f"epoch {epoch}…/") if running else line

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


__all__ = ["StudyProgress", "Unit", "estimate_remaining", "format_duration", "format_line"]
