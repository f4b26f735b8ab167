# cython: language_level=3
"""Comparison kernel (compiled): similarities and comparison levels over candidate pairs.

A pair is ``(left[li[k]], right[ri[k]])``. String columns are decoded once to code points
(``utf32_column``); the per-pair loops (Jaro-Winkler, normalised Levenshtein, exact, dates) run
without the GIL. ``_compare_py`` is the pure-Python twin with the same results, bit for bit.
Levels: with thresholds ``t[0] > … > t[k-1]`` a similarity reaching ``t[i]`` first gets level
``k - i``; below all gets 0; a null on either side gets ``LEVEL_NULL`` (-1) and NaN similarity.
"""

import numpy as np

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.math cimport NAN

from kernels._utf8 cimport utf8_decode

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

CYTHON_MODULE = 1

__all__ = ["utf32_column", "string_levels", "coded_levels", "exact_levels", "date_levels"]

cdef int8_t C_NULL = LEVEL_NULL
cdef int8_t C_DATE_SAME = DATE_SAME
cdef int8_t C_DATE_SWAPPED = DATE_SWAPPED
cdef int8_t C_DATE_ONE_DIGIT = DATE_ONE_DIGIT
cdef int8_t C_DATE_ELSE = DATE_ELSE
cdef int8_t C_FINE_SAME = FINE_SAME
cdef int8_t C_FINE_SWAPPED = FINE_SWAPPED
cdef int8_t C_FINE_ONE_DIGIT = FINE_ONE_DIGIT
cdef int8_t C_FINE_YEAR_MONTH = FINE_YEAR_MONTH
cdef int8_t C_FINE_WITHIN_YEAR = FINE_WITHIN_YEAR
cdef int8_t C_FINE_ELSE = FINE_ELSE

# method codes shared with the twin
M_EXACT, M_JARO_WINKLER, M_LEVENSHTEIN = 0, 1, 2
# name parts of coded_levels
PART_WHOLE, PART_SURNAME, PART_GIVEN = 0, 1, 2


cdef void _utf32_loop(const uint8_t* data, const int32_t[::1] offsets, int32_t[::1] cps,
                      int64_t[::1] out_offsets) noexcept nogil:
    cdef Py_ssize_t row, nrows = offsets.shape[0] - 1
    cdef int64_t pos, end, o = 0
    out_offsets[0] = 0
    for row in range(nrows):
        pos = offsets[row]
        end = offsets[row + 1]
        while pos < end:
            cps[o] = utf8_decode(data, end, &pos)
            o += 1
        out_offsets[row + 1] = o


def utf32_column(arr):
    """Decode a ``string`` array to ``(code points int32, offsets int64, valid uint8)``."""
    cdef Py_ssize_t n = len(arr)
    valid = np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
    bufs = arr.buffers()
    if n == 0 or bufs[1] is None:
        return np.zeros(0, np.int32), np.zeros(n + 1, np.int64), valid
    cdef const int32_t[::1] offsets = np.frombuffer(bufs[1], dtype=np.int32)[
        arr.offset: arr.offset + n + 1]
    data_np = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size
               else np.zeros(1, np.uint8))
    cdef const uint8_t[::1] data = data_np
    cps_np = np.empty(max(1, offsets[n] - offsets[0]), dtype=np.int32)
    out_offsets_np = np.empty(n + 1, dtype=np.int64)
    cdef int32_t[::1] cps = cps_np
    cdef int64_t[::1] out_offsets = out_offsets_np
    with nogil:
        _utf32_loop(&data[0], offsets, cps, out_offsets)
    return cps_np[: out_offsets_np[n]], out_offsets_np, valid


cdef inline double _winkler(double sim, const int32_t* a, int64_t la, const int32_t* b,
                            int64_t lb, double prefix_weight) noexcept nogil:
    cdef int64_t prefix = 0
    if sim > 0.7:
        while prefix < 4 and prefix < la and prefix < lb and a[prefix] == b[prefix]:
            prefix += 1
        sim = sim + prefix * prefix_weight * (1.0 - sim)
    return sim


