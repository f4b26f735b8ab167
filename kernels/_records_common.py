"""Variable-length records (RDW / BDW): the format, the stop reasons and the scan's driver.

Shared by the compiled index pass ``_records`` and its pure-Python twin ``_records_py``; the
facade is :mod:`ikou.kernels.records`. Both kernels provide two functions with the same
behaviour:

``scan_chunk(buf, start, end, params, at_eof, limit, block_end, out_rdw, out_len)``
    scans descriptor words from ``start``, writing each record's RDW offset and payload length
    into the int64 arrays ``out_rdw`` / ``out_len`` until they are full; returns
    ``(n, stop, reason, found, block_end)``.
``find_resync(buf, start, end, params, k, at_eof)``
    the first offset ``>= start`` where ``k`` units (records for V, blocks for VB) in a row are
    plausible and chain exactly (fewer when they end exactly at the end of the data and
    ``at_eof``); returns ``(offset, status)``.

``params`` is :meth:`RecordFormat.params` (a tuple of ints).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

__all__ = ["RESYNC_FOUND", "RESYNC_NEED_MORE", "RESYNC_NONE", "RecordFormat", "ScanResult",
           "Stop", "describe_stop", "scan_records"]

HEADER = 4  # an RDW or a BDW is 4 bytes
#: the default largest block (BLKSIZE, its BDW included): the largest non-extended BDW
DEFAULT_BDW_MAX = 32760

RESYNC_FOUND = 0      # offset: where k units chain
RESYNC_NEED_MORE = 1  # offset: the candidate that needs more data to be decided
RESYNC_NONE = 2       # offset = end: nothing chains before the end of the data (at_eof)


class Stop(IntEnum):
    """Why a scan stopped (``ScanResult.reason``)."""

    END = 0             # at ``end`` (or ``limit``) exactly, on a record (VB: block) boundary
    NEED_MORE = 1       # a word or a unit crosses ``end`` and more data follows (not at_eof)
    FULL = 2            # the output arrays are full (internal: the driver scans on)
    TRUNCATED = 3       # fewer than 4 bytes left at the end of the data (at_eof)
    RDW_SHORT = 4       # payload length below the minimum (0 included)
    RDW_LONG = 5        # payload length above the maximum
    RDW_RESERVED = 6    # the two bytes beside the length are not zero
    RDW_PAST_END = 7    # the record runs past the end of the data (at_eof)
    RDW_PAST_BLOCK = 8  # the record runs past the end of its block (VB)
    BDW_SHORT = 9       # block shorter than one RDW and one byte
    BDW_LONG = 10       # block longer than the maximum block
    BDW_RESERVED = 11   # non-extended BDW whose two bytes beside the length are not zero
    BDW_PAST_END = 12   # the block (or its BDW) runs past the end of the data (at_eof)


@dataclass(frozen=True)
class RecordFormat:
    """How variable-length records are framed.

    ``blocked``: VB (blocks of records, each block behind a BDW) rather than V. An RDW is
    4 bytes: the length in two bytes, two reserved zero bytes (``little_endian``: the four
    bytes reversed, as Cobrix's ``00 00 LL LL``); ``includes_header``: the length counts the
    RDW's own 4 bytes (IBM), else only the payload. ``min_length`` / ``max_length`` bound the
    payload. A BDW is read the same way (``bdw_*``); a BDW whose first byte (big-endian
    order) has the high bit set is an extended BDW: a 31-bit length in all four bytes.
    ``bdw_max_length`` bounds a block, its BDW included.
    """

    blocked: bool = False
    little_endian: bool = False
    includes_header: bool = True
    min_length: int = 1
    max_length: int = 32752
    bdw_little_endian: bool = False
    bdw_includes_header: bool = True
    bdw_max_length: int = DEFAULT_BDW_MAX

    def __post_init__(self):
        if self.min_length < 0 or self.max_length < max(1, self.min_length):
            raise ValueError(f"bad payload bounds {self.min_length}..{self.max_length}")
        if self.max_length > 0xFFFF:
            raise ValueError(f"an RDW holds at most 65535, max_length {self.max_length}")
        if self.bdw_max_length < 2 * HEADER + 1:
            raise ValueError(f"bdw_max_length {self.bdw_max_length} holds no record")

    def params(self) -> tuple[int, ...]:
        return (int(self.blocked), int(self.little_endian), int(self.includes_header),
                self.min_length, self.max_length, int(self.bdw_little_endian),
                int(self.bdw_includes_header), self.bdw_max_length)

    @property
    def unit_max(self) -> int:
        """Largest unit (record with its RDW; VB: block with its BDW) in bytes."""
        return self.bdw_max_length if self.blocked else self.max_length + HEADER


class ScanResult(NamedTuple):
    """What one scan found: records ``rdw`` (RDW offsets), ``start`` (payload offsets =
    ``rdw + 4``), ``length`` (payload lengths), all int64 and relative to the buffer; where it
    stopped (``stop``: the offset of the word it could not use, or ``end`` / ``limit``), why
    (``reason``, a :class:`Stop`), the length value found in that word (``found``, as written;
    -1 if none) and, for a bad RDW inside a good VB block, where that block ends
    (``block_end``; else -1)."""

    rdw: np.ndarray
    start: np.ndarray
    length: np.ndarray
    stop: int
    reason: Stop
    found: int
    block_end: int


def scan_records(scan_chunk, buf, start: int, end: int | None, fmt: RecordFormat,
                 at_eof: bool = True, limit: int = -1, capacity: int = 1 << 16) -> ScanResult:
    """Drive ``scan_chunk`` (compiled or twin) until it stops for a reason other than FULL."""
    mv = memoryview(buf).cast("B") if not isinstance(buf, np.ndarray) else buf
    n_buf = len(mv)
    end = n_buf if end is None else int(end)
    if not 0 <= start <= end <= n_buf:
        raise ValueError(f"scan range {start}..{end} outside the buffer of {n_buf} bytes")
    params = fmt.params()
    rdws, lens = [], []
    block_end = -1
    pos = int(start)
    est = (end - start) // (HEADER + max(1, fmt.min_length)) + 1
    cap = max(16, min(capacity, est))
    while True:
        out_rdw = np.empty(cap, dtype=np.int64)
        out_len = np.empty(cap, dtype=np.int64)
        n, stop, reason, found, block_end = scan_chunk(mv, pos, end, params, int(at_eof),
                                                       int(limit), block_end, out_rdw, out_len)
        rdws.append(out_rdw[:n])
        lens.append(out_len[:n])
        if reason != Stop.FULL:
            break
        pos = stop
    rdw = np.concatenate(rdws) if len(rdws) > 1 else rdws[0]
    length = np.concatenate(lens) if len(lens) > 1 else lens[0]
    reason = Stop(reason)
    if reason == Stop.END or reason == Stop.NEED_MORE or reason == Stop.TRUNCATED or \
            reason >= Stop.BDW_SHORT:
        block_end = -1
    return ScanResult(rdw, rdw + HEADER, length, int(stop), reason, int(found), int(block_end))


def describe_stop(reason: Stop, found: int, fmt: RecordFormat, left: int | None = None) -> str:
    """Words for a bad descriptor word (no data values: lengths and limits only)."""
    word = "BDW" if reason >= Stop.BDW_SHORT else "RDW"
    counts = ("its own 4 bytes included" if (fmt.bdw_includes_header if word == "BDW"
                                             else fmt.includes_header) else "payload only")
    head = f"{word} length {found} ({counts})" if found >= 0 else word
    if reason == Stop.RDW_SHORT:
        return f"{head}: payload below the minimum of {fmt.min_length} bytes"
    if reason == Stop.RDW_LONG:
        return f"{head}: payload above the maximum of {fmt.max_length} bytes"
    if reason == Stop.RDW_RESERVED:
        return f"{head}: its two reserved bytes are not zero (spanned records are not supported)"
    if reason == Stop.RDW_PAST_END:
        return f"{head}: the record runs past the end of the file ({left} bytes left)"
    if reason == Stop.RDW_PAST_BLOCK:
        return f"{head}: the record runs past the end of its block"
    if reason == Stop.BDW_SHORT:
        return f"{head}: a block holds at least one RDW and one byte"
    if reason == Stop.BDW_LONG:
        return f"{head}: block above the maximum of {fmt.bdw_max_length} bytes"
    if reason == Stop.BDW_RESERVED:
        return f"{head}: its two reserved bytes are not zero"
    if reason == Stop.BDW_PAST_END:
        return f"{head}: the block runs past the end of the file ({left} bytes left)"
    if reason == Stop.TRUNCATED:
        return f"{left} bytes at the end of the file: too short for a descriptor word"
    return reason.name
