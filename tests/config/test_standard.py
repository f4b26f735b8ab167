"""Target definitions (pipeline/data/standard) and code tables (pipeline/data/codes)."""

from __future__ import annotations

import re
import textwrap

import pyarrow as pa
import pytest

from ikou.pipeline.config.standard import (
    DATE_STATUSES,
    CodeTableError,
    StandardError,
    load_code_table,
    load_standard,
    standard_names,
)

TARGETS = ["juki", "kojin_juminzei", "kokuho_kojin", "kokuho_setai"]


def test_shipped_definitions_are_the_four_targets():
    assert standard_names() == TARGETS


@pytest.mark.parametrize("name", TARGETS)
def test_definition_items_are_complete(name):
    std = load_standard(name)
    nos = [it.no for it in std.items]
    assert nos == sorted(nos) and len(set(nos)) == len(nos)
    for it in std.items:
        assert it.source, f"item {it.no} has no source note"
        assert re.match(r"^[a-z][a-z0-9_]*$", it.field)
        assert it.length > 0
        assert (it.type == "code") == (it.codes is not None)
        if it.codes:
            assert all(len(c) <= it.length for c in std.codes(it).codes)
    assert std.keys and all(std.has_item(k) for k in std.keys)


@pytest.mark.parametrize("name", TARGETS)
def test_schema_carries_item_metadata(name):
    std = load_standard(name)
    schema = std.schema()
    assert schema.names[-3:] == ["_source", "_record", "_offset"]
    assert schema.metadata[b"ikou.standard"] == name.encode()
    for it in std.items:
        f = schema.field(it.field)
        assert f.metadata[b"ikou.name"].decode() == it.name
        assert int(f.metadata[b"ikou.item_no"]) == it.no
        assert f.metadata[b"ikou.type"].decode() == it.type
        assert int(f.metadata[b"ikou.length"]) == it.length
        assert f.metadata[b"ikou.required"] == (b"true" if it.required else b"false")
        if it.type == "date":
            assert f.type == pa.date32()
            assert schema.field(it.field + "_raw").type == pa.string()
            assert schema.field(it.field + "_status").type == pa.dictionary(pa.int8(), pa.string())
        elif it.type == "int":
            assert f.type == pa.int64()
        else:
            assert f.type == pa.string()


def test_resident_definition_follows_domain_facts():
    std = load_standard("juki")
    assert std.keys == ("atena_no",)
    assert std.item("宛名番号").check == "atena_mod11"
    assert std.item("世帯番号").check == "atena_mod11"
    kojin = std.item("個人番号")
    assert (kojin.length, kojin.fixed, kojin.check, kojin.personal) == (12, True, "kojin_bango",
                                                                        True)
    for name in ("生年月日", "住民となった年月日", "住所を定めた年月日", "届出の年月日"):
        assert std.item(name).type == "date"
    tax = load_standard("kojin_juminzei")
    assert tax.keys == ("shikibetsu_no", "soto_nendo")
    assert (tax.item("識別番号").length, tax.item("相当年度").length) == (15, 4)
    assert tax.item("宛名番号").references == "resident"


def test_code_tables_mark_unverified_and_follow_domain():
    for name in ("seibetsu", "zokugara", "ido_jiyu"):
        assert load_code_table(name).verified is False
    zoku = set(load_code_table("zokugara").codes.values())
    assert {"世帯主", "夫", "妻", "夫(未届)", "妻(未届)", "子", "縁故者", "同居人"} <= zoku
    assert not {"祖父", "孫"} & zoku
    nengo = load_code_table("nengo")
    assert nengo.codes == {"01": "明治", "02": "大正", "03": "昭和", "04": "平成", "05": "令和"}
    assert [nengo.extra[c]["base_year"] for c in nengo.codes] == ["1868", "1912", "1926",
                                                                  "1989", "2019"]
    assert [nengo.extra[c]["start"] for c in nengo.codes] == [
        "1868-01-25", "1912-07-30", "1926-12-25", "1989-01-08", "2019-05-01"]
    assert tuple(load_code_table("date_status").codes) == DATE_STATUSES