cdef double _jaro_winkler(const int32_t* a, int64_t la, const int32_t* b, int64_t lb,
                          uint8_t* fa, uint8_t* fb, double prefix_weight) noexcept nogil:
    """Jaro-Winkler on code points; strings of up to 64 code points use bit masks for the
    matched flags (no clearing), longer ones the scratch arrays ``fa``/``fb``. Same result."""
    cdef int64_t i, j, lo, hi, window, m = 0, t = 0, k = 0
    cdef uint64_t ma = 0, mb = 0, bit
    cdef double sim
    if la == 0 and lb == 0:
        return 1.0
    if la == 0 or lb == 0:
        return 0.0
    if la == lb:
        i = 0
        while i < la and a[i] == b[i]:
            i += 1
        if i == la:
            return 1.0
    window = (la if la > lb else lb) // 2 - 1
    if window < 0:
        window = 0
    if la <= 64 and lb <= 64:
        for i in range(la):
            lo = i - window
            if lo < 0:
                lo = 0
            hi = i + window + 1
            if hi > lb:
                hi = lb
            for j in range(lo, hi):
                bit = (<uint64_t>1) << j
                if (mb & bit) == 0 and a[i] == b[j]:
                    ma |= (<uint64_t>1) << i
                    mb |= bit
                    m += 1
                    break
        if m == 0:
            return 0.0
        for i in range(la):
            if ma & ((<uint64_t>1) << i):
                while (mb & ((<uint64_t>1) << k)) == 0:
                    k += 1
                if a[i] != b[k]:
                    t += 1
                k += 1
    else:
        for i in range(la):
            fa[i] = 0
        for j in range(lb):
            fb[j] = 0
        for i in range(la):
            lo = i - window
            if lo < 0:
                lo = 0
            hi = i + window + 1
            if hi > lb:
                hi = lb
            for j in range(lo, hi):
                if fb[j] == 0 and a[i] == b[j]:
                    fa[i] = 1
                    fb[j] = 1
                    m += 1
                    break
        if m == 0:
            return 0.0
        for i in range(la):
            if fa[i]:
                while fb[k] == 0:
                    k += 1
                if a[i] != b[k]:
                    t += 1
                k += 1
    t = t // 2
    sim = (<double>m / la + <double>m / lb + <double>(m - t) / m) / 3.0
    return _winkler(sim, a, la, b, lb, prefix_weight)


cdef double _levenshtein(const int32_t* a, int64_t la, const int32_t* b, int64_t lb,
                         int64_t* row) noexcept nogil:
    """Normalised similarity ``1 - distance / max(len)`` (1.0 for two empty strings)."""
    cdef int64_t i, j, prev, cur, cost, best
    if la == 0 and lb == 0:
        return 1.0
    for j in range(lb + 1):
        row[j] = j
    for i in range(1, la + 1):
        prev = row[0]
        row[0] = i
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = prev + cost
            if row[j] + 1 < best:
                best = row[j] + 1
            if row[j - 1] + 1 < best:
                best = row[j - 1] + 1
            prev = row[j]
            row[j] = best
    return 1.0 - <double>row[lb] / (la if la > lb else lb)


cdef inline double _similarity(int method, const int32_t* a, int64_t la, const int32_t* b,
                               int64_t lb, uint8_t* fa, uint8_t* fb, int64_t* row,
                               double prefix_weight) noexcept nogil:
    """The similarity of two code-point strings: 0 exact, 1 Jaro-Winkler, else Levenshtein."""
    cdef int64_t j
    if method == 0:
        if la != lb:
            return 0.0
        for j in range(la):
            if a[j] != b[j]:
                return 0.0
        return 1.0
    if method == 1:
        return _jaro_winkler(a, la, b, lb, fa, fb, prefix_weight)
    return _levenshtein(a, la, b, lb, row)


