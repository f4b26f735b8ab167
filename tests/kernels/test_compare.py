"""Comparison kernel: each method and level, compiled == twin, and agreement with rapidfuzz."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikou.kernels import _compare_py, compare
from ikou.kernels._match_common import MatchConfigError, level_from_similarity
from ikou.kernels.compare import (
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
    CodedStrings,
    StringColumn,
    coded_levels,
    date_levels,
    exact_codes,
    exact_levels,
    string_levels,
)

_CODES = {"exact": 0, "jaro_winkler": 1, "levenshtein": 2}


@pytest.mark.skipif(os.environ.get("IKOU_PURE_PYTHON") == "1", reason="pure-Python run")
def test_compiled_kernel_is_loaded():
    from ikou.kernels import _compare

    assert compare.KERNEL_IMPL == "compiled"
    assert _compare.CYTHON_MODULE == 1
    assert not _compare.__file__.endswith(".py")


def _pairwise(a, b, method, thresholds=(1.0, 0.9, 0.8)):
    idx = np.arange(len(a))
    return string_levels(pa.array(a, pa.string()), pa.array(b, pa.string()), idx, idx, method,
                         thresholds)


def test_jaro_winkler_known_values():
    sim, lvl = _pairwise(["MARTHA", "DWAYNE", "DIXON", "イイヅカ", "", "abc", None],
                         ["MARHTA", "DUANE", "DICKSONX", "イイヅカ", "", "", "x"], "jaro_winkler")
    assert sim[:3] == pytest.approx([0.9611111, 0.84, 0.8133333], abs=1e-6)  # Winkler (1990)
    assert sim[3] == 1.0 and sim[4] == 1.0 and sim[5] == 0.0
    assert np.isnan(sim[6])
    assert lvl.tolist() == [2, 1, 1, 3, 3, 0, LEVEL_NULL]


def test_levenshtein_known_values():
    sim, lvl = _pairwise(["kitten", "イイヅカ", "髙橋", "", "ab"],
                         ["sitting", "イイツカ", "高橋", "", "ba"], "levenshtein", (1.0, 0.7))
    assert sim == pytest.approx([1 - 3 / 7, 0.75, 0.5, 1.0, 0.0])
    assert lvl.tolist() == [0, 1, 0, 2, 0]


def test_exact_string_method_and_levels_at_thresholds():
    sim, lvl = _pairwise(["山田", "山田", "山田 "], ["山田", "山本", "山田"], "exact", (1.0,))
    assert sim.tolist() == [1.0, 0.0, 0.0] and lvl.tolist() == [1, 0, 0]
    th = [0.9, 0.5]
    assert [level_from_similarity(s, th) for s in (0.9, 0.89, 0.5, 0.49, float("nan"))] == [
        2, 1, 1, 0, LEVEL_NULL]


def test_pairs_index_into_columns_and_string_column_reuse():
    left = StringColumn(pa.array(["アベ", "イトウ", "ウエダ"]))
    right = StringColumn(pa.chunked_array([pa.array(["イトー"]), pa.array(["アベ", None])]))
    li = np.array([0, 1, 1, 2])
    ri = np.array([1, 0, 2, 1])
    sim, lvl = string_levels(left, right, li, ri, "levenshtein", [1.0, 0.6])
    assert sim[0] == 1.0 and sim[1] == pytest.approx(2 / 3) and np.isnan(sim[2])
    assert lvl.tolist() == [2, 1, LEVEL_NULL, 0]


def test_errors():
    a = pa.array(["x"])
    with pytest.raises(MatchConfigError, match="unknown string comparison"):
        string_levels(a, a, [0], [0], "soundex")
    with pytest.raises(MatchConfigError, match="descending"):
        string_levels(a, a, [0], [0], "jaro_winkler", [0.8, 0.9])
    with pytest.raises(MatchConfigError, match=r"\[0, 1\]"):
        string_levels(a, a, [0], [0], "jaro_winkler", [1.5])
    with pytest.raises(MatchConfigError, match="string columns"):
        string_levels(pa.array([1]), a, [0], [0], "exact")
    with pytest.raises(IndexError):
        string_levels(a, a, [0], [1], "exact")
    with pytest.raises(ValueError, match="same length"):
        string_levels(a, a, [0, 0], [0], "exact")
    with pytest.raises(MatchConfigError, match="date32"):
        date_levels(a, a, [0], [0])
    with pytest.raises(MatchConfigError, match="cannot compare"):
        exact_levels(pa.array([dt.date(2000, 1, 1)]), pa.array([[1]]), [0], [0])


def test_date_levels():
    d = dt.date
    left = pa.array([d(1980, 3, 4)] * 5 + [None, d(1999, 12, 31)])
    right = pa.array([d(1980, 3, 4), d(1980, 4, 3), d(1981, 3, 4), d(1980, 3, 14),
                      d(1991, 3, 4), d(1980, 3, 4), None])
    idx = np.arange(7)
    assert date_levels(left, right, idx, idx).tolist() == [
        DATE_SAME, DATE_SWAPPED, DATE_ONE_DIGIT, DATE_ONE_DIGIT, DATE_ELSE, LEVEL_NULL,
        LEVEL_NULL]
    ts = pa.array([dt.datetime(1980, 3, 4, 12)], pa.timestamp("s"))
    assert date_levels(ts, left, [0], [0]).tolist() == [DATE_SAME]


def test_fine_date_levels():
    """Six levels, the highest that applies: same, swapped, one digit, year+month, a year."""
    d = dt.date
    left = pa.array([d(1980, 3, 4)] * 8 + [None])
    right = pa.array([d(1980, 3, 4), d(1980, 4, 3), d(1981, 3, 4), d(1980, 3, 14),
                      d(1980, 3, 27), d(1980, 12, 30), d(1979, 2, 27), d(1991, 3, 4), d(1980, 1, 1)])
    idx = np.arange(9)
    assert date_levels(left, right, idx, idx, fine=True).tolist() == [
        FINE_SAME, FINE_SWAPPED, FINE_ONE_DIGIT, FINE_ONE_DIGIT, FINE_YEAR_MONTH,
        FINE_WITHIN_YEAR, FINE_ELSE, FINE_ELSE, LEVEL_NULL]
    # the basic levels are unchanged by the new ones
    assert date_levels(left, right, idx, idx).tolist() == [
        DATE_SAME, DATE_SWAPPED, DATE_ONE_DIGIT, DATE_ONE_DIGIT, DATE_ELSE, DATE_ELSE,
        DATE_ELSE, DATE_ELSE, LEVEL_NULL]


def test_exact_levels_any_type():
    idx = np.arange(4)
    assert exact_levels(pa.array([1, 2, None, 4]), pa.array([1, 3, 3, None]), idx, idx).tolist() \
        == [1, 0, LEVEL_NULL, LEVEL_NULL]
    left = pa.array(["M", "F", "M", None]).dictionary_encode()
    right = pa.array(["M", "M", "F", "F"])
    assert exact_levels(left, right, idx, idx).tolist() == [1, 0, 0, LEVEL_NULL]
    lc, rc = exact_codes(pa.array(["a", "b"]), pa.array(["b", None]))
    assert lc[1] == rc[0] and rc[1] == -1
    assert exact_levels(lc, rc, [1, 0], [0, 0]).tolist() == [1, 0]


# --- compiled == twin, and agreement with rapidfuzz ------------------------------------------

_TEXT = st.text(st.sampled_from(list("アイウカガキabcー髙高 ")) | st.characters(codec="utf-8"),
                max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    left=st.lists(st.none() | _TEXT, min_size=1, max_size=6),
    right=st.lists(st.none() | _TEXT, min_size=1, max_size=6),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12),
    method=st.sampled_from(sorted(_CODES)),
    prefix_weight=st.sampled_from([0.0, 0.1, 0.25]),
)
def test_compiled_equals_twin(left, right, pairs, method, prefix_weight):
    li = np.array([p[0] % len(left) for p in pairs], dtype=np.int64)
    ri = np.array([p[1] % len(right) for p in pairs], dtype=np.int64)
    th = [1.0, 0.9, 0.75]
    sim, lvl = string_levels(pa.array(left, pa.string()), pa.array(right, pa.string()), li, ri,
                             method, th, prefix_weight)
    a = _compare_py.utf32_column(pa.array(left, pa.string()))
    b = _compare_py.utf32_column(pa.array(right, pa.string()))
    sim2, lvl2 = _compare_py.string_levels(a, b, li, ri, _CODES[method], th, prefix_weight)
    np.testing.assert_array_equal(sim, sim2)  # bit for bit, NaN where null
    np.testing.assert_array_equal(lvl, lvl2)


@settings(max_examples=150, deadline=None)
@given(a=_TEXT, b=_TEXT)
def test_agrees_with_rapidfuzz(a, b):
    rapidfuzz = pytest.importorskip("rapidfuzz")
    sim_jw, _ = _pairwise([a], [b], "jaro_winkler")
    sim_lev, _ = _pairwise([a], [b], "levenshtein")
    jw = rapidfuzz.distance.JaroWinkler.normalized_similarity(a, b)
    lev = rapidfuzz.distance.Levenshtein.normalized_similarity(a, b)
    assert sim_jw[0] == pytest.approx(jw, abs=1e-9)
    assert sim_lev[0] == pytest.approx(lev, abs=1e-9)


_DAY = st.integers(-800_000, 3_000_000)  # years about -220 .. 10183


@settings(max_examples=150, deadline=None)
@given(
    days=st.lists(st.tuples(_DAY | st.none(), _DAY | st.none()), min_size=1, max_size=10),
    swap=st.booleans(),
    fine=st.booleans(),
    near=st.integers(-400, 400),
)
def test_dates_compiled_equals_twin(days, swap, fine, near):
    left = [x for x, _ in days]
    right = [y for _, y in days]
    if swap:  # make day/month swaps and one-digit typos likely

        def twist(i, x):
            if x is None:
                return None
            y, m, d = _compare_py._civil(x)
            if i % 3 == 1 and 1 <= y <= 9999 and d <= 12:
                return (dt.date(y, d, m) - dt.date(1970, 1, 1)).days
            return x + (10 if i % 3 == 0 else near)  # same month, within a year, or beyond

        right = [twist(i, x) for i, x in enumerate(left)]
    la = pa.array(left, pa.int32()).cast(pa.date32())
    ra = pa.array(right, pa.int32()).cast(pa.date32())
    idx = np.arange(len(left))
    got = date_levels(la, ra, idx, idx, fine=fine)
    lv = np.array([x is not None for x in left], np.uint8)
    rv = np.array([x is not None for x in right], np.uint8)
    ld = np.array([x or 0 for x in left], np.int32)
    rd = np.array([x or 0 for x in right], np.int32)
    np.testing.assert_array_equal(got, _compare_py.date_levels(ld, lv, rd, rv, idx, idx, fine))


def test_threads_share_columns_and_agree():
    """The loops run without the GIL; two threads over one decoded column give the same result."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("アイウエオカキクケコ髙高"), rng.integers(0, 9)))
             for _ in range(500)]
    col = StringColumn(pa.array(words))
    li = rng.integers(0, 500, 20_000)
    ri = rng.integers(0, 500, 20_000)
    whole = string_levels(col, col, li, ri, "jaro_winkler", [0.9, 0.7])[0]
    with ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(
            lambda s: string_levels(col, col, li[s], ri[s], "jaro_winkler", [0.9, 0.7])[0],
            [slice(0, 10_000), slice(10_000, None)]))
    np.testing.assert_array_equal(whole, np.concatenate(parts))


