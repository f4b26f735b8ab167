"""The synthetic municipality generator (ikou.pipeline.synth.municipality), checked without ikou.kernels:
the bytes are re-read here with CPython's cp932 codec and the generated 外字 CSV."""

import csv
import json
from collections import Counter, defaultdict
from datetime import date

import pytest
import yaml

from ikou.pipeline.steps.checkdigit import Mod11Scheme, is_valid_mod11
from ikou.pipeline.synth.municipality import (
    CORRUPTION_KINDS,
    JUKI_KINDS,
    RECORD_LENGTH,
    SynthError,
    generate_municipality,
    wareki_value,
)

STRIDE = RECORD_LENGTH + 2
FIELDS = {kind: {f[0]: f for f in fields} for kind, (_c, fields) in JUKI_KINDS.items()}


# --- an independent reader -------------------------------------------------------------------
def is_lead(b):
    return 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC


def read_gaiji(path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {int(r["sjis"], 16): "".join(chr(int(t[2:], 16)) for t in r["unicode"].split())
            for r in rows}, rows


def decode_text(raw, gaiji):
    """CP932 with 外字 through the table; raises ValueError like the contract's error codes."""
    out, i = [], 0
    while i < len(raw):
        b = raw[i]
        if is_lead(b):
            if i + 1 >= len(raw):
                raise ValueError("CUT_DOUBLE_BYTE")
            code = (b << 8) | raw[i + 1]
            if 0xF0 <= b <= 0xF9:
                if code not in gaiji:
                    raise ValueError("UNMAPPED_GAIJI")
                out.append(gaiji[code])
            else:
                try:
                    out.append(raw[i:i + 2].decode("cp932"))
                except UnicodeDecodeError:
                    raise ValueError("INVALID_BYTES") from None
            i += 2
        else:
            out.append(raw[i:i + 1].decode("cp932"))
            i += 1
    return "".join(out).rstrip(" \u3000")


def decode_field(raw, ftype, gaiji):
    if ftype == "text":
        return decode_text(raw, gaiji)
    ascii_ = raw.decode("ascii")
    if ftype == "digits":
        if ascii_.strip() == "":
            return None
        if not ascii_.isdigit():
            raise ValueError("NOT_DIGITS")
        return ascii_
    if ftype == "int":
        return None if ascii_.strip() == "" else int(ascii_)
    if ftype == "date":
        if ascii_.strip() == "" or ascii_ == "00000000":
            return None
        try:
            return date(int(ascii_[:4]), int(ascii_[4:6]), int(ascii_[6:])).isoformat()
        except ValueError:
            raise ValueError("IMPOSSIBLE_DATE") from None
    if ftype == "wareki":
        return wareki_value(ascii_)
    raise AssertionError(ftype)


def records(data):
    return [data[i:i + RECORD_LENGTH] for i in range(0, len(data), STRIDE)]


def load_expected(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("clean"), 1500, seed=3)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("dirty"), 2000, seed=4, corrupt_share=0.05)