cdef inline int8_t _level(double sim, const double* thresholds, Py_ssize_t k) noexcept nogil:
    """Level of a similarity (a pointer, not a memoryview: no reference counting per call)."""
    cdef Py_ssize_t i
    for i in range(k):
        if sim >= thresholds[i]:
            return <int8_t>(k - i)
    return 0


def string_levels(left, right, const int64_t[::1] li, const int64_t[::1] ri, int method,
                  const double[::1] thresholds, double prefix_weight=0.1):
    """Similarity (float64) and level (int8) of every pair; ``left``/``right`` come from
    :func:`utf32_column`."""
    cdef const int32_t[::1] acp = left[0] if left[0].size else np.zeros(1, np.int32)
    cdef const int64_t[::1] aoff = left[1]
    cdef const uint8_t[::1] aval = left[2]
    cdef const int32_t[::1] bcp = right[0] if right[0].size else np.zeros(1, np.int32)
    cdef const int64_t[::1] boff = right[1]
    cdef const uint8_t[::1] bval = right[2]
    cdef Py_ssize_t k, n = li.shape[0]
    if ri.shape[0] != n:
        raise ValueError("index arrays differ in length")
    na, nb = aval.shape[0], bval.shape[0]
    if n and (np.min(li) < 0 or np.max(li) >= na or np.min(ri) < 0 or np.max(ri) >= nb):
        raise IndexError("pair index out of range")
    maxa = int(np.max(np.diff(left[1]))) if na else 0
    maxb = int(np.max(np.diff(right[1]))) if nb else 0
    sim_np = np.empty(n, dtype=np.float64)
    lvl_np = np.empty(n, dtype=np.int8)
    fa_np = np.zeros(maxa + 1, dtype=np.uint8)
    fb_np = np.zeros(maxb + 1, dtype=np.uint8)
    row_np = np.zeros(maxb + 1, dtype=np.int64)
    cdef double[::1] sim = sim_np
    cdef int8_t[::1] lvl = lvl_np
    cdef uint8_t[::1] fa = fa_np
    cdef uint8_t[::1] fb = fb_np
    cdef int64_t[::1] row = row_np
    cdef int64_t a, b, la, lb
    cdef double s
    # Base pointers (acp/bcp are never empty): an empty last string starts one past the end,
    # where indexing the memoryview would be out of bounds but pointer arithmetic is valid C.
    cdef const int32_t *ap = &acp[0]
    cdef const int32_t *bp = &bcp[0]
    with nogil:
        for k in range(n):
            a = li[k]
            b = ri[k]
            if not aval[a] or not bval[b]:
                sim[k] = NAN
                lvl[k] = C_NULL
                continue
            la = aoff[a + 1] - aoff[a]
            lb = boff[b + 1] - boff[b]
            s = _similarity(method, ap + aoff[a], la, bp + boff[b], lb, &fa[0], &fb[0],
                            &row[0], prefix_weight)
            sim[k] = s
            lvl[k] = _level(s, &thresholds[0], thresholds.shape[0])
    return sim_np, lvl_np


cdef inline bint _split(int32_t own, int32_t other, int64_t own_len, const int32_t* space,
                        const int32_t* listed, int64_t* s_end, int64_t* g_start) noexcept nogil:
    """Where the name ``own`` divides into surname ``[0, s_end)`` and given name
    ``[g_start, len)``: at its space; else where the other side's name has its space; else
    after its listed surname; else as the other side's listed surname; False when none."""
    cdef int64_t p = space[own]
    if p >= 0:
        s_end[0] = p
        g_start[0] = p + 1
        return True
    p = space[other]
    if 0 < p < own_len:
        s_end[0] = p
        g_start[0] = p
        return True
    p = listed[own]
    if p >= 0:
        s_end[0] = p
        g_start[0] = p
        return True
    p = listed[other]
    if 0 < p < own_len:
        s_end[0] = p
        g_start[0] = p
        return True
    return False


