# cython: language_level=3
"""Index pass over variable-length records (compiled): RDW / BDW chains scanned without the GIL.

Behaviour as described in ``_records_common``; ``_records_py`` is the pure-Python twin.
"""

from libc.stdint cimport int64_t, uint8_t

from ._records_common import RESYNC_FOUND, RESYNC_NEED_MORE, RESYNC_NONE

CYTHON_MODULE = 1

__all__ = ["CYTHON_MODULE", "find_resync", "scan_chunk"]

DEF HDR = 4

# Stop reasons (values of _records_common.Stop)
cdef enum:
    S_END = 0
    S_NEED_MORE = 1
    S_FULL = 2
    S_TRUNCATED = 3
    S_RDW_SHORT = 4
    S_RDW_LONG = 5
    S_RDW_RESERVED = 6
    S_RDW_PAST_END = 7
    S_RDW_PAST_BLOCK = 8
    S_BDW_SHORT = 9
    S_BDW_LONG = 10
    S_BDW_RESERVED = 11
    S_BDW_PAST_END = 12

cdef enum:
    U_OK = 0
    U_FAIL = 1
    U_MORE = 2

cdef struct Fmt:
    int blocked
    int little
    int header
    int64_t min_len
    int64_t max_len
    int bdw_little
    int bdw_header
    int64_t bdw_max


cdef Fmt _fmt(tuple params):
    cdef Fmt f
    f.blocked = params[0]
    f.little = params[1]
    f.header = params[2]
    f.min_len = params[3]
    f.max_len = params[4]
    f.bdw_little = params[5]
    f.bdw_header = params[6]
    f.bdw_max = params[7]
    return f


cdef inline int _rdw(const uint8_t* b, const Fmt* f, int64_t* payload, int64_t* found) noexcept nogil:
    cdef uint8_t b0, b1, b2, b3
    if f.little:
        b0 = b[3]; b1 = b[2]; b2 = b[1]; b3 = b[0]
    else:
        b0 = b[0]; b1 = b[1]; b2 = b[2]; b3 = b[3]
    found[0] = (<int64_t>b0 << 8) | b1
    if b2 or b3:
        return S_RDW_RESERVED
    payload[0] = found[0] - HDR if f.header else found[0]
    if payload[0] < f.min_len:
        return S_RDW_SHORT
    if payload[0] > f.max_len:
        return S_RDW_LONG
    return 0


cdef inline int _bdw(const uint8_t* b, const Fmt* f, int64_t* total, int64_t* found) noexcept nogil:
    cdef uint8_t b0, b1, b2, b3
    if f.bdw_little:
        b0 = b[3]; b1 = b[2]; b2 = b[1]; b3 = b[0]
    else:
        b0 = b[0]; b1 = b[1]; b2 = b[2]; b3 = b[3]
    if b0 & 0x80:
        found[0] = (<int64_t>(b0 & 0x7F) << 24) | (<int64_t>b1 << 16) | (<int64_t>b2 << 8) | b3
    else:
        found[0] = (<int64_t>b0 << 8) | b1
        if b2 or b3:
            return S_BDW_RESERVED
    total[0] = found[0] if f.bdw_header else found[0] + HDR
    if total[0] < 2 * HDR + f.min_len:
        return S_BDW_SHORT
    if total[0] > f.bdw_max:
        return S_BDW_LONG
    return 0


def scan_chunk(const uint8_t[::1] buf, int64_t start, int64_t end, tuple params, int at_eof,
               int64_t limit, int64_t block_end, int64_t[::1] out_rdw, int64_t[::1] out_len):
    cdef Fmt f = _fmt(params)
    cdef int64_t pos = start, n = 0, cap = out_rdw.shape[0]
    cdef int64_t payload = 0, found = -1, total = 0, lim
    cdef int reason = S_END
    cdef const uint8_t* b = &buf[0] if buf.shape[0] else NULL
    with nogil:
        while True:
            found = -1
            if f.blocked and pos == block_end:
                block_end = -1
            if pos == limit or pos == end:
                reason = S_END
                break
            if f.blocked and block_end < 0:
                if pos + HDR > end:
                    reason = S_BDW_PAST_END if at_eof else S_NEED_MORE
                    break
                reason = _bdw(b + pos, &f, &total, &found)
                if reason:
                    break
                if pos + total > end:
                    reason = S_BDW_PAST_END if at_eof else S_NEED_MORE
                    break
                block_end = pos + total
                pos += HDR
                continue
            lim = block_end if f.blocked else end
            if pos + HDR > lim:
                if f.blocked:
                    reason = S_RDW_PAST_BLOCK
                else:
                    reason = S_TRUNCATED if at_eof else S_NEED_MORE
                break
            reason = _rdw(b + pos, &f, &payload, &found)
            if reason:
                break
            if pos + HDR + payload > lim:
                if f.blocked:
                    reason = S_RDW_PAST_BLOCK
                else:
                    reason = S_RDW_PAST_END if at_eof else S_NEED_MORE
                break
            if n == cap:
                reason = S_FULL
                found = -1
                break
            out_rdw[n] = pos
            out_len[n] = payload
            n += 1
            pos += HDR + payload
    if not f.blocked or reason == S_BDW_PAST_END or reason == S_NEED_MORE or \
            (S_BDW_SHORT <= reason <= S_BDW_RESERVED):
        block_end = -1
    return n, pos, reason, found, block_end


cdef inline int _unit(const uint8_t* b, int64_t p, int64_t end, const Fmt* f, int at_eof,
                      int64_t* nxt) noexcept nogil:
    cdef int more = U_FAIL if at_eof else U_MORE
    cdef int64_t payload = 0, found = 0, total = 0, be, q
    if p + HDR > end:
        return more
    if not f.blocked:
        if _rdw(b + p, f, &payload, &found):
            return U_FAIL
        if p + HDR + payload > end:
            return more
        nxt[0] = p + HDR + payload
        return U_OK
    if _bdw(b + p, f, &total, &found):
        return U_FAIL
    be = p + total
    if be > end:
        return more
    q = p + HDR
    while q < be:
        if q + HDR > be:
            return U_FAIL
        if _rdw(b + q, f, &payload, &found) or q + HDR + payload > be:
            return U_FAIL
        q += HDR + payload
    nxt[0] = be
    return U_OK


def find_resync(const uint8_t[::1] buf, int64_t start, int64_t end, tuple params, int k,
                int at_eof):
    cdef Fmt f = _fmt(params)
    cdef const uint8_t* b = &buf[0] if buf.shape[0] else NULL
    cdef int64_t c, p, nxt = 0
    cdef int units, status = U_FAIL
    with nogil:
        c = start
        while c < end:
            p = c
            units = 0
            status = U_OK
            while units < k:
                if p == end:
                    status = U_OK if at_eof else U_MORE
                    break
                status = _unit(b, p, end, &f, at_eof, &nxt)
                if status != U_OK:
                    break
                p = nxt
                units += 1
            if status != U_FAIL:
                break
            c += 1
    if c < end:
        return c, RESYNC_FOUND if status == U_OK else RESYNC_NEED_MORE
    return end, RESYNC_NONE if at_eof else RESYNC_NEED_MORE
