"""Cobrix's own test cases (tests/data/cobrix): import the copybook with ``ikou layout import``'s
converter, decode the data with ``ikou decode``, compare with the rows Cobrix's tests expect.

Where ikou is deliberately stricter than Cobrix (an invalid or blank number is an error, not a
null or a 0; an unmapped double-byte code is an error, not dropped), the test asserts that
exactly those records are quarantined, on exactly those fields, and that every other record
matches exactly. docs/copybooks.md lists the deviations.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.config.copybook import CopybookOptions, copybook_layout, dump_layout, parse_kind

from .harness import (
    DATA,
    conventional,
    differences,
    expected_lines,
    expected_objects,
    float32_names,
)

NOT_ROWS = ("_source", "_record", "_offset")


def decode_case(tmp: Path, copybook: Path, data: Path | bytes, *, trim: str = "both",
                null_low_values: bool = True, layout: dict | None = None,
                fields: dict | None = None, **options):
    """(rows by kind as Python dicts in file order, quarantined records, schemas by kind)."""
    kinds = tuple(parse_kind(k) for k in options.pop("kinds", ()))
    doc = copybook_layout(copybook, CopybookOptions(kinds=kinds, **options))
    doc["shape"] = "nested"
    doc.update(layout or {})
    for fs in ([doc["fields"]] if "fields" in doc else [k["fields"] for k in doc["kinds"].values()]):
        for f in fs:
            if f["type"] == "text":
                f["trim"] = "none"  # the case's trimming policy is applied to ikou's strings
                if null_low_values:  # Cobrix's improved_null_detection: all-0x00 -> null
                    f["low_value"] = "null"
            f.update((fields or {}).get(f["name"], {}))
    yaml_path = tmp / f"{doc['name']}.yaml"
    yaml_path.write_text(dump_layout(doc, copybook), encoding="utf-8")
    if isinstance(data, bytes):
        (tmp / "input.dat").write_bytes(data)
        data = tmp / "input.dat"
    out, rejects = tmp / "out.arrow", tmp / "rejects.avro"
    assert main(["decode", str(data), "--layout", str(yaml_path), "--out", str(out),
                 "--rejects", str(rejects)]) == 0
    tables = {}
    for path in sorted(tmp.glob("out*.arrow")):
        tables[path.name] = pa.ipc.open_file(str(path)).read_all()
    with open(rejects, "rb") as f:
        quarantined = list(fastavro.reader(f))
    rows = []
    for name, table in tables.items():
        for row in table.to_pylist():
            rows.append((row["_record"], name, {k: v for k, v in row.items() if k not in NOT_ROWS}))
    rows.sort(key=lambda r: r[0])
    schemas = {name: t.schema for name, t in tables.items()}
    return rows, quarantined, schemas, trim


def compare(rows, expected, schemas, trim, common=False):
    f32 = set().union(*(float32_names(s) for s in schemas.values()))
    problems = []
    for (record, _, row), exp in zip(rows, expected, strict=True):
        diff = differences(conventional(row, trim, common), exp, f32)
        if diff:
            problems.append((record, diff[:5]))
    assert not problems, problems[:3]


def reasons(quarantined):
    return {q["record"]: sorted({(r["field"], r["code"]) for r in q["reasons"]})
            for q in quarantined}


# -- first wave: fixed length ----------------------------------------------------------------

def test_companies_comp3_odo(tmp_path):
    case = DATA / "companies_comp3_odo"
    rows, quarantined, schemas, trim = decode_case(tmp_path, case / "test1_copybook.cob",
                                                   case / "example.bin")
    assert not quarantined
    expected = expected_lines(case / "test1.txt")
    assert len(rows) == len(expected) == 10
    compare(rows, expected, schemas, trim)
    # the OCCURS DEPENDING ON table is a list cut to its counter
    detail = schemas["out.arrow"].field("METADATA").type
    assert pa.types.is_struct(detail)


def test_transactions_binary_decimal(tmp_path):
    """Numbers exactly as Cobrix; text as the real IBM-037 table decodes it (Cobrix's ``common``
    page turns control bytes into spaces; ikou keeps what the bytes say)."""
    case = DATA / "transactions_binary_decimal"
    raw = (case / "TRAN2.MAR14.DATA.dat").read_bytes()
    rows, quarantined, schemas, _ = decode_case(tmp_path, case / "test8_copybook.cob", raw,
                                                trim="none", null_low_values=False)
    assert not quarantined and len(rows) == 1000
    expected = expected_lines(case / "test8_non_printable.txt")
    text_fields = ("CURRENCY", "SIGNATURE", "COMPANY_NAME_NP", "COMPANY_ID")
    offsets = {"CURRENCY": (0, 3), "SIGNATURE": (3, 11), "COMPANY_NAME_NP": (11, 26),
               "COMPANY_ID": (26, 36)}
    for i, ((_, _, row), exp) in enumerate(zip(rows, expected, strict=False)):
        rec = raw[i * 45:(i + 1) * 45]
        for name in text_fields:
            a, b = offsets[name]
            assert row[name] == codecs.decode(rec[a:b], "cp037"), (i, name)
        assert row["WEALTH_QFY"] == exp["WEALTH_QFY"]
        assert row["AMOUNT"] == exp["AMOUNT"]
    # where the bytes are printable, Cobrix's text is ikou's text
    printable = expected_lines(case / "test8_printable.txt")
    for (_, _, row), exp in zip(rows, printable, strict=False):
        for name in ("CURRENCY", "SIGNATURE", "COMPANY_ID"):
            assert row[name].strip() == exp[name]


@pytest.mark.parametrize("page", ["cp037", "cp273", "cp500", "cp1140"])
def test_ebcdic_code_pages(tmp_path, page):
    """Against the same 60 records decoded with CPython's codec (the standard tables; Cobrix's
    own files differ from them in the control range, README §3)."""
    case = DATA / "ebcdic_code_pages"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test9_copybook.cob", case / "TRAN.APR14.NPT.DATA.dat",
        encoding=page, trim="none", null_low_values=False)
    assert not quarantined and len(rows) == 1000
    expected = expected_lines(case / "derived_cpython_codecs" / f"test9_{page}_cpython.txt")
    compare(rows[:len(expected)], expected, schemas, trim)


def test_type_variety(tmp_path):
    case = DATA / "type_variety"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test6_copybook.cob", case / "INTEGR.TYPES.NOV28.DATA.dat",
        cobrix_binary=True, float_format="ieee")
    assert not quarantined
    expected = expected_lines(case / "test6.txt")
    rows.sort(key=lambda r: r[2]["ID"])
    assert len(rows) == len(expected) == 100
    # 19-38-digit binaries (not IBM sizes) are imported as raw bytes: compared by their bytes
    raw = {f.name for s in schemas.values() for f in s if pa.types.is_binary(f.type)}
    for (_, _, row), exp in zip(rows, expected, strict=True):
        for name in raw:
            row.pop(name, None)
            exp.pop(name, None)
    compare(rows, expected, schemas, trim)


def test_fillers_redefines(tmp_path):
    """test7.txt: FILLERs dropped, values and groups (ikou never outputs a FILLER)."""
    case = DATA / "fillers_redefines"
    rows, quarantined, schemas, trim = decode_case(tmp_path, case / "test7_fillers.cob",
                                                   case / "TEST.FILLERS.DEC07.DATA.dat")
    assert not quarantined and len(rows) == 1000
    rows.sort(key=lambda r: (r[2]["AMOUNT"], r[0]))
    # named items of FILLER groups (STR1, STR2 in FILLER REDEFINES COMPANY_NAME, STR4) are data
    # ikou keeps (top-level columns); Cobrix drops them with the FILLER group
    for _, _, row in rows:
        assert {"STR1", "STR2", "STR4"} <= row.keys()
        for name in ("STR1", "STR2", "STR4"):
            row.pop(name)
    expected = expected_objects(case / "test7.txt")
    compare(rows[:100], expected, schemas, trim)


def test_fixed_segments_redefines(tmp_path):
    case = DATA / "fixed_segments_redefines"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test16_fix_len_segments.cob", case / "ENTITY.DB.AUG12.DATA.FIX.LEN.dat",
        record_type="SEGMENT_ID",
        kinds=["company=C:COMPANY", "person=P:PERSON", "po_box=B:PO_BOX"])
    assert not quarantined
    expected = expected_objects(case / "test16.txt")
    assert len(rows) == len(expected) == 50
    assert {r[1] for r in rows} == {"out.arrow", "out.person.arrow", "out.po_box.arrow"}
    compare(rows, expected, schemas, trim)


def test_display_numbers_invalid(tmp_path):
    """Records 0-4 as Cobrix; records 5 and 6 (blank and letters in PIC 9 fields) quarantined
    on exactly those fields, where Cobrix writes nulls (and a 0.00 for a blank 9(8)V9(2))."""
    case = DATA / "display_numbers_invalid"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test19_display_num.cob", case / "data.dat", null_low_values=False,
        # the explicit-point field is written left-aligned ("789.09     "): a number as text
        fields={"WS_AMOUNT_FRACTION2": {"free_form": True}})
    expected = expected_lines(case / "test19.txt")
    for exp in expected:
        exp.pop("File_Id")
        exp.pop("Record_Id")
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    compare(rows, expected[:5], schemas, trim)
    assert reasons(quarantined) == {
        6: [("WS_AMOUNT_FRACTION", "BLANK_VALUE"), ("WS_AMOUNT_NUMERIC", "BLANK_VALUE"),
            ("WS_DATE_NUM", "BLANK_VALUE")],
        7: [("WS_AMOUNT_FRACTION", "NOT_DIGITS"), ("WS_AMOUNT_NUMERIC", "NOT_DIGITS"),
            ("WS_DATE_NUM", "NOT_DIGITS")],
    }


@pytest.mark.parametrize("encoding, data", [("cp037", "sign_overpunch_ebcdic.dat")])
def test_sign_overpunch_strict(tmp_path, encoding, data):
    """Cobrix's strict overpunching gives null for a sign on unsigned A; ikou quarantines that
    record on A, and decodes the others as Cobrix does."""
    case = DATA / "sign_overpunch"
    rows, quarantined, schemas, trim = decode_case(tmp_path, case / "sign_overpunch.cob",
                                                   case / data, encoding=encoding)
    expected = json.loads((case / "expected_strict.json").read_text())
    assert [r[0] for r in rows] == [3]
    compare(rows, expected[2:], schemas, trim)
    assert reasons(quarantined) == {1: [("A", "INVALID_SIGN")], 2: [("A", "INVALID_SIGN")]}


def test_relaxed_decimal_is_rejected(tmp_path):
    """``F1F2F3D0C440``: Cobrix's relaxed mode reads 1230.4 (the last overpunch wins, the space
    is ignored); a strict decoder rejects it."""
    case = DATA / "sign_overpunch"
    rows, quarantined, *_ = decode_case(tmp_path, case / "relaxed_decimal.cob",
                                        case / "relaxed_decimal_ebcdic.dat")
    assert rows == [] and len(quarantined) == 1
    assert reasons(quarantined)[1][0][0] == "A"


@pytest.mark.parametrize("data, order", [("national_be.dat", "big"), ("national_le.dat", "little")])
def test_national_pic_n_utf16(tmp_path, data, order):
    case = DATA / "national_pic_n_utf16"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "national.cob", case / data, pic_n="utf16",
        encoding="cp037",
        fields={"N": {"byte_order": order}})
    assert not quarantined
    assert pa.types.is_string(schemas["out.arrow"].field("N").type)
    compare(rows, expected_objects(case / "expected.json"), schemas, trim)


def test_dbcs_cp300_vectors_against_glibc():
    """Cobrix's cp300 vectors in an ibm930 text field: glibc's IBM930 string where glibc
    decodes them; where Cobrix drops a byte (a cut double-byte character) or reads a field that
    ends in double-byte state, ikou reports an error instead."""
    from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, decode_block

    vectors = json.loads((DATA / "dbcs_cp300_japanese" / "vectors.json").read_text())
    seen = set()
    for v in vectors:
        if v["cobrix_code_page"] != "cp300":
            continue
        raw = bytes.fromhex(v["bytes_hex"])
        plan = DecodePlan(len(raw), [FieldSpec("t", offset=0, length=len(raw), type="text",
                                               encoding="ibm930", trim="none")])
        got = decode_block(raw, [0], plan)
        if v["glibc_IBM930"].startswith("ERROR"):
            # a lead byte alone before the field's end (Cobrix drops it)
            assert ErrorCode.CUT_DOUBLE_BYTE in [ErrorCode(c) for c in got.errors.code], v
        elif raw.rfind(b"\x0e") > raw.rfind(b"\x0f"):
            # glibc accepts a string left in double-byte state; a field must end in single
            assert [ErrorCode(c) for c in got.errors.code] == [ErrorCode.UNTERMINATED_SHIFT], v
        else:
            assert not len(got.errors) and got.batch.column(0)[0].as_py() == v["glibc_IBM930"], v
        seen.add(v["name"])
    assert len(seen) == 4


def test_dbcs_codes_missing_from_cobrix_decode_as_glibc():
    """The 398 IBM-extension codes (髙 﨑 德 增, Roman numerals, ㈱ …) Cobrix's cp300 table lacks
    and drops in silence: ikou decodes each one as glibc's IBM930 does."""
    from ikou.kernels import DecodePlan, FieldSpec, decode_block

    rows = [line.split("\t") for line in (DATA / "dbcs_cp300_japanese" /
            "cobrix_cp300_vs_glibc_IBM930.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    missing = [(bytes.fromhex(r[0]), r[3]) for r in rows if r[1] == "missing_in_cobrix"]
    assert len(missing) == 398
    buf = b"".join(b"\x0e" + code + b"\x0f" for code, _ in missing)
    plan = DecodePlan(4, [FieldSpec("t", offset=0, length=4, type="text", encoding="ibm930",
                                    trim="none")])
    got = decode_block(buf, list(range(0, len(buf), 4)), plan)
    assert not len(got.errors)
    assert got.batch.column(0).to_pylist() == [ch for _, ch in missing]


# -- later: variable length (RDW) ------------------------------------------------------------

@pytest.mark.parametrize("data, order", [
    ("test5_data/COMP.DETAILS.SEP30.DATA.dat", "little"),
    ("test5b_data/COMP.DETAILS.FEB02.DATA.RDW.BE.dat", "big")])
def test_vrl_multisegment_rdw(tmp_path, data, order):
    """C records (64 bytes) hold STATIC-DETAILS, P records (60 bytes) CONTACTS, as Cobrix's
    segment ids say: ikou decodes each record by its kind; Cobrix's rows also carry the other
    alternative, decoded from bytes that are not that alternative's (compared where ikou has it).
    """
    case = DATA / "later_vrl_multisegment_rdw"
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test5_copybook.cob", case / data, record_format="V",
        null_low_values=False, record_type="SEGMENT_ID",
        kinds=["company=C:STATIC_DETAILS", "contacts=P:CONTACTS"],
        # the segment id is one letter and NUL padding (C3 00 00 00 00): its first byte
        layout={"rdw": {"byte_order": order, "includes_header": False},
                "record_type": {"offset": 0, "length": 1}})
    assert not quarantined and len(rows) == 1000
    expected = expected_lines(case / "test5.txt")
    for (_, kind, _row), exp in zip(rows, expected, strict=False):
        for k in ("File_Id", "Record_Id", "Record_Byte_Length", "Seg_Id0", "Seg_Id1"):
            exp.pop(k, None)
        exp.pop("CONTACTS" if exp["SEGMENT_ID"] == "C" else "STATIC_DETAILS")
        assert kind == ("out.arrow" if exp["SEGMENT_ID"] == "C" else "out.contacts.arrow")
    # TAXPAYER-STR also holds TAXPAYER-NUM's binary bytes: compared through Cobrix's common page
    compare(rows[:len(expected)], expected, schemas, trim, common=True)


def _bad_zoned(b: bytes) -> bool:
    """An unsigned EBCDIC zoned number that is not digits F0-F9 (independent of ikou)."""
    return any(not 0xF0 <= c <= 0xF9 for c in b)


def test_vrl_hierarchical_rdw(tmp_path):
    """Seven kinds; OFFICE records whose FLOOR / ROOM-NUMBER (PIC 9) hold a NUL pad are
    quarantined on exactly those fields (Cobrix reads "33\\0" as 33); every other record
    as Cobrix."""
    case = DATA / "later_vrl_hierarchical_rdw"
    kinds = ["company=1:COMPANY", "dept=2:DEPT", "employee=3:EMPLOYEE", "office=4:OFFICE",
             "customer=5:CUSTOMER", "contact=6:CONTACT", "contract=7:CONTRACT"]
    raw = (case / "HIERARCHICAL.DATA.RDW.dat").read_bytes()
    rows, quarantined, schemas, trim = decode_case(
        tmp_path, case / "test17_hierarchical.cob", raw,
        record_format="V", record_type="SEGMENT_ID", kinds=kinds, null_low_values=False,
        layout={"rdw": {"byte_order": "little", "includes_header": False}})
    # the records an independent reading of the bytes finds bad (FLOOR 9(3) at 26, ROOM 9(4))
    bad, off, record = {}, 0, 0
    while off < len(raw):
        n = raw[off + 2] | raw[off + 3] << 8
        rec = raw[off + 4:off + 4 + n]
        record += 1
        if rec[0] == 0xF4:
            fields = [name for name, a, b in (("FLOOR", 31, 34), ("ROOM_NUMBER", 34, 38))
                      if _bad_zoned(rec[a:b])]
            if fields:
                bad[record] = fields
        off += 4 + n
    assert record == 951 and bad
    assert {r: sorted({f for f, _ in rs}) for r, rs in reasons(quarantined).items()} == bad
    assert len(rows) + len(quarantined) == 951
    expected = [e for e in expected_lines(case / "test17a.txt") if e["Record_Id"] + 1 not in bad]
    for exp in expected:
        for k in ("File_Id", "Record_Id", "Record_Byte_Length"):
            exp.pop(k, None)
    compare(rows[:len(expected)], expected, schemas, trim)