def coded_levels(dictionary, const int32_t[::1] left_codes, const int32_t[::1] right_codes,
                 const int64_t[::1] li, const int64_t[::1] ri, int method,
                 const double[::1] thresholds, double prefix_weight=0.1, int part=0,
                 space=None, listed=None):
    """Level (int8) of every pair of dictionary-coded strings.

    ``dictionary``: one :func:`utf32_column` of distinct strings shared by both sides (equal
    codes are equal strings: similarity 1 without comparing); ``left_codes``/``right_codes``:
    per row its string's index, -1 for null. ``part`` 1 (surname) or 2 (given name) compares
    that part of each name, split per pair by :func:`_split` from ``space`` (per dictionary
    string: code-point index of its space, -1 none) and ``listed`` (index after its listed
    surname, -1 none); a pair neither of whose names can be split gets ``LEVEL_NULL``."""
    cdef const int32_t[::1] cp = dictionary[0] if dictionary[0].size else np.zeros(1, np.int32)
    cdef const int64_t[::1] off = dictionary[1]
    cdef Py_ssize_t k, n = li.shape[0]
    cdef Py_ssize_t nd = off.shape[0] - 1
    if ri.shape[0] != n:
        raise ValueError("index arrays differ in length")
    if n and (np.min(li) < 0 or np.max(li) >= left_codes.shape[0] or np.min(ri) < 0
              or np.max(ri) >= right_codes.shape[0]):
        raise IndexError("pair index out of range")
    if (left_codes.shape[0] and np.max(left_codes) >= nd) or (
            right_codes.shape[0] and np.max(right_codes) >= nd):
        raise IndexError("string code out of range")
    if part not in (0, 1, 2):
        raise ValueError("part must be 0 (whole), 1 (surname) or 2 (given name)")
    if part:
        space = np.ascontiguousarray(space, dtype=np.int32)
        listed = np.ascontiguousarray(listed, dtype=np.int32)
        if space.shape[0] != nd or listed.shape[0] != nd:
            raise ValueError("space and listed need one position per dictionary string")
    else:
        space = listed = np.zeros(1, np.int32)
    cdef const int32_t[::1] sp = space if space.size else np.zeros(1, np.int32)
    cdef const int32_t[::1] ls = listed if listed.size else np.zeros(1, np.int32)
    maxlen = int(np.max(np.diff(dictionary[1]))) if nd else 0
    lvl_np = np.empty(n, dtype=np.int8)
    fa_np = np.zeros(maxlen + 1, dtype=np.uint8)
    fb_np = np.zeros(maxlen + 1, dtype=np.uint8)
    row_np = np.zeros(maxlen + 1, dtype=np.int64)
    cdef int8_t[::1] lvl = lvl_np
    cdef uint8_t[::1] fa = fa_np
    cdef uint8_t[::1] fb = fb_np
    cdef int64_t[::1] row = row_np
    cdef int32_t x, y
    cdef int64_t la, lb, sa, ga, sb, gb, pa_, pb_
    cdef double s
    cdef const int32_t *base = &cp[0]
    with nogil:
        for k in range(n):
            x = left_codes[li[k]]
            y = right_codes[ri[k]]
            if x < 0 or y < 0:
                lvl[k] = C_NULL
                continue
            la = off[x + 1] - off[x]
            lb = off[y + 1] - off[y]
            pa_ = off[x]
            pb_ = off[y]
            if part:
                if not _split(x, y, la, &sp[0], &ls[0], &sa, &ga) or not _split(
                        y, x, lb, &sp[0], &ls[0], &sb, &gb):
                    lvl[k] = C_NULL
                    continue
                if x == y:
                    lvl[k] = _level(1.0, &thresholds[0], thresholds.shape[0])
                    continue
                if part == 1:
                    la = sa
                    lb = sb
                else:
                    pa_ += ga
                    pb_ += gb
                    la -= ga
                    lb -= gb
            elif x == y:
                lvl[k] = _level(1.0, &thresholds[0], thresholds.shape[0])
                continue
            s = _similarity(method, base + pa_, la, base + pb_, lb, &fa[0], &fb[0], &row[0],
                            prefix_weight)
            lvl[k] = _level(s, &thresholds[0], thresholds.shape[0])
    return lvl_np