@settings(max_examples=60, deadline=None)
@given(
    left=st.lists(st.text(st.sampled_from(list("アイウエオカ髙高ab")), min_size=55, max_size=80),
                  min_size=1, max_size=3),
    right=st.lists(st.text(st.sampled_from(list("アイウエオカ髙高ab")), min_size=55, max_size=80),
                   min_size=1, max_size=3),
)
def test_long_strings_compiled_equals_twin(left, right):
    """Strings longer than 64 code points take the kernel's array path instead of bit masks."""
    li = np.repeat(np.arange(len(left)), len(right))
    ri = np.tile(np.arange(len(right)), len(left))
    for method in ("jaro_winkler", "levenshtein"):
        sim, _ = string_levels(pa.array(left), pa.array(right), li, ri, method, [0.9])
        a = _compare_py.utf32_column(pa.array(left))
        b = _compare_py.utf32_column(pa.array(right))
        sim2, _ = _compare_py.string_levels(a, b, li, ri, _CODES[method], [0.9])
        np.testing.assert_array_equal(sim, sim2)


def test_empty_string_at_the_end_of_the_column():
    # An empty last string starts one past the end of the code-point buffer (found by the
    # bounds-checked build, `make debug-test`).
    left = pa.array([None, "0", ""], pa.string())
    right = pa.array([""], pa.string())
    li, ri = np.array([2, 1], dtype=np.int64), np.array([0, 0], dtype=np.int64)
    a, b = _compare_py.utf32_column(left), _compare_py.utf32_column(right)
    for method in ("jaro_winkler", "levenshtein"):
        sim, lvl = string_levels(left, right, li, ri, method, [1.0, 0.9, 0.75], 0.1)
        sim2, lvl2 = _compare_py.string_levels(a, b, li, ri, _CODES[method], [1.0, 0.9, 0.75], 0.1)
        np.testing.assert_array_equal(sim, sim2)
        np.testing.assert_array_equal(lvl, lvl2)
        assert lvl[1] == 0


