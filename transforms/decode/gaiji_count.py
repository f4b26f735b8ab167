"""Counting 外字 (user-defined characters, CP932 F040–F9FC) in the text fields of a block.

The run report shows, per code, how often it occurred and what became of it: ``mapped`` (the
外字 table's character), ``fallback`` (the table's fallback character, when the run or the
field asks for it), ``unmapped`` (no row in the table: the record is quarantined with
``UNMAPPED_GAIJI``). Only codes and counts leave this module, never a decoded value.

The scan is vectorised over records: the text field's bytes form an (records × length) matrix;
rows without any byte F0–F9 are skipped at once, and the rest are walked one byte position at a
time (a lead byte 81–9F / E0–FC with a valid trail byte 40–7E / 80–FC takes two bytes, as CP932
decodes them), so a trail byte that happens to be F0–F9 is never counted as a 外字.
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


def _codes(mat: np.ndarray) -> np.ndarray:
    """The 外字 codes (lead << 8 | trail) in the rows of a byte matrix, in no order."""
    n, length = mat.shape
    skip = np.zeros(n, dtype=bool)  # the byte at this position is a trail byte
    found = []
    for j in range(length - 1):
        b = mat[:, j]
        lead = ~skip & _LEAD[b] & _TRAIL[mat[:, j + 1]]
        hit = lead & (b >= 0xF0) & (b <= 0xF9)
        if hit.any():
            found.append((b[hit].astype(np.int64) << 8) | mat[hit, j + 1])
        skip = lead
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def count_gaiji(arr: np.ndarray, starts: np.ndarray, plan, out: dict[str, int]) -> None:
    """Add the 外字 of every text field of ``plan`` in the records at ``starts`` (offsets into
    the block's bytes ``arr``) to ``out`` (``gaiji_key`` → count)."""
    if not len(starts):
        return
    for f in plan.fields:
        if f.type != "text" or f.length < 2:
            continue
        idx = starts[:, None] + (f.offset + np.arange(f.length))[None, :]
        mat = arr[idx]
        rows = ((mat >= 0xF0) & (mat <= 0xF9)).any(axis=1)
        if not rows.any():
            continue
        codes = _codes(mat[rows])
        if not len(codes):
            continue
        fallback = plan.field_fallback(f)
        values, counts = np.unique(codes, return_counts=True)
        for code, n in zip(values.tolist(), counts.tolist(), strict=True):
            entry = plan.gaiji.get(code)
            if entry is None:
                state = "unmapped"
            elif fallback and entry[1] != entry[0]:
                state = "fallback"
            else:
                state = "mapped"
            key = gaiji_key(code, state)
            out[key] = out.get(key, 0) + n
