"""Tax, 国保 and 住登外 exports of the synthetic municipality (ikou.pipeline.synth.sources),
re-read here with CPython's codecs and an independent packed/zoned reader (no ikou.kernels)."""

import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
import yaml
from test_synth import decode_field, is_lead, load_expected, read_gaiji

from ikou.pipeline.steps.checkdigit import is_valid_mod11
from ikou.pipeline.synth.municipality import ALL_SOURCES, SynthError, generate_municipality
from ikou.pipeline.synth.sources import (
    JUTOGAI_KINDS,
    KOKUHO_HIHOKENSHA_KINDS,
    KOKUHO_SETAI_KINDS,
    TAX_KINDS,
    packed_bytes,
    zoned_bytes,
)

KINDS = {"zei": TAX_KINDS, "kokuho_setai": KOKUHO_SETAI_KINDS,
         "kokuho_hihokensha": KOKUHO_HIHOKENSHA_KINDS, "jutogai": JUTOGAI_KINDS}
NEW = tuple(KINDS)


# --- an independent packed / zoned reader ----------------------------------------------------
def read_packed(raw, signed):
    h = raw.hex().upper()
    digits, sign = h[:-1], h[-1]
    assert digits.isdigit()
    assert sign in ("CD" if signed else "F")
    return -int(digits) if sign == "D" else int(digits)


def read_zoned(raw, signed):
    text = raw.decode("ascii")
    if not signed:
        assert text.isdigit()
        return int(text)
    last = text[-1]
    if last in "{ABCDEFGHI":
        return int(text[:-1] + str("{ABCDEFGHI".index(last)))
    assert last in "}JKLMNOPQR"
    return -int(text[:-1] + str("}JKLMNOPQR".index(last)))


def decode_any(raw, fdef, gaiji):
    ftype = fdef[4]
    if ftype in ("packed", "zoned"):
        opts = fdef[5]
        v = (read_packed if ftype == "packed" else read_zoned)(raw, opts["signed"])
        return str(Decimal(v).scaleb(-opts["scale"]))
    return decode_field(raw, ftype, gaiji)


@pytest.fixture(scope="module")
def muni(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("all"), 2500, seed=21, corrupt_share=0.02,
                                 sources=ALL_SOURCES)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("keys"), 2500, seed=21,
                                 key_error_share=0.2, sources=("juki", "tax", "kokuho"))


def test_packed_and_zoned_conventions():
    assert zoned_bytes(1230, 6, True) == b"00123{"
    assert zoned_bytes(-1234, 6, True) == b"00123M"
    assert zoned_bytes(9, 2, True) == b"0I"
    assert zoned_bytes(5, 4, False) == b"0005"
    assert packed_bytes(12345, 3, True) == b"\x12\x34\x5c"
    assert packed_bytes(-12345, 3, True) == b"\x12\x34\x5d"
    assert packed_bytes(7, 2, False) == b"\x00\x7f"
    for bad in (lambda: zoned_bytes(-1, 3, False), lambda: packed_bytes(-1, 3, False),
                lambda: zoned_bytes(1000, 3, True), lambda: packed_bytes(1000, 2, True)):
        with pytest.raises(SynthError):
            bad()


def check_source(files, gaiji):
    kinds = KINDS[files.name]
    length = kinds["data"][1][-1][2] + kinds["data"][1][-1][3]
    stride = length + 2
    data = files.export.read_bytes()
    assert len(data) == files.records * stride
    recs = [data[i:i + length] for i in range(0, len(data), stride)]
    assert all(data[i + length:i + stride] == b"\r\n" for i in range(0, len(data), stride))
    types = [r[:1] for r in recs]
    assert types == [b"1"] + [b"2"] * files.data_records + [b"9"]
    assert int(recs[-1][1:9]) == files.data_records
    expected = load_expected(files.expected)
    assert len(expected) == len(recs)
    for e, rec in zip(expected, recs, strict=True):
        assert e["fate"] == "row" and e["offset"] == (e["record"] - 1) * stride
        kind = e["kind"]
        got = {f[0]: decode_any(rec[f[2]:f[2] + f[3]], f, gaiji)
               for f in kinds[kind][1] if f[4] != "filler"}
        assert got == e["values"], (files.name, e["record"])
    return recs, expected


