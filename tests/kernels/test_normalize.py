"""Normalisation kernel: each rule, the variant tables, and compiled == pure-Python twin."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ikou.pipeline
from ikou.kernels import _normalize_py, normalize
from ikou.kernels._match_common import DELETE, TABLE_SIZE
from ikou.kernels.normalize import (
    MatchConfigError,
    NormalizeOptions,
    Normalizer,
    VariantTableError,
    load_variant_table,
)

VARIANT_DIR = Path(ikou.pipeline.__file__).parent / "data" / "variants"
VARIANTS = load_variant_table(*sorted(VARIANT_DIR.glob("*.csv")))


def norm(text, **opts):
    n = Normalizer(NormalizeOptions(**opts), variants=VARIANTS)
    out = n(pa.array([text], pa.string())).to_pylist()[0]
    assert out == n.normalize_str(text)  # array path and one-string path agree
    return out


@pytest.mark.skipif(os.environ.get("IKOU_PURE_PYTHON") == "1", reason="pure-Python run")
def test_compiled_kernel_is_loaded():
    from ikou.kernels import _normalize

    assert normalize.KERNEL_IMPL == "compiled"
    assert _normalize.CYTHON_MODULE == 1
    assert not _normalize.__file__.endswith(".py")


def test_width_folding():
    assert norm("ＡＢＣ１２３！") == "ABC123!"
    assert norm("ｶﾀｶﾅ") == "カタカナ"
    assert norm("ｶﾞｯｺｳ") == "ガッコウ"
    assert norm("ﾊﾟﾝ") == "パン"
    assert norm("ｳﾞｨ") == "ヴィ"
    assert norm("ｱﾞ") == "ア゛"  # no voiced form: the spacing mark is kept
    assert norm("ＡＢＣ", width=False) == "ＡＢＣ"
    assert norm("ｶﾞ", width=False) == "ｶﾞ"


def test_hiragana_to_katakana_and_marks():
    assert norm("やまだ たろう") == "ヤマダ タロウ"
    assert norm("やまだ", kana=False) == "やまだ"
    assert norm("か\u3099") == "ガ"  # combining mark merges
    assert norm("は゜") == "パ"  # spacing mark merges
    assert norm("ゝゞ") == "ヽヾ"


def test_voiced_fold():
    assert norm("イイヅカ", voiced="fold") == "イイツカ"
    assert norm("イイツカ", voiced="fold") == "イイツカ"
    assert norm("ﾊﾟﾋﾟﾌﾞ", voiced="fold") == "ハヒフ"
    assert norm("ヴ", voiced="fold") == "ウ"
    assert norm("か゛", voiced="fold") == "カ"


def test_small_kana_long_vowel_and_vu():
    assert norm("キャッシュ", small=True) == "キヤツシユ"
    assert norm("ｷｬｯｼｭ", small=False) == "キャッシュ"
    assert norm("オーノ", long_vowel="drop") == "オノ"
    assert norm("オーノ", long_vowel="vowel") == "オオノ"
    assert norm("ユーコ", long_vowel="vowel") == "ユウコ"
    assert norm("ンー", long_vowel="vowel") == "ン"
    assert norm("ー", long_vowel="vowel") == ""
    assert norm("ｵｰﾉ", long_vowel="keep") == "オーノ"
    assert norm("ヴィ", vu=True) == "ブィ"
    assert norm("ｳﾞｨ", vu=True) == "ブィ"


def test_whitespace():
    assert norm("　山田　　太郎　") == "山田 太郎"
    assert norm(" 山田\u3000太郎 ", whitespace="remove") == "山田太郎"
    assert norm("山田\u3000太郎", whitespace="keep") == "山田\u3000太郎"
    assert norm("   ") == ""


def test_kanji_variants():
    assert norm("髙橋") == "高橋"
    assert norm("山﨑") == norm("山崎") == norm("山嵜") == "山崎"
    assert norm("渡邊") == norm("渡邉") == norm("渡辺") == "渡辺"
    assert norm("齋藤") == norm("斎藤") == norm("斉藤") == norm("齊藤")
    assert norm("澤田 濱口 櫻井 廣瀬 國分 德永") == "沢田 浜口 桜井 広瀬 国分 徳永"
    assert norm("𠮷田") == "吉田"
    assert norm("\ufa10") == "\u585a"  # compatibility ideograph 塚
    assert norm("髙橋", variants=False) == "髙橋"
    assert norm("葛\U000E0100城") == "葛城"  # IVS selector dropped
    assert norm("葛\U000E0100", drop_variation_selectors=False) == "葛\U000E0100"


def test_upper_and_nulls_and_slices():
    n = Normalizer(NormalizeOptions(upper=True))
    arr = pa.array(["abc", None, "ｄｅｆ", "", "ｶﾞ"], pa.string())
    assert n(arr).to_pylist() == ["ABC", None, "DEF", "", "ガ"]
    assert n(arr.slice(1, 3)).to_pylist() == [None, "DEF", ""]
    assert n(pa.chunked_array([arr.slice(0, 2), arr.slice(2)])).to_pylist() == n(arr).to_pylist()
    assert n(arr.cast(pa.large_string())).to_pylist() == n(arr).to_pylist()
    assert n(pa.array([], pa.string())).to_pylist() == []


def test_malformed_utf8_is_replaced_not_read_past():
    raw = [b"\xffA", b"\xe3\x81", b"\xed\xa0\x80x", b"\xf0\x9f\x98", b"\xc0\xaf\xe0\x80", b"ok"]
    bounds = [0]
    for r in raw:
        bounds.append(bounds[-1] + len(r))
    data = pa.py_buffer(b"".join(raw))
    offsets = pa.array(bounds, pa.int32()).buffers()[1]
    arr = pa.Array.from_buffers(pa.string(), len(raw), [None, offsets, data])
    n = Normalizer()
    expected = [r.decode("utf-8", "replace") for r in raw]
    assert [n.normalize_str(e) for e in expected] == expected  # nothing else to fold here
    assert n(arr).to_pylist() == expected
    assert _normalize_py.normalize_array(arr, n.plan).to_pylist() == expected


def test_options_are_checked():
    with pytest.raises(MatchConfigError, match="voiced"):
        NormalizeOptions(voiced="drop")
    with pytest.raises(MatchConfigError, match="whitespace"):
        NormalizeOptions(whitespace="squash")
    with pytest.raises(MatchConfigError, match="unknown"):
        NormalizeOptions.from_mapping({"widht": True})
    with pytest.raises(MatchConfigError, match="string array"):
        Normalizer()(pa.array([1, 2]))
    assert issubclass(VariantTableError, ValueError)


def test_shipped_tables():
    assert len(VARIANTS) > 1200
    assert VARIANTS[ord("髙")] == ord("高")
    assert VARIANTS[ord("齋")] == VARIANTS[ord("斎")] == ord("斉")  # chain resolved
    for src, dst in VARIANTS.items():
        assert src != dst and dst not in VARIANTS


@pytest.mark.parametrize(
    "body, message",
    [
        ("variant,standard\n髙,高\n髙,崎\n", ":3: U\\+9AD9 already maps"),
        ("variant,standard\n高,高\n", ":2: maps U\\+9AD8 to itself"),
        ("variant,standard\nAB,高\n", ":2: expected one character"),
        ("variant,standard\nU+ZZ,高\n", ":2: bad code point"),
        ("variant,standard\n髙\n", ":2: expected at least 2 columns"),
        ("from,to\n髙,高\n", ":1: header must start"),
        ("# only a comment\n", "no header"),
        ("variant,standard\nA,B\nB,A\n", "cycle"),
    ],
)
def test_bad_variant_tables(tmp_path, body, message):
    path = tmp_path / "user.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(VariantTableError, match=message):
        load_variant_table(path)


def test_user_table_adds_rows(tmp_path):
    path = tmp_path / "user.csv"
    path.write_text("# municipality table\nvariant,standard,note\nU+E000,高,外字\n", encoding="utf-8")
    table = load_variant_table(VARIANT_DIR / "names.csv", path)
    assert table[0xE000] == ord("高")
    n = Normalizer(variants=table)
    assert n(pa.array(["\ue000橋"])).to_pylist() == ["高橋"]
    with pytest.raises(VariantTableError, match="file not found"):
        load_variant_table(tmp_path / "missing.csv")


# --- compiled == twin on arbitrary text -------------------------------------------------------

_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),  # kana + marks
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF9F),  # full-width ASCII, half kana
    st.sampled_from(list(" \u3000\t髙﨑邊邉辺齋斎斉澤濱櫻ーｰ\u3099\u309a\U000E0100\U00020BB7\uFA10")),
    st.characters(min_codepoint=0x31F0, max_codepoint=0x31FF),
    st.characters(codec="utf-8"),
)
_OPTIONS = st.builds(
    NormalizeOptions,
    width=st.booleans(),
    kana=st.booleans(),
    voiced=st.sampled_from(["keep", "fold"]),
    small=st.booleans(),
    long_vowel=st.sampled_from(["keep", "drop", "vowel"]),
    vu=st.booleans(),
    whitespace=st.sampled_from(["keep", "collapse", "remove"]),
    upper=st.booleans(),
    variants=st.booleans(),
    drop_variation_selectors=st.booleans(),
)
_PLANS: dict = {}


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), st.text(_ALPHABET, max_size=20)), max_size=8),
    opts=_OPTIONS,
    start=st.integers(0, 3),
)
def test_compiled_equals_twin(texts, opts, start):
    if opts not in _PLANS:
        _PLANS[opts] = Normalizer(opts, variants=VARIANTS)
    n = _PLANS[opts]
    arr = pa.array(texts, pa.string()).slice(min(start, len(texts)))
    got = n(arr)
    got.validate(full=True)
    assert got.to_pylist() == _normalize_py.normalize_array(arr, n.plan).to_pylist()


def test_table_is_well_formed():
    plan = Normalizer(NormalizeOptions(voiced="fold", whitespace="remove"), variants=VARIANTS).plan
    assert plan.table.shape == (TABLE_SIZE,)
    assert ((plan.table >= 0) | (plan.table == DELETE)).all()
    assert 1.0 <= plan.growth <= 4 / 3  # compatibility ideographs may move to plane 2


@settings(max_examples=100, deadline=None)
@given(raw=st.lists(st.binary(max_size=12), min_size=1, max_size=6), opts=_OPTIONS)
def test_compiled_equals_twin_on_arbitrary_bytes(raw, opts):
    if opts not in _PLANS:
        _PLANS[opts] = Normalizer(opts, variants=VARIANTS)
    n = _PLANS[opts]
    bounds = [0]
    for r in raw:
        bounds.append(bounds[-1] + len(r))
    arr = pa.Array.from_buffers(
        pa.string(),
        len(raw),
        [None, pa.array(bounds, pa.int32()).buffers()[1], pa.py_buffer(b"".join(raw) or b"\0")],
    )
    got = n(arr)
    got.validate(full=True)
    assert got.to_pylist() == _normalize_py.normalize_array(arr, n.plan).to_pylist()


def test_large_input_is_processed_in_slices(monkeypatch):
    texts = [f"ﾔﾏﾀﾞ　ﾀﾛｳ{i}" if i % 7 else None for i in range(500)]
    arr = pa.array(texts, pa.string())
    n = Normalizer(variants=VARIANTS)
    whole = n(arr)
    monkeypatch.setattr(normalize, "_SLICE_BYTES", 256)  # force many slices
    sliced = n(arr)
    sliced.validate(full=True)
    assert sliced.to_pylist() == whole.to_pylist()
    assert whole.to_pylist()[1] == "ヤマダ タロウ1"
