"""Layout loading and validation: every error names the file, the line, the kind and the field."""

import textwrap

import pyarrow as pa
import pytest

from ikou.pipeline.config.layout import LayoutError, load_layout

GOOD = """\
name: juki
label: 住民記録
encoding: cp932
record_length: 40
record_separator: "\\r\\n"
record_type: {offset: 0, length: 1}
kinds:
  header:
    code: "1"
    fields:
      - {name: lg_code, label: 団体コード, offset: 1, length: 6, type: digits}
  data:
    code: "2"
    fields:
      - {name: atena_no, label: 宛名番号, offset: 1, length: 10, type: digits}
      - {name: name, label: 氏名, offset: 11, length: 10, type: text}
      - {name: birth, label: 生年月日, offset: 21, length: 7, type: wareki}
      - {name: moved_in, offset: 28, length: 8, type: date}
      - {name: size, offset: 36, length: 3, type: int}
      - {name: pad, offset: 39, length: 1, type: filler}
  trailer:
    code: "9"
    count_field: record_count
    fields:
      - {name: record_count, label: 合計件数, offset: 1, length: 8, type: int}
"""


def write(tmp_path, text, name="l.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_good_layout_loads(tmp_path):
    lay = load_layout(write(tmp_path, GOOD))
    assert lay.name == "juki"
    assert lay.record_length == 40 and lay.separator == b"\r\n" and lay.stride == 42
    assert lay.codes == {b"1": "header", b"2": "data", b"9": "trailer"}
    assert lay.kind_for_code(b"2") == "data" and lay.kind_for_code(b"5") is None
    assert lay.kinds["trailer"].count_field == "record_count"
    assert [f.name for f in lay.kinds["data"].fields][:2] == ["atena_no", "name"]


def test_arrow_schema_carries_japanese_labels(tmp_path):
    schema = load_layout(write(tmp_path, GOOD)).arrow_schema("data")
    assert schema.names == [
        "atena_no", "name", "birth", "birth_raw", "birth_status", "moved_in", "size"
    ]
    assert schema.field("atena_no").metadata[b"label"].decode() == "宛名番号"
    assert schema.field("birth_status").metadata[b"role"] == b"status"
    assert schema.field("birth").type == pa.date32()
    assert schema.field("size").type == pa.int64()
    assert schema.metadata[b"layout"] == b"juki"


def test_single_kind_layout_with_top_level_fields(tmp_path):
    lay = load_layout(write(tmp_path, """\
        name: plain
        record_length: 5
        fields:
          - {name: code, offset: 0, length: 5, type: digits}
        """))
    assert list(lay.kinds) == ["data"] and lay.record_type is None
    assert lay.kind_for_code(b"x") == "data" and lay.separator == b""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("{name: name, label: 氏名, offset: 11, length: 10, type: text}",
         "{name: name, label: 氏名, offset: 9, length: 10, type: text}",
         r"l\.yaml:\d+: kind 'data', field 'name': bytes 9-18 overlap field 'atena_no' \(bytes 1-10\)"),
        ("{name: size, offset: 36, length: 3, type: int}",
         "{name: size, offset: 36, length: 5, type: int}",
         r"kind 'data', field 'size': bytes 36-40 lie outside the record \(record_length 40\)"),
        ("type: text}", "type: txt}", r"kind 'data', field 'name': unknown type 'txt'"),
        ("{name: moved_in, offset: 28, length: 8, type: date}",
         "{name: moved_in, offset: 28, length: 6, type: date}",
         r"field 'moved_in': a date \(YYYYMMDD\) has length 8, not 6"),
        ("{name: birth, label: 生年月日, offset: 21, length: 7, type: wareki}",
         "{name: birth, label: 生年月日, offset: 21, length: 6, type: wareki}",
         r"field 'birth': a wareki date .* not 6"),
        ('code: "9"', 'code: "2"', r"kind 'trailer': record-type code '2' is also the code of kind 'data'"),
        ('code: "9"', 'code: "99"', r"kind 'trailer': record-type code '99' has 2 bytes"),
        ("count_field: record_count", "count_field: nothing",
         r"kind 'trailer': count_field 'nothing' is not a field"),
        ("record_length: 40", "record_length: -1", r"record_length must be at least 1"),
        ("encoding: cp932", "encoding: ebcdic", r"encoding 'ebcdic' is not supported"),
        ("{name: pad, offset: 39, length: 1, type: filler}",
         "{name: _pad, offset: 39, length: 1, type: filler}",
         r"kind 'data': field name '_pad' must be an ASCII identifier"),
        ("{name: size, offset: 36, length: 3, type: int}",
         "{name: birth_raw, offset: 36, length: 3, type: int}",
         r"column name 'birth_raw' is used twice"),
        ("  trailer:", "  foot-er:", r"record kind 'foot-er' must be an identifier"),
        ("{name: pad, offset: 39, length: 1, type: filler}",
         "{name: pad, offset: 39, lenght: 1, type: filler}", r"field 'pad': 'length' is required"),
        ("label: 住民記録", "labl: 住民記録", r"unknown key\(s\) labl in the layout"),
        ('record_separator: "\\r\\n"', "record_separator: ';'", r"record_separator must be none"),
    ],
)
def test_layout_errors_name_file_kind_and_field(tmp_path, old, new, message):
    assert old in GOOD, old
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(LayoutError, match=message):
        load_layout(path)


def test_kernel_option_errors_name_the_field(tmp_path):
    path = write(tmp_path, GOOD.replace("type: text}", "type: text, no_such_option: 1}"))
    with pytest.raises(LayoutError, match=r"l\.yaml:\d+: kind 'data', field 'name': "):
        load_layout(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(LayoutError, match="file not found"):
        load_layout(tmp_path / "nope.yaml")
    with pytest.raises(LayoutError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_layout(write(tmp_path, "name: [unclosed\n", "bad.yaml"))
    with pytest.raises(LayoutError, match="duplicate key"):
        load_layout(write(tmp_path, GOOD + "name: again\n", "dup.yaml"))


def test_several_kinds_need_a_record_type(tmp_path):
    text = GOOD.replace("record_type: {offset: 0, length: 1}\n", "")
    with pytest.raises(LayoutError, match="need a 'record_type'"):
        load_layout(write(tmp_path, text))