@pytest.mark.parametrize("name", NEW)
def test_expected_matches_bytes(muni, name):
    gaiji, _ = read_gaiji(muni.gaiji)
    files = muni.sources[name]
    assert files.data_records > 0
    recs, _ = check_source(files, gaiji)
    if name != "jutogai":  # these subsystems have no 外字 table
        for rec in recs:
            for f in KINDS[name]["data"][1]:
                if f[4] == "text":
                    raw = rec[f[2]:f[2] + f[3]]
                    i = 0
                    while i < len(raw):
                        assert not 0xF0 <= raw[i] <= 0xF9
                        i += 2 if is_lead(raw[i]) else 1


@pytest.mark.parametrize("name", NEW)
def test_layouts(muni, name):
    files = muni.sources[name]
    doc = yaml.safe_load(files.layout.read_text(encoding="utf-8"))
    for kind, (code, fields) in KINDS[name].items():
        assert doc["kinds"][kind]["code"] == code
        got = [{k: v for k, v in f.items() if k != "label"} for f in doc["kinds"][kind]["fields"]]
        want = [{"name": f[0], "offset": f[2], "length": f[3], "type": f[4],
                 **(f[5] if len(f) > 5 else {})} for f in fields]
        assert got == want


def test_layouts_load_with_project_loader(muni):
    kernels = pytest.importorskip("ikou.kernels")
    if not hasattr(kernels, "FieldSpec"):
        pytest.skip("the decoding kernel is not built yet")
    from ikou.pipeline.config.layout import load_layout

    for name in NEW:
        layout = load_layout(muni.sources[name].layout)
        assert layout.name == name
        assert {f.type for f in layout.kinds["data"].fields} <= {
            "text", "digits", "int", "date", "wareki", "filler", "zoned", "packed"}


def test_money_fields(muni):
    expected = [e["values"] for e in load_expected(muni.sources["zei"].expected)
                if e["kind"] == "data"]
    assert {v["shotokuwari_rate"] for v in expected} == {"0.060"}
    assert any(Decimal(v["total_income"]) < 0 for v in expected)
    assert any(Decimal(v["shotokuwari"]) < 0 for v in expected)
    assert all(Decimal(v["taxable_income"]) >= 0 and Decimal(v["kintowari"]) >= 0
               for v in expected)
    assert all(Decimal(v["annual_tax"]) == Decimal(v["shotokuwari"]) + Decimal(v["kintowari"])
               for v in expected)
    assert Counter(v["kazei_kubun"] for v in expected).keys() == {"1", "2", "3"}
    futan = {e["values"]["futan"] for e in load_expected(muni.sources["kokuho_hihokensha"].expected)
             if e["kind"] == "data"}
    assert futan == {"0.2", "0.3"}


def juki_people(g):
    """atena → (record, values) of the 住民記録 data records (from expected + raw bytes)."""
    data = g.export.read_bytes()
    people = {}
    for e in load_expected(g.expected):
        if e["kind"] != "data":
            continue
        atena = data[e["offset"] + 1:e["offset"] + 11].decode("ascii", "replace")
        people[atena] = (e["record"], e.get("values"))
    return people


