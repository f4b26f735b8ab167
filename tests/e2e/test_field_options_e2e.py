"""Numeric and bytes field types and the per-field options, end to end: written in a layout YAML, decoded by
``ikou decode`` (no pipeline) and by ``ikou run`` (Beam), read back from the Arrow and Avro files."""

import decimal
import json
import textwrap

import fastavro
import pyarrow as pa
import pyarrow.ipc
import pytest

from ikou.pipeline.cli import main

LAYOUT = """\
name: options
record_length: 48
record_separator: "\\n"
fields:
  - {name: amount_zoned, offset: 0, length: 5, type: zoned, scale: 2}
  - {name: amount_packed, offset: 5, length: 3, type: packed, scale: 0}
  - {name: ratio, offset: 8, length: 6, type: decimal, scale: 3}
  - {name: raw, offset: 14, length: 2, type: bytes}
  - {name: kana, offset: 16, length: 8, type: text, kana_widen: true}
  - {name: code, offset: 24, length: 4, type: digits, on_error: "null"}
  - {name: note, offset: 28, length: 6, type: text, on_error: replace, replacement: "〓"}
  - {name: paid, offset: 34, length: 8, type: date, low_value: error}
  - {name: count, offset: 42, length: 6, type: int}
"""


def record(zoned, packed, dec, raw, kana, code, note, paid, count):
    rec = zoned + packed + dec + raw + kana + code + note + paid + count
    assert len(rec) == 48, len(rec)
    return rec + b"\n"


GOOD = record(b"1234}", b"\x01\x23\x4d", b"   -15",
              b"\x00\xff", "ｶﾞｯｺｳ".encode("cp932").ljust(8), b"0042", b"ok".ljust(6),
              b"20240229", b"   -12")
BAD_CODE = record(b"0000A", b"\x00\x00\x1c", b"000001", b"AB", "ﾊﾟﾝ".encode("cp932").ljust(8),
                  b"12X4", b"\x85\x40".ljust(6),
                  b"        ", b"     7")
REJECTED = record(b"0000A", b"\x00\x00\x1c", b"000001", b"AB", b" " * 8, b"0001", b"x".ljust(6),
                  b"\x00" * 8, b"     1")


@pytest.fixture
def files(tmp_path):
    layout = tmp_path / "options.layout.yaml"
    layout.write_text(textwrap.dedent(LAYOUT), encoding="utf-8")
    data = tmp_path / "options.dat"
    data.write_bytes(GOOD + BAD_CODE + REJECTED)
    return layout, data


def read_arrow(path):
    with pa.ipc.open_file(path) as f:
        return f.read_all()


def check_rows(table):
    assert table.num_rows == 2
    assert table.schema.field("amount_zoned").type == pa.decimal128(5, 2)
    assert table.schema.field("amount_packed").type == pa.decimal128(5, 0)
    assert table.schema.field("raw").type == pa.binary()
    rows = table.to_pylist()
    good, bad = rows
    assert good["amount_zoned"] == decimal.Decimal("-123.40")  # '}' overpunch: last digit 0, negative
    assert good["amount_packed"] == decimal.Decimal("-1234")    # sign nibble D
    assert good["ratio"] == decimal.Decimal("-0.015")
    assert good["raw"] == b"\x00\xff"
    assert good["kana"] == "ガッコウ"                          # ｶﾞ merged into ガ, widened
    assert good["code"] == "0042" and good["note"] == "ok"
    assert str(good["paid"]) == "2024-02-29" and good["count"] == -12
    assert bad["amount_zoned"] == decimal.Decimal("0.01")      # 'A' overpunch: +1
    assert bad["amount_packed"] == decimal.Decimal("1")        # sign nibble C
    assert bad["kana"] == "パン"
    assert bad["code"] is None                                 # on_error: null keeps the row
    assert bad["note"] == "〓@"                                 # replace: the bad lead byte only
    assert bad["paid"] is None                                 # blank date → null by default
    assert [r["_record"] for r in rows] == [1, 2]


def test_options_through_ikou_decode(files, tmp_path):
    layout, data = files
    out, rejects = tmp_path / "out.arrow", tmp_path / "rejects.avro"
    rc = main(["decode", str(data), "--layout", str(layout), "--out", str(out),
               "--rejects", str(rejects)])
    assert rc == 0
    check_rows(read_arrow(out))
    with open(rejects, "rb") as f:
        quarantined = list(fastavro.reader(f))
    assert [q["record"] for q in quarantined] == [3]
    assert quarantined[0]["raw"] == REJECTED[:48]
    assert [(r["field"], r["code"]) for r in quarantined[0]["reasons"]] == [("paid", "LOW_VALUE")]


def test_options_through_ikou_run(files, tmp_path):
    layout, data = files
    out = tmp_path / "run"
    rc = main(["run", "--layout", str(layout), "--out", str(out), str(data)])
    assert rc == 0
    check_rows(read_arrow(out / "current" / "options.arrow"))
    manifest = json.loads((out / "current" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert '"LOW_VALUE": 1' in text.replace("\n", "")
