"""Reader and writer for the IDX format of the original MNIST / Fashion-MNIST files.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number — two zero
bytes, a type code (``0x08`` = uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32,
``0x0D`` float32, ``0x0E`` float64) and the number of dimensions — then one big-endian
uint32 per dimension, then the data in C order, big-endian. MNIST images are
``idx3-ubyte`` (magic 2051, dims ``[N, 28, 28]``) and labels ``idx1-ubyte`` (magic 2049,
dims ``[N]``). Files may be gzip-compressed (``.gz``), as they are distributed.

Every inconsistency (wrong magic, unknown type, a file shorter *or* longer than its header
says, a broken gzip stream) raises :class:`CorruptDatasetError`: a damaged download must
never be used silently.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}


class CorruptDatasetError(ValueError):
    """A dataset file exists but its content is inconsistent (truncated, wrong format...)."""


def _read_bytes(path: str | os.PathLike) -> bytes:
    path = os.fspath(path)
    if path.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        # A truncated download ends the deflate stream early (EOFError); garbage gives
        # BadGzipFile / zlib.error. All mean "do not trust this file".
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise CorruptDatasetError(
                f"read_idx: {path} is not a complete gzip file ({e}); delete it and fetch "
                "it again.") from e
    with open(path, "rb") as f:
        return f.read()


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file (plain or ``.gz``) into a native-endian NumPy array.

    Args:
      path: file name; a name ending in ``.gz`` is decompressed.
      expected_ndim: if given, the number of dimensions the header must declare
        (3 for ``idx3`` image files, 1 for ``idx1`` label files).

    Returns:
      The array with the shape from the header, e.g. ``[N, 28, 28]`` uint8 for MNIST images.

    Raises:
      CorruptDatasetError: bad magic number, unknown type code, wrong number of
        dimensions, or a payload whose size differs from the header's.

    Example:
      >>> labels = read_idx("train-labels-idx1-ubyte.gz", expected_ndim=1)  # doctest: +SKIP
    """
    raw = _read_bytes(path)
    name = os.fspath(path)
    if len(raw) < 4:
        raise CorruptDatasetError(
            f"read_idx: {name} is {len(raw)} bytes long, shorter than the 4-byte IDX header.")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise CorruptDatasetError(
            f"read_idx: {name} has magic number 0x{raw[:4].hex()}, not an IDX file "
            "(expected 0x0000 followed by a type code 08/09/0B/0C/0D/0E and the rank).")
    dtype = _DTYPES[raw[2]]
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise CorruptDatasetError(
            f"read_idx: {name} declares {ndim} dimensions, expected {expected_ndim}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDatasetError(
            f"read_idx: {name} is truncated inside its header ({len(raw)} < {header} bytes).")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "trailing data"
        raise CorruptDatasetError(
            f"read_idx: {name} has {len(raw)} bytes but its header {shape} of {dtype.name} "
            f"needs exactly {expected} bytes ({problem}).")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; used to cache fetched data and in tests.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(f"write_idx: array dtype must be one of uint8, int8, int16, int32, "
                        f"float32, float64, got {array.dtype}.")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_DTYPES[code], copy=False).tobytes()
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