def truth_lines(g):
    with open(g.truth, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_truth_points_at_the_right_people(muni):
    juki = juki_people(muni)
    jutogai = {e["values"]["atena_no"]: e["record"]
               for e in load_expected(muni.sources["jutogai"].expected) if e["kind"] == "data"}
    assert not set(jutogai) & set(juki)
    assert all(is_valid_mod11(a) for a in jutogai)
    truth = truth_lines(muni)
    by_file = defaultdict(dict)
    for t in truth:
        by_file[t["file"]][t["record"]] = t
    for name, key_field in (("zei", "atena_no"), ("kokuho_setai", "head_atena_no"),
                            ("kokuho_hihokensha", "atena_no")):
        records = [e for e in load_expected(muni.sources[name].expected) if e["kind"] == "data"]
        assert set(by_file[f"{name}.dat"]) == {e["record"] for e in records}
        for e in records:
            t = by_file[f"{name}.dat"][e["record"]]
            assert t["key"] == "valid" and e["values"][key_field] == t["atena_no"]
            if t["population"] == "juki":
                assert t["target_file"] == "juki.dat"
                assert juki[t["atena_no"]][0] == t["target_record"]
            else:
                assert t["target_file"] == "jutogai.dat"
                assert jutogai[t["atena_no"]] == t["target_record"]
    populations = Counter((t["file"], t["population"]) for t in truth)
    assert populations[("zei.dat", "jutogai")] == round(2500 * 0.02)
    assert populations[("kokuho_hihokensha.dat", "jutogai")] >= 1  # 住所地特例
    assert sum(t["spelling"] == "variant" for t in truth) > 0.02 * len(truth)
    # every 住登外 person is taxed or insured here
    assert {t["atena_no"] for t in truth if t["population"] == "jutogai"} == set(jutogai)


def test_tax_records_refer_to_adults_and_resident_details(muni):
    juki = juki_people(muni)
    for e in load_expected(muni.sources["zei"].expected):
        if e["kind"] != "data" or e["values"]["jumin_kubun"] != "1":
            continue
        _record, values = juki[e["values"]["atena_no"]]
        if values is None:  # a corrupt 住民記録 record: nothing to compare
            continue
        assert e["values"]["sex"] == values["sex"]
        assert e["values"]["postal_code"] == values["postal_code"]
        assert e["values"]["birth"]["status"] == "valid"
        assert int(e["values"]["birth"]["date"][:4]) <= 2007  # 18 or older on 2025-04-01


def test_kokuho_households(muni):
    setai = [e["values"] for e in load_expected(muni.sources["kokuho_setai"].expected)
             if e["kind"] == "data"]
    hiho = [e["values"] for e in load_expected(muni.sources["kokuho_hihokensha"].expected)
            if e["kind"] == "data"]
    members = defaultdict(list)
    for h in hiho:
        members[h["kokuho_no"]].append(h)
        assert h["shutoku"]["status"] == "valid"
        assert h["soshitsu"]["status"] in ("valid", "blank")
        if h["soshitsu"]["status"] == "valid":
            assert h["soshitsu"]["date"] > h["shutoku"]["date"]
    assert len({s["kokuho_no"] for s in setai}) == len(setai)
    for s in setai:
        group = members[s["kokuho_no"]]
        assert s["insured_count"] == len(group)
        head_insured = any(h["atena_no"] == s["head_atena_no"] for h in group)
        assert s["gisei"] == ("0" if head_insured else "1")
        assert s["shutoku"]["date"] == min(h["shutoku"]["date"] for h in group)
    assert {s["gisei"] for s in setai} == {"0", "1"}
    assert any(h["tokurei"] == "1" for h in hiho)
    assert any("ﾞ" in s["head_name_kana"] for s in setai)
    assert all(not any("\uff61" <= c <= "\uff9f" for c in h["name_kana"]) for h in hiho)


def test_key_errors(keyed):
    truth = truth_lines(keyed)
    keys = Counter(t["key"] for t in truth)
    n = len(truth)
    assert 0.15 * n < keys["missing"] + keys["mistyped"] < 0.25 * n
    assert keys["missing"] > 0.25 * (keys["missing"] + keys["mistyped"])
    by_file = defaultdict(dict)
    for t in truth:
        by_file[t["file"]][t["record"]] = t
    for name, field in (("zei", "atena_no"), ("kokuho_setai", "head_atena_no"),
                        ("kokuho_hihokensha", "atena_no")):
        for e in load_expected(keyed.sources[name].expected):
            if e["kind"] != "data":
                continue
            t = by_file[f"{name}.dat"][e["record"]]
            written = e["values"][field]
            if t["key"] == "missing":
                assert written is None
            elif t["key"] == "mistyped":
                assert written != t["atena_no"] and len(written) == 10 and written.isdigit()
                diff = [i for i in range(10) if written[i] != t["atena_no"][i]]
                assert len(diff) in (1, 2)
            else:
                assert written == t["atena_no"]


def test_juki_unchanged_by_sources(tmp_path, muni):
    only = generate_municipality(tmp_path / "only", 2500, seed=21, corrupt_share=0.02)
    for attr in ("export", "layout", "gaiji", "expected"):
        assert getattr(only, attr).read_bytes() == getattr(muni, attr).read_bytes()
    assert sorted(p.name for p in (tmp_path / "only").iterdir()) == [
        "expected.jsonl", "gaiji.csv", "juki.dat", "juki.layout.yaml"]
    assert only.truth is None and set(only.sources) == {"juki"}


def test_sources_deterministic(tmp_path):
    a = generate_municipality(tmp_path / "a", 300, seed=5, key_error_share=0.1, sources=ALL_SOURCES)
    b = generate_municipality(tmp_path / "b", 300, seed=5, key_error_share=0.1, sources=ALL_SOURCES)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(names) == 4 + 3 * 4 + 1
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a.truth.name == "truth.jsonl" and b.sources.keys() == a.sources.keys()


def test_tax_only(tmp_path):
    g = generate_municipality(tmp_path, 200, seed=5, sources=("juki", "tax"))
    assert set(g.sources) == {"juki", "zei", "jutogai"}
    assert {t["file"] for t in truth_lines(g)} == {"zei.dat"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sources": ("tax",)},
        {"sources": "juki"},
        {"sources": ("juki", "pension")},
        {"key_error_share": 2},
        {"key_error_share": -0.5},
    ],
)
def test_bad_source_arguments(tmp_path, kwargs):
    with pytest.raises(SynthError):
        generate_municipality(tmp_path / "out", 10, seed=1, **kwargs)
    assert not (tmp_path / "out").exists()


