"""Index pass over variable-length (RDW / BDW) records (facade).

Imports the compiled kernel ``_records``; ``IKOU_PURE_PYTHON=1`` selects the pure-Python twin
``_records_py`` instead (:func:`ikou.kernels._loader.load_kernel`).

    from ikou.kernels import RecordFormat, scan_records, find_resync
    fmt = RecordFormat(blocked=False, little_endian=False, includes_header=True, max_length=300)
    res = scan_records(buf, 0, len(buf), fmt)   # res.rdw, res.start, res.length (int64 arrays),
                                                # res.stop, res.reason (Stop), res.found
    offset, status = find_resync(buf, res.stop + 1, len(buf), fmt, k=3)
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ._loader import load_kernel
from ._records_common import (
    RESYNC_FOUND,
    RESYNC_NEED_MORE,
    RESYNC_NONE,
    RecordFormat,
    ScanResult,
    Stop,
    describe_stop,
)
from ._records_common import scan_records as _drive

if TYPE_CHECKING:  # type-checked against the compiled module's stub (_records.pyi)
    from typing_extensions import Buffer  # (collections.abc.Buffer from Python 3.12)

    from . import _records as _impl

    KERNEL_IMPL: str
else:
    _impl, KERNEL_IMPL = load_kernel("_records")

__all__ = ["KERNEL_IMPL", "RESYNC_FOUND", "RESYNC_NEED_MORE", "RESYNC_NONE", "RecordFormat",
           "ScanResult", "Stop", "describe_stop", "find_resync", "scan_records"]


def _view(buf: Buffer) -> npt.NDArray[np.uint8] | memoryview:
    if isinstance(buf, np.ndarray):
        return buf if buf.dtype == np.uint8 and buf.flags.c_contiguous else \
            np.ascontiguousarray(buf, dtype=np.uint8)
    return memoryview(buf).cast("B")


def scan_records(buf: Buffer, start: int = 0, end: int | None = None,
                 fmt: RecordFormat | None = None, at_eof: bool = True,
                 limit: int = -1, impl: ModuleType | None = None) -> ScanResult:
    """Scan the records of ``buf[start:end]`` (see :class:`ScanResult`).

    ``at_eof``: ``end`` is the end of the file (a unit crossing it is bad), else the scan stops
    with ``Stop.NEED_MORE`` at the unit that needs more data. ``limit``: stop there (reason
    ``END``) on any record boundary, also inside a VB block. ``impl``: a kernel module (tests).
    """
    mod = impl or _impl
    fmt = fmt if fmt is not None else RecordFormat()
    return _drive(mod.scan_chunk, _view(buf), int(start), end, fmt, at_eof, int(limit))


def find_resync(buf: Buffer, start: int, end: int | None, fmt: RecordFormat, k: int = 3,
                at_eof: bool = True, impl: ModuleType | None = None) -> tuple[int, int]:
    """``(offset, status)``: the first offset ``>= start`` where ``k`` units in a row chain
    (``RESYNC_FOUND``), the candidate that needs data past ``end`` (``RESYNC_NEED_MORE``), or
    ``end`` when nothing chains (``RESYNC_NONE``, at_eof only)."""
    mod = impl or _impl
    view = _view(buf)
    end = len(view) if end is None else int(end)
    if not 0 <= start <= end <= len(view):
        raise ValueError(f"resync range {start}..{end} outside the buffer of {len(view)} bytes")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    off, status = mod.find_resync(view, int(start), end, fmt.params(), int(k), int(at_eof))
    return int(off), int(status)
