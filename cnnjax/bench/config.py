"""What one benchmark run measures (the parsed command line) and where it logs progress."""
from __future__ import annotations

import dataclasses
import sys
from typing import Any


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One 2-D conv layer of the suite: input ``[N, size, size, c_in]``, square kernel,
    ``groups`` feature groups (``groups == c_in``: depthwise)."""

    name: str
    size: int
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.k) // self.stride + 1

    def flops(self, n: int) -> float:
        return (2.0 * n * self.out_size() ** 2 * self.c_out * self.k * self.k * self.c_in
                / self.groups)


SUITES = ("conv", "pool", "train", "memory", "fft")


@dataclasses.dataclass
class Config:
    """Resolved options of one benchmark run."""

    suites: tuple[str, ...]
    batch: int
    repeats: int
    quick: bool
    layers: tuple[ConvLayer, ...]
    models: tuple[str, ...]
    fft_kernels: tuple[int, ...]
    torch: Any
    verbose: bool
    profile: bool = False
    conv_batches: tuple[int, ...] = ()

    def conv_batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes of the conv suite: ``conv_batches``, else ``(batch,)``."""
        return self.conv_batches or (self.batch,)

    def log(self, message: str) -> None:
        """One line per finished row to stderr (unless ``--quiet``); the tables to stdout."""
        if self.verbose:
            sys.stderr.write(f"[bench] {message}\n")
            sys.stderr.flush()
