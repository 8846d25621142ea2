"""``cnnjax bench``: the CPU speed benchmark, every contender side by side.

One run measures, on the current machine and in one process:

* ``matmul``: the practical limit, a square float32 matmul (GFLOP/s);
* ``conv``: the conv layers of LeNet5, MnistNet, a CIFAR VGG-11 and ResNet-20 at ``--batch``,
  forward and forward+backward (gradients w.r.t. ``x`` and ``w``), GFLOP/s for every
  ``cnnjax.conv`` impl (``'xla'``, ``'im2col'``, ``'fft'``, ``'auto'``), for
  ``flax.linen.Conv`` and for ``torch.nn.functional.conv2d`` (when PyTorch is installed);
* ``pool``: every pooling op, forward and forward+backward, relative to ``max_pool`` on
  ``[batch, 24, 24, 64]`` with 2x2 windows;
* ``train``: one Adam training step of MnistNet and LeNet5 (cnnjax model, the cnnjax model
  with ``impl='xla'``, a plain Flax model of the same architecture, the same network in
  PyTorch), ms/step; and eval of a BN model (ResNet-20) with the batch norms folded into the
  convolutions vs unfolded;
* ``memory``: XLA's compiled memory statistics of the training steps;
* ``fft``: 64x64 inputs with kernels 3, 7, 11, 15: ``'xla'`` vs ``'im2col'`` vs ``'fft'`` vs
  ``'auto'`` (and which one ``'auto'`` picks).

Timing protocol: every contender of one row is compiled and warmed up first, then the
contenders are timed in interleaved rounds (one call each per round, ``--repeats`` rounds) and
the median is reported, so background load hits all of them alike. FLOPs of a convolution are
``2 * N * prod(out) * C_out * prod(k) * C_in / groups`` forward and three times that forward
+ backward (the input and the weight gradients are each one more such product).

PyTorch is an optional peer, imported lazily: without it the PyTorch columns are skipped
with a note. It runs with ``torch.set_num_threads(<cores available to this process>)``.

Allocator: XLA:CPU allocates a call's temporaries afresh on every call, and glibc serves
blocks of 32 MB and more with new ``mmap`` pages, so each training step page-faults its
large temporaries back in (measured ~1-4 GB/s instead of ~25 GB/s for a copy). Settings such
as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967296`` keep them in the heap; measured
in separate processes they took the LeNet5 step from 107-111 to 71-94 ms but left MnistNet
and Flax within their noise, so they are not applied. The header of the output says when
such settings are active.

Example::

    cnnjax bench                           # everything, batch 128 (a few minutes)
    cnnjax bench --quick                   # a small configuration (well under a minute)
    cnnjax bench --suite conv,fft --repeats 7 --json bench.json
"""
from cnnjax.bench.cli import benchmark, configure_parser, main, run
from cnnjax.bench.config import SUITES, Config
from cnnjax.bench.timing import measure

__all__ = ["SUITES", "Config", "benchmark", "configure_parser", "main", "measure", "run"]
