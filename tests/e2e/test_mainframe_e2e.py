"""Mainframe files end to end: an IBM 930 export (EBCDIC record types and numbers, SO/SI kanji,
a PIC N field, a binary amount, 外字 through the file's own 外字 table) through ``ikou decode`` and
``ikou run --layout`` (a one-source job); a KEIS and a JEF file through ``ikou decode``."""

from __future__ import annotations

import json

import fastavro
import pyarrow as pa
import pytest

from ikou.kernels import get_encoding
from ikou.pipeline.cli import main


def encoder(name):
    enc = get_encoding(name)
    single = {s: b for b, s in enumerate(enc.single) if s is not None}
    double = {s: c for c, s in enc.double.items()}
    si, so = (enc.shift_in[0], enc.shift_out[0]) if enc.mixed else (b"", b"")

    def encode(text, length, gaiji=None, dbcs=False):
        out, in_double = bytearray(), dbcs
        for ch in text:
            code = (gaiji or {}).get(ch, double.get(ch))
            if ch in single and not dbcs:
                if in_double:
                    out += so
                    in_double = False
                out.append(single[ch])
            else:
                if not in_double:
                    out += si
                    in_double = True
                out += code.to_bytes(2, "big")
        if in_double and not dbcs:
            out += so
        pad = b"\x40\x40" if dbcs else bytes([single[" "]])
        out += pad * length
        return bytes(out[:length])
    return encode


LAYOUT = """\
name: hostjuki
encoding: {encoding}
record_length: 60
record_type: {{offset: 0, length: 1}}
kinds:
  header:
    code: "1"
    fields:
      - {{name: lg_code, offset: 1, length: 6, type: digits}}
  data:
    code: "2"
    fields:
      - {{name: atena_no, offset: 1, length: 10, type: digits}}
      - {{name: name, offset: 11, length: 16, type: text}}
      - {{name: kana, offset: 27, length: 8, type: dbcs}}
      - {{name: birth, offset: 35, length: 7, type: wareki}}
      - {{name: amount, offset: 42, length: 4, type: binary}}
      - {{name: pad, offset: 46, length: 14, type: filler}}
  trailer:
    code: "9"
    count_field: record_count
    fields:
      - {{name: record_count, offset: 1, length: 8, type: int}}
"""
NAMES = ["山田太郎", "髙橋花子", "佐藤一", "鈴木次郎", "田中", "渡辺　明"]


def make_file(tmp_path, encoding, gaiji_code):
    enc = encoder(encoding)
    gaiji = {"髙": gaiji_code}
    recs = [enc("1012345", 60)]
    for i in range(12):
        name = NAMES[i % len(NAMES)] + ("A" if i % 4 == 0 else "")
        recs.append(enc("2" + f"{i + 1:010d}", 11) + enc(name, 16, gaiji)
                    + enc("ヤマダ", 8, dbcs=True) + enc("4010203", 7)
                    + (i * 1000 - 3000).to_bytes(4, "big", signed=True) + enc("", 14))
    bad = bytearray(recs[3])
    at = 11 + len(get_encoding(encoding).shift_in[0])  # the name's first double-byte code
    invalid = 0x4140 if encoding.startswith("ibm") else 0xA0A0
    assert invalid not in get_encoding(encoding).double
    bad[at:at + 2] = invalid.to_bytes(2, "big")
    recs[3] = bytes(bad)
    recs.append(enc("9" + f"{12:08d}", 60))
    data = tmp_path / "host.dat"
    data.write_bytes(b"".join(recs))
    (tmp_path / "host.layout.yaml").write_text(LAYOUT.format(encoding=encoding), encoding="utf-8")
    (tmp_path / "gaiji.csv").write_text(
        f"code,encoding,unicode,mj,note\n{gaiji_code:04X},{encoding},U+9AD9,MJ028902,はしご高\n",
        encoding="utf-8")
    return data


@pytest.mark.parametrize("encoding,gaiji_code", [("ibm930", 0x6941), ("keis83", 0x81A1),
                                                 ("jef", 0x80A1)])
def test_decode_a_mainframe_file(tmp_path, capsys, encoding, gaiji_code):
    data = make_file(tmp_path, encoding, gaiji_code)
    rc = main(["decode", str(data), "--layout", str(tmp_path / "host.layout.yaml"), "--gaiji",
               str(tmp_path / "gaiji.csv"), "--out", str(tmp_path / "d" / "hostjuki.arrow"),
               "--rejects", str(tmp_path / "d" / "rejects.avro")])
    err = capsys.readouterr()[1]
    assert rc == 0, err
    table = pa.ipc.open_file(tmp_path / "d" / "hostjuki.arrow").read_all()
    assert table.num_rows == 11
    names = table.column("name").to_pylist()
    assert names[:3] == ["山田太郎A", "髙橋花子", "鈴木次郎"] and "渡辺　明" in names
    assert set(table.column("kana").to_pylist()) == {"ヤマダ"}
    assert table.column("atena_no").to_pylist()[0] == "0000000001"
    assert table.column("amount").to_pylist()[:2] == [-3000, -2000]
    assert str(table.column("birth").to_pylist()[0]) == "1989-02-03"
    with open(tmp_path / "d" / "rejects.avro", "rb") as f:
        rejects = list(fastavro.reader(f))
    assert len(rejects) == 1 and rejects[0]["record"] == 4
    message = rejects[0]["reasons"][0]["message"]
    invalid = 0x4140 if encoding.startswith("ibm") else 0xA0A0
    assert message == (f"field name (text): INVALID_DBCS: invalid double-byte code at byte "
                       f"{11 + len(get_encoding(encoding).shift_in[0])} (code 0x{invalid:04X})")
    if encoding == "ibm930":
        # the same through a one-source job, byte for byte
        rc = main(["run", "--layout", str(tmp_path / "host.layout.yaml"), "--gaiji",
                   str(tmp_path / "gaiji.csv"), "--out", str(tmp_path / "run"), str(data)])
        assert rc == 0, capsys.readouterr()[1]
        assert ((tmp_path / "run" / "current" / "hostjuki.arrow").read_bytes()
                == (tmp_path / "d" / "hostjuki.arrow").read_bytes())
        manifest = json.loads((tmp_path / "run" / "current" / "manifest.json").read_text())
        assert manifest["versions"]["kernel_impl"] in ("compiled", "python")


def test_unmapped_gaiji_goes_to_quarantine(tmp_path, capsys):
    data = make_file(tmp_path, "ibm939", 0x6942)
    (tmp_path / "gaiji.csv").write_text("code,encoding,unicode\n6941,ibm939,U+9AD9\n",
                                        encoding="utf-8")
    rc = main(["decode", str(data), "--layout", str(tmp_path / "host.layout.yaml"), "--gaiji",
               str(tmp_path / "gaiji.csv"), "--out", str(tmp_path / "d.arrow"),
               "--rejects", str(tmp_path / "r.avro")])
    assert rc == 0, capsys.readouterr()[1]
    with open(tmp_path / "r.avro", "rb") as f:
        msgs = [r["reasons"][0]["message"] for r in fastavro.reader(f)]
    assert sum("UNMAPPED_GAIJI" in m and "(code 0x6942)" in m for m in msgs) == 2