def exact_levels(const int64_t[::1] left_codes, const int64_t[::1] right_codes,
                 const int64_t[::1] li, const int64_t[::1] ri):
    """Level 1 where the codes agree, 0 where not, -1 where a code is negative (null)."""
    cdef Py_ssize_t k, n = li.shape[0]
    lvl_np = np.empty(n, dtype=np.int8)
    cdef int8_t[::1] lvl = lvl_np
    cdef int64_t x, y
    with nogil:
        for k in range(n):
            x = left_codes[li[k]]
            y = right_codes[ri[k]]
            if x < 0 or y < 0:
                lvl[k] = C_NULL
            else:
                lvl[k] = 1 if x == y else 0
    return lvl_np


cdef inline void _civil(int64_t z, int64_t* y, int64_t* m, int64_t* d) noexcept nogil:
    """Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef int64_t era, doe, yoe, doy, mp
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d[0] = doy - (153 * mp + 2) // 5 + 1
    m[0] = mp + 3 if mp < 10 else mp - 9
    y[0] = yoe + era * 400 + (1 if m[0] <= 2 else 0)


cdef inline int _digits_differ(int64_t x, int64_t y) noexcept nogil:
    """How many of the 8 decimal digits of two YYYYMMDD numbers differ."""
    cdef int count = 0, i
    for i in range(8):
        if x % 10 != y % 10:
            count += 1
        x //= 10
        y //= 10
    return count


def date_levels(const int32_t[::1] left_days, const uint8_t[::1] left_valid,
                const int32_t[::1] right_days, const uint8_t[::1] right_valid,
                const int64_t[::1] li, const int64_t[::1] ri, bint fine=False):
    """Date levels: 3 same, 2 day and month swapped, 1 one digit of YYYYMMDD off, 0 else.

    ``fine``: 5 same, 4 swapped, 3 one digit off, 2 same year and month, 1 within 365 days,
    0 else (the highest that applies)."""
    cdef Py_ssize_t k, n = li.shape[0]
    lvl_np = np.empty(n, dtype=np.int8)
    cdef int8_t[::1] lvl = lvl_np
    cdef int64_t a, b, y1, m1, d1, y2, m2, d2, gap
    cdef bint one_digit
    with nogil:
        for k in range(n):
            a = li[k]
            b = ri[k]
            if not left_valid[a] or not right_valid[b]:
                lvl[k] = C_NULL
                continue
            if left_days[a] == right_days[b]:
                lvl[k] = C_FINE_SAME if fine else C_DATE_SAME
                continue
            _civil(left_days[a], &y1, &m1, &d1)
            _civil(right_days[b], &y2, &m2, &d2)
            if y1 == y2 and m1 == d2 and d1 == m2:
                lvl[k] = C_FINE_SWAPPED if fine else C_DATE_SWAPPED
                continue
            one_digit = (y1 >= 0 and y2 >= 0 and y1 <= 9999 and y2 <= 9999 and _digits_differ(
                y1 * 10000 + m1 * 100 + d1, y2 * 10000 + m2 * 100 + d2) == 1)
            if not fine:
                lvl[k] = C_DATE_ONE_DIGIT if one_digit else C_DATE_ELSE
            elif one_digit:
                lvl[k] = C_FINE_ONE_DIGIT
            elif y1 == y2 and m1 == m2:
                lvl[k] = C_FINE_YEAR_MONTH
            else:
                gap = <int64_t>left_days[a] - <int64_t>right_days[b]
                lvl[k] = C_FINE_WITHIN_YEAR if -365 <= gap <= 365 else C_FINE_ELSE
    return lvl_np
