"""Counting 外字 (user-defined characters, CP932 F040–F9FC) in the text fields of a block.

The run report shows, per code, how often it occurred and what became of it: ``mapped`` (the
外字 table's character), ``fallback`` (the table's fallback character, when the run or the
field asks for it), ``unmapped`` (no row in the table: the record is quarantined with
``UNMAPPED_GAIJI``). Only codes and counts leave this module, never a decoded value.

The scan is vectorised over the block's bytes (see :func:`count_gaiji`): a byte F0–F9 followed
by a valid trail byte is a 外字 only when it starts a character, so a trail byte that happens to
be F0–F9 is never counted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAIJI_STATES", "count_gaiji", "gaiji_key"]

GAIJI_STATES = ("mapped", "fallback", "unmapped")
_LEAD = np.zeros(256, dtype=bool)
_LEAD[0x81:0xA0] = True
_LEAD[0xE0:0xFD] = True
_TRAIL = np.zeros(256, dtype=bool)
_TRAIL[0x40:0x7F] = True
_TRAIL[0x80:0xFD] = True


def gaiji_key(code: int, state: str) -> str:
    """``"F040 mapped"``: the key of one (code, state) count."""
    return f"{code:04X} {state}"


def count_gaiji(arr: np.ndarray, starts: np.ndarray, plan, out: dict[str, int],
                stride: int | None = None) -> None:
    """Add the 外字 of every text field of ``plan`` in the records at ``starts`` (offsets into
    the block's bytes ``arr``; ``stride``: bytes from one record to the next) to ``out``
    (``gaiji_key`` → count).

    One pass over the block finds the bytes F0–F9; those inside a text field of a selected
    record and followed by a valid trail byte are 外字 when they start a character: exactly
    when the run of lead-range bytes (81–9F, E0–FC) right before them, within the field, is
    of even length (the byte before that run is a single-byte character, a trail byte or a
    byte an invalid pair left alone — after each a character starts — and every lead-range
    byte is also a valid trail byte, so the run pairs up from its start). Runs are short in
    real text, so walking them back costs little."""
    fields = [f for f in plan.fields if f.type == "text" and f.length >= 2]
    if not len(starts) or not fields:
        return
    rl = plan.record_length
    if not stride or (starts % stride).any():  # records not on a grid: gather them first
        arr = arr[starts[:, None] + np.arange(rl)[None, :]].ravel()
        starts, stride = np.arange(len(starts), dtype=np.int64) * rl, rl
    field_at = np.full(rl, -1, dtype=np.int16)  # the text field a lead byte may sit in
    first = np.zeros(len(fields), dtype=np.int64)
    for i, f in enumerate(fields):
        field_at[f.offset:f.offset + f.length - 1] = i
        first[i] = f.offset
    chosen = np.zeros((len(arr) + stride - 1) // stride + 1, dtype=bool)
    chosen[starts // stride] = True
    pos = np.flatnonzero((arr - np.uint8(0xF0)) < 10)  # F0..F9 (uint8 arithmetic wraps)
    rec, off = np.divmod(pos, stride)
    keep = off < rl
    pos, rec, off = pos[keep], rec[keep], off[keep]
    fi = field_at[off]
    keep = (fi >= 0) & chosen[rec]
    pos, off, fi = pos[keep], off[keep], fi[keep]
    keep = _TRAIL[arr[pos + 1]]
    pos, off, fi = pos[keep], off[keep], fi[keep]
    if not len(pos):
        return
    run = np.zeros(len(pos), dtype=np.int64)
    active = np.ones(len(pos), dtype=bool)
    room = off - first[fi]  # bytes of the field before the candidate
    d = 1
    while True:
        active &= room >= d
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        more = _LEAD[arr[pos[idx] - d]]
        run[idx[more]] += 1
        active[idx[~more]] = False
        d += 1
    keep = (run % 2) == 0
    pos, fi = pos[keep], fi[keep]
    codes = (arr[pos].astype(np.int64) << 8) | arr[pos + 1]
    fallback = np.array([plan.field_fallback(f) for f in fields], dtype=bool)[fi]
    for fb in (False, True):
        sel = codes[fallback == fb]
        if not len(sel):
            continue
        values, counts = np.unique(sel, return_counts=True)
        for code, n in zip(values.tolist(), counts.tolist(), strict=True):
            entry = plan.gaiji.get(code)
            if entry is None:
                state = "unmapped"
            elif fb and entry[1] != entry[0]:
                state = "fallback"
            else:
                state = "mapped"
            key = gaiji_key(code, state)
            out[key] = out.get(key, 0) + n
