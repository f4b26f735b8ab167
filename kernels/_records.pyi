"""Type stub of the compiled index pass ``_records.pyx`` (twin: ``_records_py``, the same
signatures; ``tests/kernels/test_stubs.py`` keeps them equal). ``params`` is
``RecordFormat.params()``."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["CYTHON_MODULE", "find_resync", "scan_chunk"]

CYTHON_MODULE: int

_Bytes: TypeAlias = npt.NDArray[np.uint8] | memoryview
_Int64s: TypeAlias = npt.NDArray[np.int64]

def scan_chunk(
    buf: _Bytes,
    start: int,
    end: int,
    params: tuple[int, ...],
    at_eof: int,
    limit: int,
    block_end: int,
    out_rdw: _Int64s,
    out_len: _Int64s,
) -> tuple[int, int, int, int, int]:
    """``(records written, stop offset, reason (a ``Stop`` value), found, block end)``."""

def find_resync(
    buf: _Bytes, start: int, end: int, params: tuple[int, ...], k: int, at_eof: int
) -> tuple[int, int]:
    """``(offset, status)``, status ``RESYNC_FOUND`` / ``RESYNC_NEED_MORE`` / ``RESYNC_NONE``."""