# --- dictionary-coded strings and name parts split per pair ----------------------------------

def _coded(left, right):
    strings = CodedStrings(pa.array(left, pa.string()), pa.array(right, pa.string()))
    values = strings.values.to_pylist()
    space = [v.find(" ") for v in values]
    # listed surnames: the first two code points of names starting with 佐藤 / 高橋
    listed = [2 if " " not in v and v[:2] in ("佐藤", "高橋") and len(v) > 2 else -1
              for v in values]
    strings.set_parts(space, listed)
    return strings


def test_coded_levels_split_as_the_other_name_is_split():
    left = ["佐藤 一郎", "高橋 一郎", "鈴木 花子", "ABCDEF", None]
    right = ["佐藤太郎", "高橋一郎", "鈴木花子", "ABCDEF", "佐藤"]
    s = _coded(left, right)
    li = np.array([0, 1, 2, 3, 4, 0], np.int64)
    ri = np.array([0, 1, 2, 3, 0, 4], np.int64)
    sur = coded_levels(s, li, ri, "jaro_winkler", [1.0, 0.75], part="surname")
    giv = coded_levels(s, li, ri, "jaro_winkler", [1.0, 0.75], part="given")
    # 佐藤太郎 split as 佐藤 一郎 is: one surname, two given names (no listed surname needed:
    # 鈴木花子 is split by 鈴木 花子's space); ABCDEF on both sides cannot be split (null);
    # 佐藤 (no space, nothing listed, too short for 佐藤 一郎's split) has no parts
    assert sur.tolist() == [2, 2, 2, LEVEL_NULL, LEVEL_NULL, LEVEL_NULL]
    assert giv.tolist()[:4] == [0, 2, 2, LEVEL_NULL]
    whole = coded_levels(s, li, ri, "jaro_winkler", [1.0, 0.75])
    assert whole.tolist()[3:5] == [2, LEVEL_NULL]  # equal codes: equal strings