# --- source corruption (source_corrupt_share) --------------------------------------------------
CORRUPTIBLE = ("zei", "kokuho_setai", "kokuho_hihokensha")
KIND_CODES = {"invalid_bytes": "INVALID_BYTES", "not_digits": "NOT_DIGITS",
              "packed_digit": "NOT_DIGITS", "packed_sign": "INVALID_SIGN",
              "zoned_sign": "INVALID_SIGN"}


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("src-corrupt"), 2500, seed=21,
                                 corrupt_share=0.02, sources=ALL_SOURCES,
                                 source_corrupt_share=0.04)


def kernel_errors(files, gaiji_path):
    """record number → sorted (field, code) pairs the project's kernel reports (data records)."""
    kernels = pytest.importorskip("ikou.kernels")
    import numpy as np

    from ikou.pipeline.config.gaiji import load_gaiji_table
    from ikou.pipeline.config.layout import load_layout

    layout = load_layout(files.layout)
    plan = layout.plan("data", load_gaiji_table(gaiji_path).mapping)
    data = files.export.read_bytes()
    stride = layout.stride
    starts = np.arange(stride, len(data) - stride, stride, dtype=np.int64)  # data records
    res = kernels.decode_block(data, starts, plan)
    found = defaultdict(list)
    for row, field, code, _pos, _value, reject in res.errors:
        assert reject
        found[int(row) + 2].append((plan.fields[int(field)].name, kernels.ErrorCode(code).name))
    return {rec: sorted(v) for rec, v in found.items()}, len(starts)


