"""Pure-Python twin of ``_normalize.pyx``: the same normalisation, one string at a time.

Used when ``IKOU_PURE_PYTHON=1`` and by the tests that keep both paths equal.
"""

from __future__ import annotations

import pyarrow as pa

from ._match_common import (
    IVS_FIRST,
    IVS_LAST,
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
    NormalizePlan,
)

__all__ = ["normalize_array", "normalize_str"]


def normalize_str(text: str, plan: NormalizePlan, _cache: dict | None = None) -> str:
    """Normalise one string with ``plan`` (see ``_match_common`` for the rules)."""
    table = plan.table if _cache is None else _cache["table"]
    voiced = plan.voiced if _cache is None else _cache["voiced"]
    semi = plan.semi if _cache is None else _cache["semi"]
    vowel = plan.vowel if _cache is None else _cache["vowel"]
    collapse = plan.whitespace == WS_COLLAPSE
    vowel_mode = plan.long_vowel == LV_VOWEL
    drop_ivs = plan.drop_ivs
    out: list[int] = []
    pending_space = False
    for ch in text:
        cp = ord(ch)
        if cp < TABLE_SIZE:
            m = table[cp]
        elif drop_ivs and IVS_FIRST <= cp <= IVS_LAST:
            continue
        else:
            m = cp
        if m < 0:
            continue
        if collapse and m == 0x20:
            if out:
                pending_space = True
            continue
        if m == MARK_VOICED or m == MARK_SEMI:
            side = voiced if m == MARK_VOICED else semi
            if out and not pending_space:
                last = out[-1] - KANA_BASE
                if 0 <= last < KANA_SIZE and side[last]:
                    out[-1] = int(side[last])
                    continue
            m = SPACING_VOICED if m == MARK_VOICED else SPACING_SEMI
        elif vowel_mode and m == LONG_VOWEL:
            if not out or pending_space:
                continue
            last = out[-1] - KANA_BASE
            if not (0 <= last < KANA_SIZE and vowel[last]):
                continue
            m = int(vowel[last])
        if pending_space:
            out.append(0x20)
            pending_space = False
        out.append(m)
    return "".join(map(chr, out))


def normalize_array(arr: pa.Array, plan: NormalizePlan) -> pa.Array:
    """Normalise a ``string`` array (nulls stay null)."""
    cache = {
        "table": plan.table.tolist(),
        "voiced": plan.voiced.tolist(),
        "semi": plan.semi.tolist(),
        "vowel": plan.vowel.tolist(),
    }
    n = len(arr)
    if n == 0:
        return pa.array([], type=pa.string())
    bufs = arr.buffers()
    offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, bufs[1]], offset=arr.offset)
    offsets = offsets.to_pylist()
    data = bufs[2].to_pybytes() if bufs[2] is not None else b""
    valid = arr.is_valid().to_pylist()
    values = [
        normalize_str(data[offsets[i] : offsets[i + 1]].decode("utf-8", "replace"), plan, cache)
        if valid[i]
        else None
        for i in range(n)
    ]
    return pa.array(values, type=pa.string())
