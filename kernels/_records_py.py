"""Index pass over variable-length records: the pure-Python twin of ``_records.pyx``.

Same behaviour as the compiled kernel (see :mod:`ikou.kernels._records_common`), one byte at a
time; used when ``IKOU_PURE_PYTHON=1`` and to check the compiled kernel.
"""

from __future__ import annotations

from ._records_common import HEADER, RESYNC_FOUND, RESYNC_NEED_MORE, RESYNC_NONE, Stop

__all__ = ["find_resync", "scan_chunk"]

_OK, _FAIL, _MORE = 0, 1, 2


def _word(buf, p, little):
    if little:
        return buf[p + 3], buf[p + 2], buf[p + 1], buf[p]
    return buf[p], buf[p + 1], buf[p + 2], buf[p + 3]


def _rdw(buf, p, params):
    """(payload length, reason or 0, length found)."""
    b0, b1, b2, b3 = _word(buf, p, params[1])
    found = (b0 << 8) | b1
    if b2 or b3:
        return -1, Stop.RDW_RESERVED, found
    payload = found - HEADER if params[2] else found
    if payload < params[3]:
        return -1, Stop.RDW_SHORT, found
    if payload > params[4]:
        return -1, Stop.RDW_LONG, found
    return payload, 0, found


def _bdw(buf, p, params):
    """(block length with its BDW, reason or 0, length found)."""
    b0, b1, b2, b3 = _word(buf, p, params[5])
    if b0 & 0x80:
        found = ((b0 & 0x7F) << 24) | (b1 << 16) | (b2 << 8) | b3
    else:
        found = (b0 << 8) | b1
        if b2 or b3:
            return -1, Stop.BDW_RESERVED, found
    total = found if params[6] else found + HEADER
    if total < 2 * HEADER + params[3]:
        return -1, Stop.BDW_SHORT, found
    if total > params[7]:
        return -1, Stop.BDW_LONG, found
    return total, 0, found


def scan_chunk(buf, start, end, params, at_eof, limit, block_end, out_rdw, out_len):
    blocked = params[0]
    pos, n, cap = start, 0, len(out_rdw)
    while True:
        if blocked and pos == block_end:
            block_end = -1
        if pos == limit or pos == end:
            return n, pos, Stop.END, -1, block_end
        if blocked and block_end < 0:  # at a BDW
            if pos + HEADER > end:
                return n, pos, Stop.BDW_PAST_END if at_eof else Stop.NEED_MORE, -1, -1
            total, reason, found = _bdw(buf, pos, params)
            if reason:
                return n, pos, reason, found, -1
            if pos + total > end:
                return n, pos, Stop.BDW_PAST_END if at_eof else Stop.NEED_MORE, found, -1
            block_end = pos + total
            pos += HEADER
            continue
        lim = block_end if blocked else end
        if pos + HEADER > lim:
            if blocked:
                return n, pos, Stop.RDW_PAST_BLOCK, -1, block_end
            return n, pos, Stop.TRUNCATED if at_eof else Stop.NEED_MORE, -1, -1
        payload, reason, found = _rdw(buf, pos, params)
        if reason:
            return n, pos, reason, found, block_end
        if pos + HEADER + payload > lim:
            if blocked:
                return n, pos, Stop.RDW_PAST_BLOCK, found, block_end
            return n, pos, Stop.RDW_PAST_END if at_eof else Stop.NEED_MORE, found, -1
        if n == cap:
            return n, pos, Stop.FULL, -1, block_end
        out_rdw[n] = pos
        out_len[n] = payload
        n += 1
        pos += HEADER + payload


def _unit(buf, p, end, params, at_eof):
    """(status, end of the unit starting at ``p``)."""
    more = _FAIL if at_eof else _MORE
    if p + HEADER > end:
        return more, p
    if not params[0]:
        payload, reason, _ = _rdw(buf, p, params)
        if reason:
            return _FAIL, p
        if p + HEADER + payload > end:
            return more, p
        return _OK, p + HEADER + payload
    total, reason, _ = _bdw(buf, p, params)
    if reason:
        return _FAIL, p
    be = p + total
    if be > end:
        return more, p
    q = p + HEADER
    while q < be:
        if q + HEADER > be:
            return _FAIL, p
        payload, reason, _ = _rdw(buf, q, params)
        if reason or q + HEADER + payload > be:
            return _FAIL, p
        q += HEADER + payload
    return _OK, be


def _chain(buf, c, end, params, k, at_eof):
    p, units = c, 0
    while units < k:
        if p == end:
            return _OK if at_eof else _MORE
        status, p = _unit(buf, p, end, params, at_eof)
        if status != _OK:
            return status
        units += 1
    return _OK


def find_resync(buf, start, end, params, k, at_eof):
    for c in range(start, end):
        status = _chain(buf, c, end, params, k, at_eof)
        if status == _OK:
            return c, RESYNC_FOUND
        if status == _MORE:
            return c, RESYNC_NEED_MORE
    return end, RESYNC_NONE if at_eof else RESYNC_NEED_MORE