# --- tests -----------------------------------------------------------------------------------
def test_same_seed_same_bytes(tmp_path):
    a = generate_municipality(tmp_path / "a", 300, seed=9, corrupt_share=0.1)
    b = generate_municipality(tmp_path / "b", 300, seed=9, corrupt_share=0.1)
    c = generate_municipality(tmp_path / "c", 300, seed=10, corrupt_share=0.1)
    for name in ("export", "layout", "gaiji", "expected"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    assert a.export.read_bytes() != c.export.read_bytes()
    assert a.gaiji.read_bytes() != c.gaiji.read_bytes()


def test_clean_file_structure(clean):
    data = clean.export.read_bytes()
    assert len(data) == (1500 + 2) * STRIDE
    assert clean.records == 1502 and clean.quarantined == 0 and clean.corruptions == {}
    for i in range(1502):
        assert data[i * STRIDE + RECORD_LENGTH:(i + 1) * STRIDE] == b"\r\n"
    recs = records(data)
    assert [r[:1] for r in recs] == [b"1"] + [b"2"] * 1500 + [b"9"]
    assert int(recs[-1][1:9]) == 1500
    assert recs[0][1:7] == b"999016"


def test_check_digits_and_households(clean):
    recs = records(clean.export.read_bytes())[1:-1]
    gaiji, _ = read_gaiji(clean.gaiji)
    atena = [r[1:11].decode() for r in recs]
    assert len(set(atena)) == len(atena)
    households = defaultdict(list)
    for r in recs:
        assert is_valid_mod11(r[1:11].decode()) and is_valid_mod11(r[11:21].decode())
        households[r[11:21]].append(r)
    sizes = Counter()
    for members in households.values():
        heads = [m for m in members if m[109:111] == b"01"]
        assert len(heads) == 1
        assert 1 <= len(members) <= 6
        assert {int(m[246:249]) for m in members} == {len(members)}
        # one address per household (bytes may differ: NEC or IBM codes for the same character)
        assert len({decode_text(m[118:238], gaiji) for m in members}) == 1
        sizes[len(members)] += 1
    assert len(sizes) >= 5  # households of many sizes


def test_reject_scheme_never_issues_remainder_one(tmp_path):
    g = generate_municipality(tmp_path, 400, seed=1, check_scheme=Mod11Scheme(remainder_one="reject"))
    for r in records(g.export.read_bytes())[1:-1]:
        assert is_valid_mod11(r[1:11].decode(), Mod11Scheme(remainder_one="reject"))


def check_expected(g):
    data = g.export.read_bytes()
    gaiji, _rows = read_gaiji(g.gaiji)
    expected = load_expected(g.expected)
    assert [e["record"] for e in expected] == list(range(1, len(expected) + 1))
    assert len(expected) == g.records
    fates = Counter()
    for e in expected:
        rec = data[e["offset"]:e["offset"] + RECORD_LENGTH]
        assert e["offset"] == (e["record"] - 1) * STRIDE
        kind = {b"1": "header", b"2": "data", b"9": "trailer"}[rec[:1]]
        assert e["kind"] == kind
        fates[e["fate"]] += 1
        if e["fate"] == "row":
            assert len(rec) == RECORD_LENGTH
            got = {}
            for name, _label, off, length, ftype in JUKI_KINDS[kind][1]:
                if ftype != "filler":
                    got[name] = decode_field(rec[off:off + length], ftype, gaiji)
            assert got == e["values"], e["record"]
        else:
            assert e["kind"] == "data" and len(e["reasons"]) == 1
            reason = e["reasons"][0]
            if reason["code"] == "TRUNCATED_RECORD":
                assert reason["field"] is None
                assert 1 <= len(rec) < RECORD_LENGTH
                assert e["offset"] + len(rec) == len(data)  # the last record, no separator
                continue
            name, _label, off, length, ftype = FIELDS["data"][reason["field"]]
            with pytest.raises(ValueError, match=reason["code"]):
                decode_field(rec[off:off + length], ftype, gaiji)
            # every other field of the record decodes
            for other, _l, o, n, t in JUKI_KINDS["data"][1]:
                if other != reason["field"] and t != "filler":
                    decode_field(rec[o:o + n], t, gaiji)
    return expected, fates


def test_expected_matches_bytes_clean(clean):
    expected, fates = check_expected(clean)
    assert fates == {"row": 1502}


def test_expected_matches_bytes_dirty(dirty):
    expected, fates = check_expected(dirty)
    assert fates == {"row": 2 + 1900, "quarantine": 100}
    trailer = [e for e in expected if e["kind"] == "trailer"]
    assert trailer[0]["values"]["record_count"] == 2000
    assert expected[-1]["reasons"][0]["code"] == "TRUNCATED_RECORD"
    assert expected[-2]["kind"] == "trailer"


def test_corruptions_at_requested_share(dirty):
    expected = load_expected(dirty.expected)
    codes = Counter(e["reasons"][0]["code"] for e in expected if e["fate"] == "quarantine")
    assert sum(codes.values()) == round(0.05 * 2000) == dirty.quarantined
    assert codes["TRUNCATED_RECORD"] == 1
    in_place = [codes[c] for c in ("INVALID_BYTES", "UNMAPPED_GAIJI", "NOT_DIGITS",
                                   "CUT_DOUBLE_BYTE", "IMPOSSIBLE_DATE")]
    assert sum(in_place) == 99 and max(in_place) - min(in_place) <= 1
    assert dirty.corruptions["truncated"] == 1
    assert sum(dirty.corruptions.values()) == 100
    # spread over the file, not bunched at the start
    rows = [e["record"] for e in expected if e["fate"] == "quarantine"]
    assert min(rows) < 500 and max(rows[:-1]) > 1500
    # corrupt data records are still data records in the byte stream
    data = dirty.export.read_bytes()
    assert Counter(r[:1] for r in records(data)) == {b"1": 1, b"2": 2000, b"9": 1}


def test_selected_kinds_only(tmp_path):
    g = generate_municipality(tmp_path, 200, seed=2, corrupt_share=0.2,
                              corrupt_kinds=("not_digits",))
    expected, fates = check_expected(g)
    codes = Counter(e["reasons"][0]["code"] for e in expected if e["fate"] == "quarantine")
    assert codes == {"NOT_DIGITS": 39, "TRUNCATED_RECORD": 1}


def test_everything_corrupt_and_single_resident(tmp_path):
    g = generate_municipality(tmp_path / "all", 50, seed=2, corrupt_share=1.0)
    _expected, fates = check_expected(g)
    assert fates == {"row": 2, "quarantine": 50}
    one = generate_municipality(tmp_path / "one", 1, seed=2, corrupt_share=0.01)
    expected, fates = check_expected(one)
    assert [e["kind"] for e in expected] == ["header", "trailer", "data"]
    assert expected[1]["values"]["record_count"] == 1


def test_content_coverage(dirty):
    """The demo data exercises what the decoder must handle."""
    data = dirty.export.read_bytes()
    gaiji, _ = read_gaiji(dirty.gaiji)
    expected = load_expected(dirty.expected)
    rows = {e["record"]: e for e in expected if e["fate"] == "row" and e["kind"] == "data"}
    leads = Counter()
    for no in rows:
        rec = data[(no - 1) * STRIDE:(no - 1) * STRIDE + RECORD_LENGTH]
        for field in ("name_kanji", "address"):
            _n, _l, off, length, _t = FIELDS["data"][field]
            raw = rec[off:off + length]
            i = 0
            while i < len(raw):
                if is_lead(raw[i]):
                    leads[raw[i]] += 1
                    i += 2
                else:
                    i += 1
    assert sum(leads[b] for b in range(0xF0, 0xFA)) >= 10  # 外字
    assert leads[0xED] + leads[0xEE] >= 5  # NEC-selected IBM extensions
    assert leads[0xFA] + leads[0xFB] >= 5  # IBM extensions
    assert leads[0x87] >= 1  # NEC special characters (① Ⅱ)
    values = [e["values"] for e in rows.values()]
    names = "".join(v["name_kanji"] for v in values)
    assert any(ch in names for ch in ("\U00020BB7", "\U000E0100", "\U000E0101"))
    assert "髙" in names and "\ufa11" in names
    kana = "".join(v["name_kana"] for v in values)
    assert "ﾞ" in kana and "ﾟ" in kana
    statuses = Counter(v["birth"]["status"] for v in values)
    assert set(statuses) == {"valid", "impossible", "unknown", "out_of_era", "blank"}
    assert statuses["valid"] > 0.9 * len(values)
    raws = {v["birth"]["raw"] for v in values}
    assert raws & {"1450730", "2010730", "2151225", "3011225", "3640107", "4010108"}
    assert any(v["resident_since"] is None for v in values)
    assert any("\u3000" in v["address"] for v in values)  # 方書
    assert all(v["name_kanji"].count("\u3000") == 1 for v in values)
    from ikou.pipeline.synth.text import DATA_DIR, read_tsv

    codes = {row["code"] for row in read_tsv(DATA_DIR / "zokugara.tsv")}
    used = Counter(v["zokugara"] for v in values)
    assert set(used) <= codes and used["01"] > 0 and len(used) >= 8
    # many different 外字 of the table occur in names or addresses
    addresses = "".join(v["address"] for v in values)
    assert sum(ch in names or ch in addresses for ch in gaiji.values()) >= 8


@pytest.mark.parametrize(
    ("raw", "status", "iso"),
    [
        ("3540625", "valid", "1979-06-25"),
        ("1450730", "valid", "1912-07-30"),  # 明治45年7月30日, last day of 明治
        ("2010730", "valid", "1912-07-30"),  # 大正元年7月30日
        ("2151225", "valid", "1926-12-25"),
        ("3011225", "valid", "1926-12-25"),
        ("3640107", "valid", "1989-01-07"),
        ("4010108", "valid", "1989-01-08"),
        ("4310430", "valid", "2019-04-30"),
        ("5010501", "valid", "2019-05-01"),
        ("4120229", "valid", "2000-02-29"),
        ("3640108", "out_of_era", None),
        ("4310501", "out_of_era", None),
        ("1010101", "out_of_era", None),  # before 1868-01-25
        ("2160301", "out_of_era", None),
        ("5010430", "out_of_era", None),
        ("4110229", "impossible", None),  # 1999 is a common year
        ("3010230", "impossible", None),
        ("3011301", "impossible", None),
        ("6010101", "impossible", None),  # unknown era code
        ("3000000", "unknown", None),
        ("4999999", "unknown", None),
        ("3500015", "unknown", None),
        ("3501200", "unknown", None),
        ("       ", "blank", None),
        ("05010501", "valid", "2019-05-01"),  # 2-digit era code
    ],
)
def test_wareki_reference(raw, status, iso):
    assert wareki_value(raw) == {"date": iso, "raw": raw, "status": status}


def test_layout_and_gaiji_files(clean):
    doc = yaml.safe_load(clean.layout.read_text(encoding="utf-8"))
    assert doc["record_length"] == RECORD_LENGTH and doc["record_separator"] == "\r\n"
    assert doc["kinds"]["trailer"]["count_field"] == "record_count"
    for kind, (code, fields) in JUKI_KINDS.items():
        assert doc["kinds"][kind]["code"] == code
        got = [(f["name"], f["offset"], f["length"], f["type"]) for f in doc["kinds"][kind]["fields"]]
        assert got == [(f[0], f[2], f[3], f[4]) for f in fields]
    gaiji, rows = read_gaiji(clean.gaiji)
    assert 15 <= len(rows) <= 25
    assert all(0xF0 <= c >> 8 <= 0xF9 and (0x40 <= c & 0xFF <= 0x7E or 0x80 <= c & 0xFF <= 0xFC)
               for c in gaiji)
    assert sum(len(v) == 2 and 0xE0100 <= ord(v[1]) <= 0xE01EF for v in gaiji.values()) >= 3
    assert all(r["mj"] == "" or (r["mj"].startswith("MJ") and len(r["mj"]) == 8) for r in rows)
    assert all(r["note"] for r in rows)


def test_layout_and_gaiji_load_with_project_loaders(clean):
    kernels = pytest.importorskip("ikou.kernels")
    if not hasattr(kernels, "FieldSpec"):
        pytest.skip("the decoding kernel is not built yet (ikou.kernels.FieldSpec missing)")
    from ikou.pipeline.config.gaiji import load_gaiji
    from ikou.pipeline.config.layout import load_layout

    layout = load_layout(clean.layout)
    assert layout.stride == STRIDE and set(layout.kinds) == {"header", "data", "trailer"}
    primary = {code: v[0] if isinstance(v, tuple) else v
               for code, v in load_gaiji(clean.gaiji).items()}
    assert primary == read_gaiji(clean.gaiji)[0]


def test_without_expected(tmp_path):
    g = generate_municipality(tmp_path, 100, seed=1, write_expected=False)
    assert g.expected is None and not (tmp_path / "expected.jsonl").exists()
    assert g.export.stat().st_size == 102 * STRIDE


@pytest.mark.parametrize(
    "kwargs",
    [
        {"residents": 0, "seed": 1},
        {"residents": -5, "seed": 1},
        {"residents": "10", "seed": 1},
        {"residents": True, "seed": 1},
        {"residents": 10, "seed": -1},
        {"residents": 10, "seed": 1.5},
        {"residents": 10, "seed": 1, "corrupt_share": 1.5},
        {"residents": 10, "seed": 1, "corrupt_share": -0.1},
        {"residents": 10, "seed": 1, "corrupt_share": 0.1, "corrupt_kinds": ("fire",)},
        {"residents": 10, "seed": 1, "corrupt_kinds": ()},
    ],
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(SynthError) as info:
        generate_municipality(tmp_path / "out", **kwargs)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "out").exists()


def test_output_folder_problems(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(SynthError, match="cannot create output folder"):
        generate_municipality(blocker, 10, seed=1)
    with pytest.raises(SynthError, match="cannot create output folder"):
        generate_municipality(blocker / "below", 10, seed=1)
    (tmp_path / "out" / "juki.dat").mkdir(parents=True)  # a folder where the export goes
    with pytest.raises(SynthError, match="cannot write"):
        generate_municipality(tmp_path / "out", 10, seed=1)
    with pytest.raises(SynthError, match="check_scheme"):
        generate_municipality(tmp_path / "x", 10, seed=1, check_scheme="reject")


def test_corruption_kinds_are_documented():
    import ikou.pipeline.synth.municipality as synth

    for kind in (*CORRUPTION_KINDS, "truncated"):
        assert f"``{kind}``" in synth.__doc__


def test_word_lists_and_text_helpers():
    from ikou.pipeline.synth.text import (
        DATA_DIR,
        ibm_variant,
        load_targets,
        parse_pieces,
        read_tsv,
        to_halfwidth_kana,
    )

    assert to_halfwidth_kana("ガヴパー　イイヅカ") == "ｶﾞｳﾞﾊﾟｰ ｲｲﾂﾞｶ"
    for text in ("髙橋", "﨑", "德永", "Ⅱ"):
        nec = text.encode("cp932")
        ibm = ibm_variant(nec)
        assert ibm.decode("cp932") == text
        assert ibm != nec or not any(0xED <= b <= 0xEE for b in nec)
    assert ibm_variant("髙".encode("cp932")) == b"\xfb\xfc"
    assert parse_pieces("渡{g:U+9089 U+E0103}") == (("渡", False), ("邉\U000E0103", True))
    assert parse_pieces("山{U+FA11}") == (("山\ufa11", False),)
    with pytest.raises(SynthError):
        parse_pieces("山{U+FA11")

    targets = {"".join(chr(int(t[2:], 16)) for t in row["unicode"].split())
               for row in load_targets()}
    used = set()
    for name, column in (("surnames.tsv", "kanji"), ("given_male.tsv", "kanji"),
                         ("given_female.tsv", "kanji"), ("towns.tsv", "town")):
        for row in read_tsv(DATA_DIR / name):
            for piece, is_gaiji in parse_pieces(row[column]):
                if is_gaiji:
                    assert piece in targets, (name, row[column])
                    used.add(piece)
                else:
                    assert piece.encode("cp932").decode("cp932") == piece
            if "reading" in row:
                kana = to_halfwidth_kana(row["reading"])
                assert all("\uff61" <= c <= "\uff9f" for c in kana), row["reading"]
                assert int(row["weight"]) > 0
    assert used == targets  # every 外字 of the table occurs in the data
