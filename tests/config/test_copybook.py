"""COBOL copybook import: grammar, IBM sizes and offsets (checked against Cobrix's layout
files), the layout document, its YAML, the ``copybook:`` key and ``ikou layout import``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.config.copybook import (
    CopybookError,
    CopybookOptions,
    copybook_layout,
    dump_layout,
    parse_copybook,
    parse_kind,
)
from ikou.pipeline.config.layout import LayoutError, load_layout, parse_layout

#: Cobrix's acceptance corpus (tests/data/cobrix; IKOU_COBRIX_DIR names another copy)
COBRIX = Path(os.environ.get("IKOU_COBRIX_DIR")
              or Path(__file__).resolve().parents[1] / "data" / "cobrix")
needs_cobrix = pytest.mark.skipif(not COBRIX.is_dir(), reason="Cobrix corpus not present")


def fixed(*lines: str) -> str:
    """Fixed-format source: each line starts in column 8 (area A) unless it starts with a
    column-7 indicator written as '|X'."""
    out = []
    for ln in lines:
        if ln.startswith("|"):
            out.append("      " + ln[1:])
        else:
            out.append("       " + ln)
    return "\n".join(out) + "\n"


def layout_of(text: str, tmp_path: Path, name: str = "rec.cpy", **opts) -> dict:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return copybook_layout(p, CopybookOptions(**opts))


def by_name(doc: dict, kind: str | None = None) -> dict:
    fields = doc["fields"] if kind is None else doc["kinds"][kind]["fields"]
    return {f["name"]: f for f in fields}


def _kernel_accepts(type_: str, length: int, **options) -> bool:
    from ikou.kernels import FieldSpec

    try:
        FieldSpec("x", offset=0, length=length, type=type_, **options)
    except (TypeError, ValueError):
        return False
    return True


# -- against Cobrix's layout files ----------------------------------------------------------

_LAYOUT_LINE = re.compile(
    r"^\s*(?:(\d+)\s+)?(\S+)\s+(?:([rR]+)\s+)?(?:(\d+)\s+)?(\d+)\s+(\d+)\s+(\d+)\s*$")
_CASES = {
    "type_variety/test6_layout.txt": "type_variety/test6_copybook.cob",
    "type_variety/test24_layout.txt": "type_variety/test24_copybook.cob",
    "fillers_redefines/test7_layout.txt": "fillers_redefines/test7_fillers.cob",
    "fillers_redefines/test7d_layout.txt": "fillers_redefines/test7_fillers.cob",
    "fixed_segments_redefines/test16_layout.txt":
        "fixed_segments_redefines/test16_fix_len_segments.cob",
    "later_vrl_hierarchical_rdw/test17a_layout.txt":
        "later_vrl_hierarchical_rdw/test17_hierarchical.cob",
    "display_numbers_invalid/test19_layout.txt": "display_numbers_invalid/test19_display_num.cob",
}


def _cobrix_rows(path: Path) -> list[tuple[str, int, int, int]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        if not line.strip():
            continue
        m = _LAYOUT_LINE.match(line)
        assert m, line
        if not m.group(2).endswith("_debug"):  # test24's raw-bytes columns
            rows.append((m.group(2), int(m.group(5)), int(m.group(6)), int(m.group(7))))
    return rows


@needs_cobrix
@pytest.mark.parametrize("layout_file", sorted(_CASES))
def test_offsets_match_cobrix_layout_files(layout_file):
    book = COBRIX / _CASES[layout_file]
    (root,) = parse_copybook(book.read_text(), str(book), CopybookOptions(cobrix_binary=True))
    ours = []
    for it in root.walk():  # every item in copybook order, groups and FILLERs included
        length = it.area if it.parent is not None else it.size
        ours.append(((it.name or "FILLER").replace("-", "_"), it.offset + 1,
                     it.offset + length, length))
    theirs = _cobrix_rows(COBRIX / layout_file)
    assert len(ours) == len(theirs)
    for mine, cobrix in zip(ours, theirs, strict=True):
        assert mine[1:] == cobrix[1:], (mine, cobrix)
        assert mine[0] == cobrix[0] or (mine[0] == "FILLER" and cobrix[0].startswith("FILLER"))


@needs_cobrix
def test_test6_has_195_fields_and_ibm_rejects_long_binaries():
    book = COBRIX / "type_variety/test6_copybook.cob"
    doc = copybook_layout(book, CopybookOptions(cobrix_binary=True))
    assert len(doc["fields"]) == 195 and doc["record_length"] == 1493
    f = by_name(doc)
    assert f["NUM_BIN_INT14"]["length"] == 16 and f["NUM_BIN_INT14"]["type"] == "bytes"
    assert f["NUM_BIN_INT11"] == {**f["NUM_BIN_INT11"], "type": "binary", "digits": 18,
                                  "length": 8, "signed": False}
    assert f["NUM_BIN_INT05"]["type"] == "binary" and "digits" not in f["NUM_BIN_INT05"]  # COMP-5
    assert f["FLOAT_01"]["type"] == "float" and f["DOUBLE_01"]["length"] == 8
    assert f["COMMON_UPC5DDC"]["scale"] == 8 and f["COMMON_UPI5DDC"]["scale"] == -3
    assert f["EX_NUM_INT04"] == {**f["EX_NUM_INT04"], "type": "edited", "picture": "Z(8)-"}
    assert f["NUM_SL_STR_INT01"]["sign_position"] == "leading"
    assert f["NUM_SL_STR_INT01"]["sign_separate"] is True
    with pytest.raises(CopybookError, match=r"test6_copybook.cob:\d+: NUM-BIN-INT12 .*19 digits"):
        copybook_layout(book)


@needs_cobrix
def test_test1_occurs_depending_on_and_redefines():
    doc = copybook_layout(COBRIX / "companies_comp3_odo/test1_copybook.cob")
    assert doc["record_length"] == 2202
    f = by_name(doc)
    assert f["ACCOUNT_NUMBER_80"]["offset"] == 42 + 79 * 27
    assert f["ACCOUNT_TYPE_X_2"]["offset"] == f["ACCOUNT_TYPE_N_2"]["offset"] == 42 + 27 + 24
    assert f["COMPANY_ID_STR"]["redefines"] == "COMPANY_ID_NUM"
    meta = doc["structure"][2]["children"][3]["children"][0]
    assert meta["name"] == "ACCOUNT_DETAIL" and meta["occurs"] == 80
    assert meta["depending_on"] == "NUMBER_OF_ACCTS"
    assert meta["children"][0] == {"name": "ACCOUNT_NUMBER", "column": "ACCOUNT_NUMBER"}


@needs_cobrix
def test_test5_record_is_the_larger_alternative():
    doc = copybook_layout(COBRIX / "later_vrl_multisegment_rdw/test5_copybook.cob")
    assert doc["record_length"] == 64
    assert by_name(doc)["TAXPAYER_NUM"]["offset"] == by_name(doc)["TAXPAYER_STR"]["offset"]


# -- grammar ----------------------------------------------------------------------------------

def test_fixed_format_areas_comments_debug_and_continuation(tmp_path):
    def card(seq, indicator, area, tag="ZZZZ0001"):  # columns 1-6, 7, 8-72, 73-80
        return f"{seq:06d}{indicator}{area:<65}{tag}"

    lit = "A" * 30  # fills the area to column 72
    text = "\n".join([
        card(100, " ", "01  REC."),
        card(200, "*", "a comment line"),
        card(300, "/", "a page eject is a comment too"),
        card(400, "D", "    05  DEBUG-ONLY  PIC X(99)."),
        card(500, " ", f"    05  CODE-X  PIC X(10)  VALUE '{lit}"),
        card(600, "-", "    'QRSTU'."),
        card(700, " ", "    05  AMT     PIC S9(5)V99 COMP-3.", tag="05 X PIC"),
    ]) + "\n"
    doc = layout_of(text, tmp_path)
    assert [(f["name"], f["offset"], f["length"]) for f in doc["fields"]] == [
        ("CODE_X", 0, 10), ("AMT", 10, 4)]
    assert doc["fields"][1]["scale"] == 2 and doc["fields"][1]["signed"] is True


def test_continued_literal_in_an_88_value(tmp_path):
    text = fixed("01  REC.",
                 "    05  KIND  PIC X(70).",
                 "        88  LONG-ONE  VALUE '" + "A" * 30,
                 "|-       'BBB'.")
    (kind,) = layout_of(text, tmp_path)["fields"]
    (value,) = kind["values"]["LONG_ONE"]
    assert value == "A" * 30 + " " * 6 + "BBB"  # the literal runs to column 72


def test_a_literal_continued_over_three_lines(tmp_path):
    text = fixed("01  REC.",
                 "    05  K  PIC X(99).",
                 "        88  LONG  VALUE '" + "A" * 40,
                 "|-       '" + "B" * 50,
                 "|-       'CC'.")
    (value,) = layout_of(text, tmp_path)["fields"][0]["values"]["LONG"]
    # line 3's area holds 25 + 40 characters (full); line 4's 8 + 50, then 7 spaces to col 72
    assert value == "A" * 40 + "B" * 50 + " " * 7 + "CC"


def test_free_format_is_detected(tmp_path):
    text = ("*> a free-format copybook\n"
            "01 REC.\n"
            "  05 NAME-KANA PIC X(20). *> カナ氏名\n"
            "  05 BIRTH PIC 9(8).\n")
    doc = layout_of(text, tmp_path)
    assert [f["name"] for f in doc["fields"]] == ["NAME_KANA", "BIRTH"]
    assert doc["fields"][0]["label"] == "カナ氏名"
    assert doc["fields"][1] == {**doc["fields"][1], "type": "zoned", "zone": "ebcdic",
                                "signed": False}
    with pytest.raises(CopybookError, match=r"rec.cpy:1: expected a level number"):
        layout_of(text, tmp_path, source_format="fixed")


def test_long_lines_starting_in_column_8_are_free_format(tmp_path):
    text = fixed("01  REC.", "    05  A" + " " * 70 + "PIC X(3).", "    05  B  PIC 9.")
    assert [(f["name"], f["length"]) for f in layout_of(text, tmp_path)["fields"]] == [
        ("A", 3), ("B", 1)]


def test_labels_from_the_comment_above_or_a_trailing_comment(tmp_path):
    text = fixed("01  REC.",
                 "|*    宛名番号",
                 "    05  ATENA-NO   PIC 9(10).",
                 "",
                 "|*    not directly above",
                 "",
                 "    05  NAME       PIC X(20).",
                 "    05  SEX        PIC X.      *> 性別")
    f = by_name(layout_of(text, tmp_path))
    assert f["ATENA_NO"]["label"] == "宛名番号"
    assert "label" not in f["NAME"]
    assert f["SEX"]["label"] == "性別"


def test_88_levels_become_values_and_arrow_metadata(tmp_path):
    text = fixed("01  REC.",
                 "    05  STATUS  PIC X.",
                 "        88  ACTIVE    VALUE 'A'.",
                 "        88  CLOSED    VALUES ARE 'C' 'D'.",
                 "    05  GRADE   PIC 99.",
                 "        88  PASSING   VALUE 60 THRU 100.")
    doc = layout_of(text, tmp_path, encoding="cp932")
    f = by_name(doc)
    assert f["STATUS"]["values"] == {"ACTIVE": ["A"], "CLOSED": ["C", "D"]}
    assert f["GRADE"]["values"] == {"PASSING": [{"from": 60, "to": 100}]}
    layout = parse_layout(doc, "rec.yaml")
    meta = layout.arrow_schema("data").field("STATUS").metadata
    assert json.loads(meta[b"values"]) == {"ACTIVE": ["A"], "CLOSED": ["C", "D"]}
    assert meta[b"legacy_picture"] == b"X"


def test_level_66_and_copy_are_refused_with_their_line(tmp_path):
    with pytest.raises(CopybookError, match=r"rec.cpy:3: level 66 \(RENAMES\) is not supported"):
        layout_of(fixed("01  REC.", "    05  A PIC X.", "66  B RENAMES A."), tmp_path)
    with pytest.raises(CopybookError, match=r"rec.cpy:2: COPY ADDR is not resolved"):
        layout_of(fixed("01  REC.", "    COPY ADDR.", "    05  A PIC X."), tmp_path)


def test_copy_members_from_the_copy_path(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "Addr.CPY").write_text(fixed("    05  ZIP   PIC X(7).", "    05  TOWN  PIC X(40)."))
    text = fixed("01  REC.", "    05  ID PIC 9(4).", "    COPY ADDR.", "    05  TEL PIC X(12).")
    doc = layout_of(text, tmp_path, copy_path=(str(lib),))
    assert [(f["name"], f["offset"]) for f in doc["fields"]] == [
        ("ID", 0), ("ZIP", 4), ("TOWN", 11), ("TEL", 51)]
    with pytest.raises(CopybookError, match=r"rec.cpy:2: COPY NOPE: no member"):
        layout_of(fixed("01  REC.", "    COPY NOPE."), tmp_path, copy_path=(str(lib),))
    with pytest.raises(CopybookError, match=r"REPLACING is not supported"):
        layout_of(fixed("01  REC.", "    COPY ADDR REPLACING ==A== BY ==B==."), tmp_path,
                  copy_path=(str(lib),))
    (lib / "bad.cpy").write_text(fixed("    05  X  PIC Q(3)."))
    with pytest.raises(CopybookError, match=r"bad.cpy:1: PICTURE Q\(3\): unknown symbol"):
        layout_of(fixed("01  REC.", "    COPY BAD."), tmp_path, copy_path=(str(lib),))


def test_sync_aligns_binary_items_relative_to_the_record(tmp_path):
    text = fixed("01  REC.",
                 "    05  A  PIC X.",
                 "    05  B  PIC S9(4) COMP SYNC.",
                 "    05  C  PIC S9(9) BINARY SYNCHRONIZED.",
                 "    05  D  PIC X.",
                 "    05  E  COMP-2 SYNC.",
                 "    05  F  PIC X.",
                 "    05  G  PIC S9(4) COMP.")
    f = by_name(layout_of(text, tmp_path))
    assert [f[n]["offset"] for n in "ABCDEFG"] == [0, 2, 4, 8, 16, 24, 25]
    plain = by_name(layout_of(text.replace(" SYNCHRONIZED", "").replace(" SYNC", ""), tmp_path))
    assert [plain[n]["offset"] for n in "ABCDEFG"] == [0, 1, 3, 7, 8, 16, 17]


def test_occurs_names_nesting_and_structure(tmp_path):
    text = fixed("01  REC.",
                 "    05  N-KIDS       PIC 9(2).",
                 "    05  KID  OCCURS 1 TO 3 TIMES DEPENDING ON N-KIDS",
                 "             ASCENDING KEY IS KID-NAME INDEXED BY KX.",
                 "        10  KID-NAME PIC X(4).",
                 "        10  SCORE    PIC 9 OCCURS 2.",
                 "    05  TAIL         PIC X.")
    doc = layout_of(text, tmp_path)
    names = [(f["name"], f["offset"]) for f in doc["fields"]]
    assert names[:4] == [("N_KIDS", 0), ("KID_NAME_1", 2), ("SCORE_1_1", 6), ("SCORE_1_2", 7)]
    assert names[-1] == ("TAIL", 20) and doc["record_length"] == 21
    f = by_name(doc)  # slots past the counter hold leftovers: errors tolerated, values null
    assert f["KID_NAME_3"]["on_error"] == f["SCORE_2_1"]["on_error"] == "null"
    assert "on_error" not in f["N_KIDS"] and "on_error" not in f["TAIL"]
    assert doc["structure"] == [
        {"name": "N_KIDS", "column": "N_KIDS"},
        {"name": "KID", "children": [{"name": "KID_NAME", "column": "KID_NAME"},
                                     {"name": "SCORE", "column": "SCORE", "occurs": 2}],
         "occurs": 3, "depending_on": "N_KIDS"},
        {"name": "TAIL", "column": "TAIL"}]


def test_redefines_overlap_is_allowed_only_between_alternatives(tmp_path):
    text = fixed("01  REC.",
                 "    05  KIND      PIC X.",
                 "    05  BODY.",
                 "        10  A     PIC X(4).",
                 "        10  B     PIC X(6).",
                 "    05  ALT-1 REDEFINES BODY.",
                 "        10  C     PIC 9(10).",
                 "    05  ALT-2 REDEFINES BODY PIC X(12).",
                 "    05  LAST      PIC X.")
    doc = layout_of(text, tmp_path)
    f = by_name(doc)
    assert f["C"]["redefines"] == "BODY" and f["C"]["alternative"] == "ALT_1"
    assert f["ALT_2"]["alternative"] == "ALT_2" and f["LAST"]["offset"] == 13
    layout = parse_layout(doc, "rec.yaml")
    assert [x.name for x in layout.kinds["data"].fields] == ["KIND", "A", "B", "C", "ALT_2", "LAST"]
    same_alt = json.loads(json.dumps(doc))
    same_alt["fields"].append({**f["C"], "name": "C2", "offset": 2})
    with pytest.raises(LayoutError, match="field 'C2': bytes 2-11 overlap field 'C'"):
        parse_layout(same_alt, "rec.yaml")
    plain = json.loads(json.dumps(doc))
    plain["fields"].append({"name": "Z", "offset": 12, "length": 2, "type": "text"})
    with pytest.raises(LayoutError, match="field 'LAST': bytes 13-13 overlap field 'Z'"):
        parse_layout(plain, "rec.yaml")
    with pytest.raises(CopybookError, match=r"rec.cpy:3: X REDEFINES NOPE"):
        layout_of(fixed("01  REC.", "    05  A PIC X.", "    05  X REDEFINES NOPE PIC X."),
                  tmp_path)


def test_p_scaling_sign_clauses_and_edited_pictures(tmp_path):
    text = fixed("01  REC.",
                 "    05  BIG     PIC 9(5)PPP.",
                 "    05  TINY    PIC SVPPP9(3) COMP-3.",
                 "    05  LEAD    PIC S9(3) SIGN LEADING.",
                 "    05  SEP     PIC S9(3)V9 SIGN IS TRAILING SEPARATE CHARACTER.",
                 "    05  AMT-ED  PIC ZZ,ZZ9.99CR.",
                 "    05  STARS   PIC $**,**9.99 BLANK WHEN ZERO.",
                 "    05  DATE-ED PIC 99/99/99.",
                 "    05  NAME-ED PIC X(3)BX(3) JUSTIFIED RIGHT.")
    f = by_name(layout_of(text, tmp_path))
    assert (f["BIG"]["length"], f["BIG"]["scale"]) == (5, -3)
    assert (f["TINY"]["length"], f["TINY"]["scale"], f["TINY"]["type"]) == (2, 6, "packed")
    assert f["LEAD"]["length"] == 3 and f["LEAD"]["sign_position"] == "leading"
    assert "sign_separate" not in f["LEAD"]
    assert (f["SEP"]["length"], f["SEP"]["sign_separate"], f["SEP"]["scale"]) == (5, True, 1)
    assert "sign_position" not in f["SEP"]
    assert [f[n]["length"] for n in ("AMT_ED", "STARS", "DATE_ED")] == [11, 10, 8]
    assert {f[n]["type"] for n in ("AMT_ED", "STARS", "DATE_ED")} == {"edited"}
    assert f["AMT_ED"]["picture"] == "ZZ,ZZ9.99CR"
    assert (f["NAME_ED"]["type"], f["NAME_ED"]["length"], f["NAME_ED"]["trim"]) == (
        "text", 7, "both")  # JUSTIFIED RIGHT: padded on the left


def test_usage_on_a_group_applies_to_its_children(tmp_path):
    text = fixed("01  REC.",
                 "    05  AMOUNTS USAGE IS COMP-3.",
                 "        10  A  PIC S9(7)V99.",
                 "        10  B  PIC S9(3).",
                 "    05  C      PIC 9(4).")
    f = by_name(layout_of(text, tmp_path))
    assert [(f[n]["type"], f[n]["length"]) for n in "ABC"] == [
        ("packed", 5), ("packed", 2), ("zoned", 4)]
    with pytest.raises(CopybookError, match=r"rec.cpy:3: USAGE COMP of A conflicts"):
        layout_of(text.replace("PIC S9(7)V99.", "PIC S9(7)V99 COMP."), tmp_path)


def test_binary_sizes_and_long_binaries(tmp_path):
    text = fixed("01  REC.", "    05  A PIC S9(4) COMP.", "    05  B PIC 9(5) BINARY.",
                 "    05  C PIC S9(18) COMP-4.", "    05  D PIC S9(9) COMP-5.")
    f = by_name(layout_of(text, tmp_path))
    assert [(f[n]["length"], f[n].get("digits")) for n in "ABCD"] == [
        (2, 4), (4, 5), (8, 18), (4, None)]
    with pytest.raises(CopybookError, match=r"rec.cpy:2: X \(PIC 9\(19\) COMP\): 19 digits; "
                                            r"IBM binary items hold at most 18"):
        layout_of(fixed("01  REC.", "    05  X PIC 9(19) COMP."), tmp_path)


def test_names_are_made_unique_with_their_groups(tmp_path):
    text = fixed("01  REC.",
                 "    05  HOME.",
                 "        10  ADDR.",
                 "            15  CITY PIC X(10).",
                 "    05  WORK.",
                 "        10  ADDR.",
                 "            15  CITY PIC X(10).",
                 "    05  CITY-CODE PIC X(3).",
                 "    05  FILLER PIC X(5).")
    doc = layout_of(text, tmp_path)
    assert [f["name"] for f in doc["fields"]] == ["HOME_ADDR_CITY", "WORK_ADDR_CITY", "CITY_CODE"]
    assert doc["structure"][0]["children"][0]["children"] == [
        {"name": "CITY", "column": "HOME_ADDR_CITY"}]


def test_national_and_dbcs_items(tmp_path):
    text = fixed("01  REC.",
                 "    05  N1  PIC N(5).",
                 "    05  N2  PIC N(5) USAGE NATIONAL.",
                 "    05  G1  PIC G(4) DISPLAY-1.",
                 "    05  N3  PIC N(3) DISPLAY-1.")
    f = by_name(layout_of(text, tmp_path, encoding="ibm930"))
    assert [(f[n]["type"], f[n]["length"]) for n in ("N1", "N2", "G1", "N3")] == [
        ("national", 10), ("national", 10), ("dbcs", 8), ("dbcs", 6)]
    f = by_name(layout_of(text, tmp_path, encoding="cp037", pic_n="dbcs", dbcs_encoding="jef"))
    assert [f[n]["type"] for n in ("N1", "N2", "G1")] == ["dbcs", "national", "dbcs"]
    assert f["N1"]["encoding"] == "jef"
    with pytest.raises(CopybookError, match=r"rec.cpy:4: G1 \(PIC G\(4\)\) is double-byte"):
        layout_of(text, tmp_path, encoding="cp037")


def test_several_records_become_kinds(tmp_path):
    text = fixed("01  HDR.",
                 "    05  REC-TYPE  PIC X.",
                 "    05  RUN-DATE  PIC 9(8).",
                 "01  DTL.",
                 "    05  REC-TYPE  PIC X.",
                 "    05  ATENA-NO  PIC 9(10).",
                 "    05  AMOUNT    PIC S9(7) COMP-3.",
                 "01  TRL.",
                 "    05  REC-TYPE  PIC X.",
                 "    05  COUNT-X   PIC 9(8).")
    with pytest.raises(CopybookError, match="3 records"):
        layout_of(text, tmp_path)
    kinds = tuple(parse_kind(k) for k in ("header=1:HDR", "data=2:DTL", "trailer=9:TRL"))
    doc = layout_of(text, tmp_path, encoding="cp932", record_type="REC-TYPE", kinds=kinds,
                    count_field="COUNT-X")
    assert doc["record_length"] == 15 and doc["record_type"] == {"offset": 0, "length": 1}
    assert [f["name"] for f in doc["kinds"]["data"]["fields"]] == ["REC_TYPE", "ATENA_NO",
                                                                   "AMOUNT"]
    layout = parse_layout(doc, "rec.yaml")
    assert list(layout.kinds) == ["header", "data", "trailer"]
    assert layout.codes == {b"1": "header", b"2": "data", b"9": "trailer"}
    assert layout.kinds["trailer"].count_field == "COUNT_X"


# -- record kinds in layouts ------------------------------------------------------------------

def test_any_identifier_is_a_row_kind():
    doc = {"name": "x", "record_length": 3, "record_type": {"offset": 0, "length": 1},
           "kinds": {"person": {"code": "P", "fields": [
               {"name": "a", "offset": 1, "length": 2, "type": "text"}]},
               "trailer": {"code": "9", "fields": [
                   {"name": "n", "offset": 1, "length": 2, "type": "int"}]},
               "company": {"code": "C", "fields": [
                   {"name": "b", "offset": 1, "length": 2, "type": "digits"}]}}}
    layout = parse_layout(doc, "x.yaml")
    assert list(layout.kinds) == ["person", "company", "trailer"]
    assert layout.row_kinds == ["person", "company"]
    only_frame = {**doc, "kinds": {"trailer": doc["kinds"]["trailer"]}}
    with pytest.raises(LayoutError, match="has no row kind"):
        parse_layout(only_frame, "x.yaml")
    with pytest.raises(LayoutError, match="must be an identifier"):
        parse_layout({**doc, "kinds": {"9bad": doc["kinds"]["person"]}}, "x.yaml")
    single = parse_layout({"name": "x", "record_length": 3, "kinds": {
        "person": {"fields": doc["kinds"]["person"]["fields"]}}}, "x.yaml")
    assert single.kind_for_code(b"") == "person"


@needs_cobrix
def test_three_kind_fixed_file_decodes_through_ikou_decode(tmp_path, capsys):
    book = COBRIX / "fixed_segments_redefines/test16_fix_len_segments.cob"
    out = tmp_path / "t16.yaml"
    rc = main(["layout", "import", str(book), "--record-type", "SEGMENT-ID",
               "--kind", "company=C:COMPANY", "--kind", "person=P:PERSON",
               "--kind", "po_box=B:PO-BOX", "--out", str(out)])
    assert rc == 0
    rc = main(["decode", str(COBRIX / "fixed_segments_redefines/ENTITY.DB.AUG12.DATA.FIX.LEN.dat"),
               "--layout", str(out), "--out", str(tmp_path / "o" / "t16.arrow")])
    assert rc == 0
    expected = [json.loads(chunk) for chunk in re.split(r"(?<=\})\n(?=\{)",
                (COBRIX / "fixed_segments_redefines/test16.txt").read_text().strip())]
    tables = {k: pa.ipc.open_file(tmp_path / "o" / name).read_all() for k, name in (
        ("C", "t16.arrow"), ("P", "t16.person.arrow"), ("B", "t16.po_box.arrow"))}
    for code, table in tables.items():
        rows = [e for e in expected if e["SEGMENT_ID"] == code]
        assert table.num_rows == len(rows) > 0
    person = tables["P"].to_pylist()
    want = [e["PERSON"] for e in expected if e["SEGMENT_ID"] == "P"]
    assert [p["FIRST_NAME"].strip("\x00 ") for p in person] == [w["FIRST_NAME"] for w in want]
    assert [p["PERSON_ADDRESS"].strip("\x00 ") for p in person] == [w["ADDRESS"] for w in want]


# -- YAML, the copybook: key, the command ---------------------------------------------------

_TOWN = fixed("01  JUKI-REC.",
              "|*    宛名番号",
              "    05  ATENA-NO      PIC 9(10).",
              "|*    氏名（カナ）",
              "    05  NAME-KANA     PIC X(30).",
              "    05  BIRTH         PIC S9(8) COMP-3.",
              "    05  HOUSEHOLD     PIC S9(9) COMP-5.",
              "    05  STATUS        PIC X.",
              "        88  RESIDENT  VALUE '1'.",
              "    05  FILLER        PIC X(5).")


def test_yaml_round_trip_is_byte_identical_and_loads(tmp_path):
    book = tmp_path / "juki.cpy"
    book.write_text(_TOWN, encoding="utf-8")
    out1, out2 = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert main(["layout", "import", str(book), "--out", str(out1)]) == 0
    assert main(["layout", "import", str(book), "--out", str(out2)]) == 0
    text = out1.read_text(encoding="utf-8")
    assert out1.read_bytes() == out2.read_bytes()
    assert text.startswith("# ikou layout imported from the COBOL copybook juki.cpy\n")
    assert "\n- name: ATENA_NO\n  offset: 0\n" in text and "label: 宛名番号" in text
    import hashlib

    assert hashlib.sha256(book.read_bytes()).hexdigest() in text.splitlines()[1]
    layout = load_layout(out1)
    assert layout.record_length == 55 and layout.encoding == "cp037"
    f = layout.kinds["data"].field("BIRTH")
    assert (f.type, f.offset, f.length, f.options["signed"]) == ("packed", 40, 5, True)
    assert layout.kinds["data"].field("HOUSEHOLD").type == "binary"
    assert layout.structure[0] == {"name": "ATENA_NO", "column": "ATENA_NO"}
    assert dump_layout(copybook_layout(book), book) == text


def test_copybook_key_imports_at_load_time_with_overrides(tmp_path):
    (tmp_path / "books").mkdir()
    book = tmp_path / "books" / "juki.cpy"
    book.write_text(_TOWN, encoding="utf-8")
    lay = tmp_path / "juki.yaml"
    lay.write_text("name: juki\nlabel: 住民記録\ncopybook: books/juki.cpy\n"
                   "copybook_options: {encoding: cp037}\n"
                   "fields:\n  - {name: NAME_KANA, blank: null}\n", encoding="utf-8")
    layout = load_layout(lay)
    assert layout.name == "juki" and layout.label == "住民記録"
    assert layout.kinds["data"].field("NAME_KANA").options == {"blank": None,
                                                               "encoding": "cp037"}
    book.write_text(_TOWN.replace("PIC X(30)", "PIC X(40)"), encoding="utf-8")
    assert load_layout(lay).record_length == 65  # no regeneration needed
    book.write_text(_TOWN.replace("PIC X(30)", "PIC Q(30)"), encoding="utf-8")
    with pytest.raises(CopybookError, match=r"juki.cpy:5: PICTURE Q\(30\)"):
        load_layout(lay)
    book.write_text(_TOWN, encoding="utf-8")
    lay.write_text("name: juki\ncopybook: books/juki.cpy\nfields:\n  - {name: NOPE, trim: both}\n")
    with pytest.raises(CopybookError, match=r"juki.yaml:4: field override 'NOPE'"):
        load_layout(lay)
    lay.write_text("name: juki\ncopybook: books/juki.cpy\nrecord_length: 9\n")
    with pytest.raises(CopybookError, match=r"record_length cannot be given with 'copybook:'"):
        load_layout(lay)


def test_cli_errors_are_one_line_with_file_and_line(tmp_path, capsys):
    book = tmp_path / "bad.cpy"
    book.write_text(fixed("01  REC.", "    05  A  PIC X(3).", "    05  B  PIC X(3) FOO."))
    assert main(["layout", "import", str(book)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ikou: error: {book}:3: unexpected 'FOO' in the entry of B"
    assert main(["layout", "import", str(tmp_path / "missing.cpy")]) == 2


def test_cli_writes_record_format_and_stdout(tmp_path, capsys):
    book = tmp_path / "rec.cpy"
    book.write_text(fixed("01  REC.", "    05  A  PIC X(3)."))
    assert main(["layout", "import", str(book), "--record-format", "VB"]) == 0
    out = capsys.readouterr().out
    assert "\nrecord_format: VB\n" in out
    assert main(["layout", "import", str(book)]) == 0
    assert "record_format" not in capsys.readouterr().out


# -- types being added to the kernel: these run once it has them ----------------------------

@needs_cobrix
def test_type_variety_layout_loads_once_the_kernel_has_the_new_types():
    for type_, length, opts in (("float", 4, {}), ("edited", 9, {"picture": "Z(8)-"}),
                                ("binary", 2, {"digits": 4}), ("zoned", 5, {"scale": -3}),
                                ("zoned", 5, {"sign_position": "leading"})):
        if not _kernel_accepts(type_, length, **opts):
            pytest.skip(f"the kernel has no {type_} {opts} yet")
    doc = copybook_layout(COBRIX / "type_variety/test6_copybook.cob",
                          CopybookOptions(cobrix_binary=True))
    layout = parse_layout(doc, "test6.yaml")
    assert len(layout.kinds["data"].fields) == 195


def test_three_kinds_of_redefines_alternatives_decode_through_ikou_decode(tmp_path, capsys):
    from decimal import Decimal

    book = tmp_path / "rec.cpy"
    book.write_text(fixed("01  REC.",
                          "    05  KIND          PIC X.",
                          "    05  BODY.",
                          "        10  NAME      PIC X(8).",
                          "        10  AGE       PIC 9(3).",
                          "    05  PLACE REDEFINES BODY.",
                          "        10  ZIP       PIC X(7).",
                          "        10  FLAG      PIC X(4).",
                          "    05  MONEY REDEFINES BODY.",
                          "        10  AMOUNT    PIC S9(5)V99 COMP-3.",
                          "        10  FILLER    PIC X(7)."))
    records = [b"P" + b"TARO    " + b"042", b"A" + b"4380013" + b"ABCD",
               b"M" + bytes.fromhex("1234567C") + b" " * 7, b"P" + b"HANAKO  " + b"007"]
    data = tmp_path / "rec.dat"
    data.write_bytes(b"".join(r.decode("ascii").encode("cp037") if r[:1] != b"M"
                              else r[:1].decode().encode("cp037") + r[1:5]
                              + r[5:].decode().encode("cp037") for r in records))
    lay = tmp_path / "rec.yaml"
    assert main(["layout", "import", str(book), "--record-type", "KIND", "--kind",
                 "data=P:BODY", "--kind", "place=A:PLACE", "--kind", "money=M:MONEY",
                 "--out", str(lay)]) == 0
    assert main(["decode", str(data), "--layout", str(lay), "--out",
                 str(tmp_path / "rec.arrow")]) == 0
    read = {k: pa.ipc.open_file(tmp_path / f"rec{k}.arrow").read_all().to_pylist()
            for k in ("", ".place", ".money")}
    assert [(r["NAME"], r["AGE"], r["_record"]) for r in read[""]] == [
        ("TARO", Decimal(42), 1), ("HANAKO", Decimal(7), 4)]
    assert [(r["ZIP"], r["FLAG"]) for r in read[".place"]] == [("4380013", "ABCD")]
    assert [r["AMOUNT"] for r in read[".money"]] == [Decimal("12345.67")]
    assert "4 records, 4 rows" in capsys.readouterr().err


@needs_cobrix
def test_test1_decodes_as_cobrix_once_the_kernel_reads_binary_digits(tmp_path):
    if not _kernel_accepts("binary", 2, digits=4):
        pytest.skip("the kernel has no binary digits option yet")
    case = COBRIX / "companies_comp3_odo"
    lay = tmp_path / "t1.yaml"
    assert main(["layout", "import", str(case / "test1_copybook.cob"), "--out", str(lay)]) == 0
    assert main(["decode", str(case / "example.bin"), "--layout", str(lay), "--out",
                 str(tmp_path / "t1.arrow")]) == 0
    rows = pa.ipc.open_file(tmp_path / "t1.arrow").read_all().to_pylist()
    expected = [json.loads(line) for line in (case / "test1.txt").read_text().splitlines()]
    assert len(rows) == len(expected) == 10
    for row, want in zip(rows, expected, strict=True):
        n = int(row["NUMBER_OF_ACCTS"])
        assert row["ID"] == want["ID"] and n == want["METADATA"]["NUMBER_OF_ACCTS"]
        assert row["SHORT_NAME"].strip("\x00 ") == want["COMPANY"]["SHORT_NAME"]
        accounts = want["METADATA"]["ACCOUNT"]["ACCOUNT_DETAIL"]
        assert [row[f"ACCOUNT_NUMBER_{i}"].strip() for i in range(1, n + 1)] == [
            a["ACCOUNT_NUMBER"] for a in accounts]
        assert [row[f"ACCOUNT_TYPE_N_{i}"] for i in range(1, n + 1)] == [
            a.get("ACCOUNT_TYPE_N") for a in accounts]