GOOD_ITEM = "{item_no: 1, name: 宛名番号, field: atena_no, type: digits, length: 15, source: x}"


def _write(tmp_path, items: str, extra: str = "", name="t.yaml"):
    text = textwrap.dedent("""\
        name: t
        label: test
        {extra}items:
        {items}
        """).format(extra=extra, items=textwrap.indent(items, "  "))
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("items, message, line", [
    ("- " + GOOD_ITEM + "\n- {item_no: 2, name: 氏名, field: shimei, type: txt, length: 5}",
     "item 2 '氏名': unknown type 'txt'", 5),
    ("- " + GOOD_ITEM + "\n- {item_no: 1, name: 氏名, field: shimei, type: text, length: 5}",
     "item number 1 already used on line 4", 5),
    ("- {item_no: 1, name: 氏名, field: Shimei, type: text, length: 5}",
     "'field' must be a lower-case ASCII identifier", 4),
    ("- {item_no: 1, name: 性別, field: sex, type: code, length: 1}",
     "a 'code' item needs 'codes'", 4),
    ("- {item_no: 1, name: 性別, field: sex, type: code, length: 1, codes: nosuch}",
     "code table 'nosuch'", 4),
    ("- {item_no: 1, name: 続柄, field: z, type: code, length: 1, codes: zokugara}",
     "codes longer than 桁数 1", 4),
    ("- {item_no: 1, name: 氏名, field: shimei, type: text, length: 0}",
     "'length' (桁数) must be a positive integer", 4),
    ("- {item_no: 1, name: 氏名, field: shimei, type: text, length: 5, colour: red}",
     "unknown keys: colour", 4),
    ("- {item_no: 1, name: 氏名, field: shimei, type: text, length: 5, check: atena_mod11}",
     "a check digit needs a 'digits' item", 4),
    ("- {item_no: 1, name: 氏名, field: shimei, type: text, length: 5, allow_blank: true}",
     "'allow_blank' applies to date items only", 4),
    ("- {item_no: 1, name: 生年月日, field: birth, type: date, length: 8}\n"
     "- {item_no: 2, name: 生年月日の元値, field: birth_raw, type: text, length: 8}",
     "column 'birth_raw' collides with item 1", 5),
])
def test_bad_definition_names_file_and_line(tmp_path, items, message, line):
    path = _write(tmp_path, items)
    with pytest.raises(StandardError) as exc:
        load_standard(path)
    assert isinstance(exc.value, ValueError)
    assert f"{path}:{line}:" in str(exc.value)
    assert message in str(exc.value)


def test_bad_keys_are_rejected(tmp_path):
    path = _write(tmp_path, "- " + GOOD_ITEM, extra="keys: [nosuch]\n")
    with pytest.raises(StandardError, match=r"key 'nosuch' is not an item field"):
        load_standard(path)


def test_user_supplied_definition_and_code_tables(tmp_path):
    codes = tmp_path / "codes"
    codes.mkdir()
    (codes / "kubun.csv").write_text("# label: 区分\ncode,name\nA,甲\nB,乙\n", encoding="utf-8")
    items = ("- " + GOOD_ITEM + "\n- {item_no: 2, name: 区分, field: kubun, type: code, "
             "length: 1, codes: kubun, required: true}")
    path = _write(tmp_path, items, extra="codes_dir: codes\nkeys: [atena_no]\n")
    std = load_standard(path)
    assert std.codes("区分").codes == {"A": "甲", "B": "乙"}
    assert [it.field for it in std.required] == ["kubun"]
    assert std.schema().names == ["atena_no", "kubun", "_source", "_record", "_offset"]


@pytest.mark.parametrize("text, message", [
    ("code,name\n1,男\n1,女\n", r"x\.csv:3: duplicate code '1'"),
    ("# label: x\nkey,label\n1,男\n", r"x\.csv:2: header must have 'code' and 'name'"),
    ("code,name\n1,男,余分\n", r"x\.csv:2: expected 2 columns, got 3"),
    ("code,name\n", r"x\.csv: no codes"),
])
def test_bad_code_table(tmp_path, text, message):
    p = tmp_path / "x.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(CodeTableError, match=message):
        load_code_table(p)