@settings(max_examples=150, deadline=None)
@given(
    left=st.lists(st.none() | _TEXT, min_size=1, max_size=6),
    right=st.lists(st.none() | _TEXT, min_size=1, max_size=6),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12),
    method=st.sampled_from(sorted(_CODES)),
    part=st.sampled_from([0, 1, 2]),
    cuts=st.lists(st.integers(-1, 4), min_size=12, max_size=12),
)
def test_coded_compiled_equals_twin(left, right, pairs, method, part, cuts):
    from ikou.kernels import _compare

    li = np.array([p[0] % len(left) for p in pairs], dtype=np.int64)
    ri = np.array([p[1] % len(right) for p in pairs], dtype=np.int64)
    th = np.array([1.0, 0.9, 0.75])
    s = CodedStrings(pa.array(left, pa.string()), pa.array(right, pa.string()))
    values = s.values.to_pylist()
    # positions within each string (as a split of collapsed names gives: space not first)
    space = [v.find(" ") if v.find(" ") > 0 else -1 for v in values]
    listed = [c if 0 < c < len(v) else -1 for c, v in zip(cuts, values, strict=False)]
    args = (s.codes_left, s.codes_right, li, ri, _CODES[method], th, 0.1, part,
            np.array(space, np.int32), np.array(listed, np.int32))
    want = _compare_py.coded_levels(_compare_py.utf32_column(s.values), *args)
    got = _compare.coded_levels(_compare.utf32_column(s.values), *args)
    np.testing.assert_array_equal(got, want)
    if part == 0:  # the same levels as comparing the strings themselves
        _, lvl = string_levels(pa.array(left, pa.string()), pa.array(right, pa.string()), li,
                               ri, method, th)
        np.testing.assert_array_equal(got, lvl)
