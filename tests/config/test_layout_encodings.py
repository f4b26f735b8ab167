"""Layouts and 外字 tables for mainframe files: the encoding (name, options, per-field override),
record-type codes in the file's encoding, dbcs / binary fields, 外字 codes in the file's encoding."""

import pytest

from ikou.pipeline.config.gaiji import GaijiError, load_gaiji_table
from ikou.pipeline.config.layout import LayoutError, load_layout

LAYOUT = """\
name: host
encoding: {encoding}
record_length: 30
record_type: {{offset: 0, length: 1}}
kinds:
  data:
    code: "2"
    fields:
      - {{name: name, offset: 1, length: 10, type: text}}
      - {{name: latin, offset: 11, length: 5, type: text, encoding: cp037}}
      - {{name: kana, offset: 16, length: 4, type: dbcs}}
      - {{name: n, offset: 20, length: 4, type: int}}
      - {{name: amount, offset: 24, length: 4, type: binary, signed: false}}
      - {{name: raw, offset: 28, length: 2, type: bytes}}
  trailer:
    code: "9"
    count_field: c
    fields:
      - {{name: c, offset: 1, length: 4, type: binary}}
"""


def _write(tmp_path, text):
    p = tmp_path / "l.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_encoding_options_and_overrides(tmp_path):
    lay = load_layout(_write(tmp_path, LAYOUT.format(encoding='{name: KEIS83, space: "a1a1"}')))
    assert lay.encoding == "keis83;space=A1A1"
    f = {x.name: x for x in lay.kinds["data"].fields}
    assert f["name"].options["encoding"] == "keis83;space=A1A1"
    assert f["latin"].options["encoding"] == "cp037"
    assert "encoding" not in f["raw"].options and "encoding" not in f["amount"].options
    assert lay.kinds["data"].code == b"\xf2" and lay.kinds["trailer"].code == b"\xf9"
    plan = lay.plan("data")
    assert [s.encoding for s in plan.fields][:4] == ["keis83;space=A1A1", "cp037",
                                                      "keis83;space=A1A1", "keis83;space=A1A1"]


@pytest.mark.parametrize("encoding,needle", [
    ("ibm931", "encoding 'ibm931' is not supported"),
    ("{name: jef, single: ascii}", "single must be one of ebcdic, ebcdik"),
    ("{name: keis83, shift_in: 0A4}", "must be 2 or 4 hex digits"),
    ("{name: ibm930, colour: red}", "unknown encoding option(s) colour"),
    ("cp037", "a dbcs field needs a double-byte encoding"),
])
def test_bad_encodings_name_the_file(tmp_path, encoding, needle):
    with pytest.raises(LayoutError, match="l.yaml") as e:
        load_layout(_write(tmp_path, LAYOUT.format(encoding=encoding)))
    assert needle in str(e.value)


def test_encoding_on_a_field_that_takes_none(tmp_path):
    text = LAYOUT.format(encoding="ibm930").replace("type: bytes}", "type: bytes, encoding: jef}")
    with pytest.raises(LayoutError, match="takes no encoding"):
        load_layout(_write(tmp_path, text))


def test_gaiji_codes_in_the_files_encoding(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("code,encoding,unicode,mj,note,sjis\n6941,ibm930,U+9AD9,MJ028902,,\n"
                 "80A1,jef,U+FA11,,,\n,,U+5D0E U+E0101,,,F040\n", encoding="utf-8")
    t = load_gaiji_table(p)
    assert t.mapping == {("ibm930", 0x6941): "髙", ("jef", 0x80A1): "\ufa11",
                         0xF040: "崎\U000E0101"}
    assert t.mj == {("ibm930", 0x6941): "MJ028902"}
    for row, needle in [("4541,ibm930,U+4E00", "not in the user-defined (外字) area of ibm930"),
                        ("6941,ibm931,U+4E00", "not supported"),
                        ("6941,cp037,U+4E00", "user-defined (外字) area of cp037")]:
        p.write_text("code,encoding,unicode\n" + row + "\n", encoding="utf-8")
        with pytest.raises(GaijiError, match="g.csv:2") as e:
            load_gaiji_table(p)
        assert needle in str(e.value)
    p.write_text("code,unicode\n6941,U+4E00\n", encoding="utf-8")
    with pytest.raises(GaijiError, match="encoding"):
        load_gaiji_table(p)
