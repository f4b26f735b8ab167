"""Pure-Python twin of ``_compare.pyx``: the same similarities and levels, bit for bit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._match_common import (
    DATE_ELSE,
    DATE_ONE_DIGIT,
    DATE_SAME,
    DATE_SWAPPED,
    FINE_ELSE,
    FINE_ONE_DIGIT,
    FINE_SAME,
    FINE_SWAPPED,
    FINE_WITHIN_YEAR,
    FINE_YEAR_MONTH,
    LEVEL_NULL,
)

__all__ = [
    "coded_levels",
    "date_levels",
    "exact_levels",
    "jaro_winkler",
    "levenshtein",
    "string_levels",
    "utf32_column",
]

M_EXACT, M_JARO_WINKLER, M_LEVENSHTEIN = 0, 1, 2
PART_WHOLE, PART_SURNAME, PART_GIVEN = 0, 1, 2


def utf32_column(arr: pa.Array):
    """Decode a ``string`` array to ``(code points int32, offsets int64, valid uint8)``."""
    n = len(arr)
    valid = np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
    bufs = arr.buffers()
    if n == 0 or bufs[1] is None:
        return np.zeros(0, np.int32), np.zeros(n + 1, np.int64), valid
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = bufs[2].to_pybytes() if bufs[2] is not None else b""
    cps: list[int] = []
    out_offsets = [0]
    for i in range(n):
        text = data[offsets[i] : offsets[i + 1]].decode("utf-8", "replace")
        cps.extend(map(ord, text))
        out_offsets.append(len(cps))
    return np.array(cps, dtype=np.int32), np.array(out_offsets, dtype=np.int64), valid


def jaro_winkler(a, b, prefix_weight: float = 0.1) -> float:
    """Jaro-Winkler similarity of two code-point sequences (boost above 0.7, prefix ≤ 4)."""
    la, lb = len(a), len(b)
    if la == 0 and lb == 0:
        return 1.0
    if la == 0 or lb == 0:
        return 0.0
    window = max(0, max(la, lb) // 2 - 1)
    fa = [False] * la
    fb = [False] * lb
    m = 0
    for i in range(la):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not fb[j] and a[i] == b[j]:
                fa[i] = fb[j] = True
                m += 1
                break
    if m == 0:
        return 0.0
    t = k = 0
    for i in range(la):
        if fa[i]:
            while not fb[k]:
                k += 1
            if a[i] != b[k]:
                t += 1
            k += 1
    t //= 2
    sim = (m / la + m / lb + (m - t) / m) / 3.0
    if sim > 0.7:
        prefix = 0
        while prefix < 4 and prefix < la and prefix < lb and a[prefix] == b[prefix]:
            prefix += 1
        sim = sim + prefix * prefix_weight * (1.0 - sim)
    return sim


def levenshtein(a, b) -> float:
    """Normalised Levenshtein similarity ``1 - distance / max(len)`` on code points."""
    la, lb = len(a), len(b)
    if la == 0 and lb == 0:
        return 1.0
    row = list(range(lb + 1))
    for i in range(1, la + 1):
        prev = row[0]
        row[0] = i
        for j in range(1, lb + 1):
            best = prev + (0 if a[i - 1] == b[j - 1] else 1)
            best = min(best, row[j] + 1, row[j - 1] + 1)
            prev = row[j]
            row[j] = best
    return 1.0 - row[lb] / max(la, lb)


def _level(sim: float, thresholds) -> int:
    k = len(thresholds)
    for i in range(k):
        if sim >= thresholds[i]:
            return k - i
    return 0


def _similarity(method: int, x, y, prefix_weight: float) -> float:
    """The similarity of two code-point sequences by ``method``."""
    if method == M_EXACT:
        return 1.0 if x == y else 0.0
    if method == M_JARO_WINKLER:
        return jaro_winkler(x, y, prefix_weight)
    return levenshtein(x, y)


def string_levels(left, right, li, ri, method: int, thresholds, prefix_weight: float = 0.1):
    """Similarity (float64) and level (int8) of every pair (columns from :func:`utf32_column`)."""
    li = np.asarray(li, dtype=np.int64)
    ri = np.asarray(ri, dtype=np.int64)
    if len(li) != len(ri):
        raise ValueError("index arrays differ in length")
    na, nb = len(left[2]), len(right[2])
    if len(li) and (li.min() < 0 or li.max() >= na or ri.min() < 0 or ri.max() >= nb):
        raise IndexError("pair index out of range")
    acp, aoff, aval = left[0].tolist(), left[1].tolist(), left[2].tolist()
    bcp, boff, bval = right[0].tolist(), right[1].tolist(), right[2].tolist()
    thresholds = [float(t) for t in thresholds]
    sim = np.empty(len(li), dtype=np.float64)
    lvl = np.empty(len(li), dtype=np.int8)
    for k, (a, b) in enumerate(zip(li.tolist(), ri.tolist(), strict=True)):
        if not aval[a] or not bval[b]:
            sim[k] = np.nan
            lvl[k] = LEVEL_NULL
            continue
        x = acp[aoff[a] : aoff[a + 1]]
        y = bcp[boff[b] : boff[b + 1]]
        s = _similarity(method, x, y, prefix_weight)
        sim[k] = s
        lvl[k] = _level(s, thresholds)
    return sim, lvl


def _split(own: int, other: int, own_len: int, space, listed):
    """``(surname end, given start)`` of the name ``own``: at its space; else where the other
    side's name has its space; else after its listed surname; else as the other side's listed
    surname; None when none applies."""
    if space[own] >= 0:
        return space[own], space[own] + 1
    if 0 < space[other] < own_len:
        return space[other], space[other]
    if listed[own] >= 0:
        return listed[own], listed[own]
    if 0 < listed[other] < own_len:
        return listed[other], listed[other]
    return None


def coded_levels(dictionary, left_codes, right_codes, li, ri, method: int, thresholds,
                 prefix_weight: float = 0.1, part: int = 0, space=None, listed=None):
    """Level (int8) of every pair of dictionary-coded strings (see the compiled kernel)."""
    li = np.asarray(li, dtype=np.int64)
    ri = np.asarray(ri, dtype=np.int64)
    if len(li) != len(ri):
        raise ValueError("index arrays differ in length")
    lc = np.asarray(left_codes, dtype=np.int32).tolist()
    rc = np.asarray(right_codes, dtype=np.int32).tolist()
    nd = len(dictionary[1]) - 1
    if len(li) and (li.min() < 0 or li.max() >= len(lc) or ri.min() < 0 or ri.max() >= len(rc)):
        raise IndexError("pair index out of range")
    if (lc and max(lc) >= nd) or (rc and max(rc) >= nd):
        raise IndexError("string code out of range")
    if part not in (0, 1, 2):
        raise ValueError("part must be 0 (whole), 1 (surname) or 2 (given name)")
    if part:
        space = np.asarray(space, dtype=np.int32).tolist()
        listed = np.asarray(listed, dtype=np.int32).tolist()
        if len(space) != nd or len(listed) != nd:
            raise ValueError("space and listed need one position per dictionary string")
    cps, off = dictionary[0].tolist(), dictionary[1].tolist()
    thresholds = [float(t) for t in thresholds]
    out = np.empty(len(li), dtype=np.int8)
    for k, (a, b) in enumerate(zip(li.tolist(), ri.tolist(), strict=True)):
        x, y = lc[a], rc[b]
        if x < 0 or y < 0:
            out[k] = LEVEL_NULL
            continue
        sx, sy = cps[off[x] : off[x + 1]], cps[off[y] : off[y + 1]]
        if part:
            cut_x = _split(x, y, len(sx), space, listed)
            cut_y = _split(y, x, len(sy), space, listed)
            if cut_x is None or cut_y is None:
                out[k] = LEVEL_NULL
                continue
            if part == PART_SURNAME:
                sx, sy = sx[: cut_x[0]], sy[: cut_y[0]]
            else:
                sx, sy = sx[cut_x[1] :], sy[cut_y[1] :]
        s = 1.0 if x == y else _similarity(method, sx, sy, prefix_weight)
        out[k] = _level(s, thresholds)
    return out


def exact_levels(left_codes, right_codes, li, ri):
    """Level 1 where the codes agree, 0 where not, -1 where a code is negative (null)."""
    out = np.empty(len(li), dtype=np.int8)
    lc, rc = list(left_codes), list(right_codes)
    for k, (a, b) in enumerate(zip(list(li), list(ri), strict=True)):
        x, y = lc[a], rc[b]
        out[k] = LEVEL_NULL if x < 0 or y < 0 else int(x == y)
    return out


def _civil(z: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (Hinnant)."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _digits_differ(x: str, y: str) -> int:
    return sum(p != q for p, q in zip(x, y, strict=True))


def date_levels(left_days, left_valid, right_days, right_valid, li, ri, fine=False):
    """Date levels: 3 same, 2 day and month swapped, 1 one digit of YYYYMMDD off, 0 else.

    ``fine``: 5 same, 4 swapped, 3 one digit off, 2 same year and month, 1 within 365 days,
    0 else (the highest that applies)."""
    out = np.empty(len(li), dtype=np.int8)
    for k, (a, b) in enumerate(zip(list(li), list(ri), strict=True)):
        if not left_valid[a] or not right_valid[b]:
            out[k] = LEVEL_NULL
            continue
        da, db = int(left_days[a]), int(right_days[b])
        if da == db:
            out[k] = FINE_SAME if fine else DATE_SAME
            continue
        y1, m1, d1 = _civil(da)
        y2, m2, d2 = _civil(db)
        if y1 == y2 and m1 == d2 and d1 == m2:
            out[k] = FINE_SWAPPED if fine else DATE_SWAPPED
            continue
        one_digit = (
            0 <= y1 <= 9999
            and 0 <= y2 <= 9999
            and _digits_differ(f"{y1:04d}{m1:02d}{d1:02d}", f"{y2:04d}{m2:02d}{d2:02d}") == 1
        )
        if not fine:
            out[k] = DATE_ONE_DIGIT if one_digit else DATE_ELSE
        elif one_digit:
            out[k] = FINE_ONE_DIGIT
        elif y1 == y2 and m1 == m2:
            out[k] = FINE_YEAR_MONTH
        else:
            out[k] = FINE_WITHIN_YEAR if abs(da - db) <= 365 else FINE_ELSE
    return out