@pytest.mark.parametrize("name", CORRUPTIBLE)
def test_source_corruption_where_expected_says(corrupted, name):
    files = corrupted.sources[name]
    expected = load_expected(files.expected)
    bad = {e["record"]: sorted((r["field"], r["code"]) for r in e["reasons"])
           for e in expected if e["fate"] == "quarantine"}
    assert all(e["kind"] == "data" for e in expected if e["fate"] == "quarantine")
    assert len(bad) == files.quarantined == sum(files.corruptions.values())
    assert 0.02 * files.data_records < len(bad) < 0.07 * files.data_records
    found, n = kernel_errors(files, corrupted.gaiji)
    assert n == files.data_records
    assert found == bad  # the same records, each with exactly the declared error
    assert all(len(reasons) == 1 for reasons in bad.values())
    # every kind this file can take was dealt (round-robin), with its code
    counts = files.corruptions
    assert max(counts.values()) - min(counts.values()) <= 1 and min(counts.values()) >= 1
    assert Counter(r[0][1] for r in bad.values()) == Counter(
        {code: sum(n for k, n in counts.items() if KIND_CODES[k] == code)
         for code in {KIND_CODES[k] for k in counts}})
    # the trailer counts the corrupt records too
    data = files.export.read_bytes()
    trailer = (files.records - 1) * (len(data) // files.records)
    assert data[trailer:trailer + 1] == b"9"
    assert int(data[trailer + 1:trailer + 9]) == files.data_records


@pytest.mark.parametrize("name", CORRUPTIBLE)
def test_source_corruption_leaves_other_records_alone(corrupted, muni, name):
    clean, dirty = muni.sources[name], corrupted.sources[name]
    assert clean.quarantined == 0 and clean.corruptions == {}
    assert (clean.records, clean.data_records) == (dirty.records, dirty.data_records)
    a, b = load_expected(clean.expected), load_expected(dirty.expected)
    length = clean.export.stat().st_size // clean.records
    ra, rb = clean.export.read_bytes(), dirty.export.read_bytes()
    changed = 0
    for ea, eb in zip(a, b, strict=True):
        x = ra[ea["offset"]:ea["offset"] + length]
        y = rb[eb["offset"]:eb["offset"] + length]
        if eb["fate"] == "row":
            assert eb == ea and x == y
        else:  # exactly the declared field differs
            changed += 1
            fdef = next(f for f in KINDS[name]["data"][1] if f[0] == eb["reasons"][0]["field"])
            diff = [i for i in range(length) if x[i] != y[i]]
            assert diff and all(fdef[2] <= i < fdef[2] + fdef[3] for i in diff)
    assert changed == dirty.quarantined > 0


def test_source_corruption_keeps_juki_and_jutogai_and_flags_truth(corrupted, muni):
    for name in ("juki", "jutogai"):
        for attr in ("export", "layout", "expected"):
            assert (getattr(corrupted.sources[name], attr).read_bytes()
                    == getattr(muni.sources[name], attr).read_bytes()), (name, attr)
    assert corrupted.gaiji.read_bytes() == muni.gaiji.read_bytes()
    assert corrupted.quarantined == muni.quarantined > 0  # the 住民記録 corruption is unchanged
    clean, dirty = truth_lines(muni), truth_lines(corrupted)
    assert len(clean) == len(dirty)
    quarantined = set()
    for t in corrupted.sources.values():
        if t.expected and t.name in CORRUPTIBLE:
            quarantined |= {(f"{t.name}.dat", e["record"]) for e in load_expected(t.expected)
                            if e["fate"] == "quarantine"}
    for ta, tb in zip(clean, dirty, strict=True):
        flagged = tb.pop("quarantined", False)
        assert tb == ta
        assert flagged is ((tb["file"], tb["record"]) in quarantined)
    assert sum(corrupted.quarantined_by_source.values()) == corrupted.quarantined + len(quarantined)


def test_source_corrupt_share_validated(tmp_path):
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(SynthError):
            generate_municipality(tmp_path / "out", 10, seed=1, sources=ALL_SOURCES,
                                  source_corrupt_share=bad)
    assert not (tmp_path / "out").exists()
