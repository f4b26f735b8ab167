"""Cobrix's variable-length acceptance files (test5 / test5b: RDWs little- and big-endian, the
length counting the payload only) read with ``ikou decode`` and compared with Cobrix's rows."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from ikou.pipeline.cli import main

CASE = Path(__file__).resolve().parents[1] / "data" / "cobrix" / "later_vrl_multisegment_rdw"
LAYOUT = """name: test5
encoding: cp037
record_length: 64
record_format: V
rdw: {{byte_order: {order}, includes_header: false}}
fields:
  - {{name: SEGMENT_ID, offset: 0, length: 5, type: text}}
  - {{name: COMPANY_ID, offset: 5, length: 10, type: text}}
  - {{name: PHONE_NUMBER, offset: 15, length: 17, type: text}}
  - {{name: CONTACT_PERSON, offset: 32, length: 28, type: text}}
"""


def cobrix_text(s: str) -> str:
    """Cobrix's ``common`` code page (bytes outside the EBCDIC invariant set read as spaces)
    and Java's ``String.trim``."""
    return "".join(c if " " <= c <= "~" else " " for c in s).strip()


@pytest.mark.parametrize("data, order", [
    ("test5_data/COMP.DETAILS.SEP30.DATA.dat", "little"),
    ("test5b_data/COMP.DETAILS.FEB02.DATA.RDW.BE.dat", "big")])
def test_cobrix_multisegment_rdw_files(tmp_path, data, order, capsys):
    (tmp_path / "t5.layout.yaml").write_text(LAYOUT.format(order=order), encoding="utf-8")
    assert main(["decode", str(CASE / data), "--layout", str(tmp_path / "t5.layout.yaml"),
                 "--out", str(tmp_path / "t5.arrow")]) == 0
    assert "1000 records, 1000 rows" in capsys.readouterr().err
    rows = pa.ipc.open_file(str(tmp_path / "t5.arrow")).read_all().to_pylist()
    expected = [json.loads(line) for line in (CASE / "test5.txt").read_text().splitlines()]
    assert len(expected) == 60
    offset = 0
    for row, exp in zip(rows, expected, strict=False):
        assert row["_record"] == exp["Record_Id"] + 1 and row["_offset"] == offset
        offset += 4 + exp["Record_Byte_Length"]
        got = [cobrix_text(row[k]) for k in ("SEGMENT_ID", "COMPANY_ID", "PHONE_NUMBER",
                                             "CONTACT_PERSON")]
        assert got == [exp["SEGMENT_ID"], exp["COMPANY_ID"], exp["CONTACTS"]["PHONE_NUMBER"],
                       exp["CONTACTS"]["CONTACT_PERSON"]]
