# cython: language_level=3
"""Normalisation kernel (compiled): Japanese-aware folding of Arrow ``string`` arrays.

The rules and tables live in ``_match_common`` (``NormalizePlan``); ``_normalize_py`` is the
pure-Python twin with the same behaviour. The loop reads the UTF-8 data buffer, maps each code
point through the plan's table, applies the context rules (sound-mark merging, long-vowel
expansion, space collapsing) and writes UTF-8 into a new buffer without the GIL; the result is
wrapped zero-copy as a ``pyarrow.StringArray``.
"""

import numpy as np
import pyarrow as pa

from libc.stdint cimport int32_t, int64_t, uint8_t

from kernels._utf8 cimport utf8_decode

from ._match_common import (
    KANA_BASE,
    KANA_SIZE,
    LONG_VOWEL,
    LV_VOWEL,
    MARK_SEMI,
    MARK_VOICED,
    SPACING_SEMI,
    SPACING_VOICED,
    TABLE_SIZE,
    WS_COLLAPSE,
)

CYTHON_MODULE = 1

__all__ = ["normalize_array"]

cdef int32_t C_KANA_BASE = KANA_BASE
cdef int32_t C_KANA_SIZE = KANA_SIZE
cdef int32_t C_LONG_VOWEL = LONG_VOWEL
cdef int32_t C_MARK_VOICED = MARK_VOICED
cdef int32_t C_MARK_SEMI = MARK_SEMI
cdef int32_t C_SPACING_VOICED = SPACING_VOICED
cdef int32_t C_SPACING_SEMI = SPACING_SEMI
cdef int32_t C_TABLE_SIZE = TABLE_SIZE


cdef inline int64_t _encode(uint8_t* out, int64_t o, int32_t cp) noexcept nogil:
    """Write ``cp`` as UTF-8 at ``out[o]``; returns the new end."""
    if cp < 0x80:
        out[o] = <uint8_t>cp
        return o + 1
    if cp < 0x800:
        out[o] = <uint8_t>(0xC0 | (cp >> 6))
        out[o + 1] = <uint8_t>(0x80 | (cp & 0x3F))
        return o + 2
    if cp < 0x10000:
        out[o] = <uint8_t>(0xE0 | (cp >> 12))
        out[o + 1] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
        out[o + 2] = <uint8_t>(0x80 | (cp & 0x3F))
        return o + 3
    out[o] = <uint8_t>(0xF0 | (cp >> 18))
    out[o + 1] = <uint8_t>(0x80 | ((cp >> 12) & 0x3F))
    out[o + 2] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
    out[o + 3] = <uint8_t>(0x80 | (cp & 0x3F))
    return o + 4


cdef int64_t _normalize_loop(
    const uint8_t* data,
    const int32_t[::1] offsets,
    const int32_t[::1] table,
    const int32_t[::1] voiced,
    const int32_t[::1] semi,
    const int32_t[::1] vowel,
    bint collapse,
    bint vowel_mode,
    bint drop_ivs,
    uint8_t* out,
    int64_t capacity,
    int32_t[::1] out_offsets,
) noexcept nogil:
    """Normalise every row; returns the bytes written, or -1 when ``capacity`` is too small
    (only malformed UTF-8, whose bytes each become a 3-byte U+FFFD, can need more)."""
    cdef Py_ssize_t row, nrows = offsets.shape[0] - 1
    cdef int64_t pos, end, o = 0, last_pos
    cdef int32_t cp, m, last, idx
    cdef bint pending
    out_offsets[0] = 0
    for row in range(nrows):
        pos = offsets[row]
        end = offsets[row + 1]
        last = -1
        last_pos = o
        pending = False
        while pos < end:
            cp = utf8_decode(data, end, &pos)
            if cp < C_TABLE_SIZE:
                m = table[cp]
            elif drop_ivs and cp >= 0xE0100 and cp <= 0xE01EF:
                continue
            else:
                m = cp
            if m < 0:
                continue
            if collapse and m == 0x20:
                if last >= 0:
                    pending = True
                continue
            if m == C_MARK_VOICED or m == C_MARK_SEMI:
                if last >= 0 and not pending:
                    idx = last - C_KANA_BASE
                    if idx >= 0 and idx < C_KANA_SIZE:
                        cp = voiced[idx] if m == C_MARK_VOICED else semi[idx]
                        if cp != 0:
                            o = _encode(out, last_pos, cp)
                            last = cp
                            continue
                m = C_SPACING_VOICED if m == C_MARK_VOICED else C_SPACING_SEMI
            elif vowel_mode and m == C_LONG_VOWEL:
                if last < 0 or pending:
                    continue
                idx = last - C_KANA_BASE
                if idx < 0 or idx >= C_KANA_SIZE or vowel[idx] == 0:
                    continue
                m = vowel[idx]
            if o + 5 > capacity:
                return -1
            if pending:
                o = _encode(out, o, 0x20)
                pending = False
            last_pos = o
            o = _encode(out, o, m)
            last = m
        out_offsets[row + 1] = <int32_t>o
    return o


def normalize_array(arr, plan):
    """Normalise a ``pyarrow.StringArray`` with ``plan`` (a ``NormalizePlan``); nulls stay null."""
    cdef Py_ssize_t n = len(arr)
    bufs = arr.buffers()
    offsets_all = np.frombuffer(bufs[1], dtype=np.int32) if bufs[1] is not None else None
    if n == 0 or offsets_all is None:
        return pa.array([], type=pa.string()) if n == 0 else arr
    cdef const int32_t[::1] offsets = offsets_all[arr.offset: arr.offset + n + 1]
    cdef int64_t first = offsets[0], last_byte = offsets[n]
    data_np = (
        np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size
        else np.zeros(1, np.uint8)
    )
    cdef const uint8_t[::1] data = data_np
    cdef int64_t capacity = <int64_t>((last_byte - first) * float(plan.growth)) + 1
    if capacity > 0x7FFFFFFF:
        raise OverflowError("normalised output would exceed 2 GiB: pass smaller chunks")
    capacity += 8
    out_offsets_np = np.empty(n + 1, dtype=np.int32)
    cdef uint8_t[::1] out
    cdef int32_t[::1] out_offsets = out_offsets_np
    cdef const int32_t[::1] table = plan.table
    cdef const int32_t[::1] voiced = plan.voiced
    cdef const int32_t[::1] semi = plan.semi
    cdef const int32_t[::1] vowel = plan.vowel
    cdef bint collapse = plan.whitespace == WS_COLLAPSE
    cdef bint vowel_mode = plan.long_vowel == LV_VOWEL
    cdef bint drop_ivs = plan.drop_ivs
    cdef int64_t used = -1
    for attempt in range(2):
        out_np = np.empty(capacity, dtype=np.uint8)
        out = out_np
        with nogil:
            used = _normalize_loop(&data[0], offsets, table, voiced, semi, vowel, collapse,
                                   vowel_mode, drop_ivs, &out[0], capacity, out_offsets)
        if used >= 0:
            break
        capacity = (last_byte - first) * 3 + 8
        if capacity > 0x7FFFFFFF:
            raise OverflowError("normalised output would exceed 2 GiB: pass smaller chunks")
    validity = None
    null_count = arr.null_count
    if null_count:
        validity = arr.is_valid().buffers()[1]
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [validity, pa.py_buffer(out_offsets_np), pa.py_buffer(out_np[:used])],
        null_count=null_count,
    )
