"""Nested output (groups as structs, OCCURS as lists) from one flat decode."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ikou.pipeline.cli import main
from ikou.transforms.decode.shape import ShapeError, nest_table, occurs_errors

COPYBOOK = """\
       01  REC.
           05  ID            PIC 9(4).
           05  PERSON.
               10  NAME      PIC X(6).
               10  N-KIDS    PIC 9.
               10  KID       OCCURS 3 DEPENDING ON N-KIDS.
                   15  KID-NAME  PIC X(4).
                   15  KID-AGE   PIC 99.
           05  CODES         PIC X OCCURS 2.
"""
RL = 4 + 6 + 1 + 3 * 6 + 2


def _record(i: int, name: str, kids: list[tuple[str, int]], n: int | None = None) -> bytes:
    body = f"{i:04d}{name:<6}{len(kids) if n is None else n}"
    for k, age in kids + [("", 0)] * (3 - len(kids)):
        body += f"{k:<4}{age:02d}"
    return (body + "AB").encode("cp037")


def test_nest_table_builds_structs_and_cut_lists():
    t = pa.table({"ID": [1, 2], "N": [1, 0], "A_1": ["x", "y"], "A_2": ["p", "q"],
                  "_record": [1, 2]})
    st = [{"name": "ID", "column": "ID"},
          {"name": "G", "children": [{"name": "N", "column": "N"},
                                     {"name": "L", "occurs": 2, "depending_on": "N",
                                      "children": [{"name": "A", "column": "A"}]}]}]
    rows = nest_table(t, st).to_pylist()
    assert rows == [{"ID": 1, "G": {"N": 1, "L": [{"A": "x"}]}, "_record": 1},
                    {"ID": 2, "G": {"N": 0, "L": []}, "_record": 2}]
    assert occurs_errors(pa.table({"N": [3, 2, -1]}), st[1:][0]["children"]) == [
        (0, "N", "OCCURS L DEPENDING ON N: 3 is outside 0..2"),
        (2, "N", "OCCURS L DEPENDING ON N: -1 is outside 0..2")]
    with pytest.raises(ShapeError, match="depends on"):
        nest_table(t.drop(["N"]), st)


def test_flat_and_nested_come_from_one_decode_and_bad_counters_are_quarantined(tmp_path):
    import fastavro

    book = tmp_path / "kids.cpy"
    book.write_text(COPYBOOK)
    assert main(["layout", "import", str(book), "--shape", "nested",
                 "--out", str(tmp_path / "kids.yaml")]) == 0
    data = b"".join([_record(1, "HANAKO", [("TARO", 7), ("JIRO", 5)]),
                     _record(2, "ICHIRO", []),
                     _record(3, "SABURO", [("KO", 1)], n=4)])  # counter above OCCURS 3
    (tmp_path / "kids.dat").write_bytes(data)
    outs = {}
    for shape in ("flat", "nested"):
        out = tmp_path / f"{shape}.arrow"
        assert main(["decode", str(tmp_path / "kids.dat"), "--layout", str(tmp_path / "kids.yaml"),
                     "--shape", shape, "--out", str(out),
                     "--rejects", str(tmp_path / f"{shape}.avro")]) == 0
        outs[shape] = pa.ipc.open_file(str(out)).read_all()
        with open(tmp_path / f"{shape}.avro", "rb") as f:
            (bad,) = list(fastavro.reader(f))
        assert bad["record"] == 3 and bad["raw"] == data[2 * RL:]
        assert [r["code"] for r in bad["reasons"]] == ["OCCURS_COUNT_OUT_OF_RANGE"]
    flat, nested = outs["flat"].to_pylist(), outs["nested"].to_pylist()
    assert [r["PERSON"]["KID"] for r in nested] == [
        [{"KID_NAME": "TARO", "KID_AGE": 7}, {"KID_NAME": "JIRO", "KID_AGE": 5}], []]
    assert [r["CODES"] for r in nested] == [["A", "B"], ["A", "B"]]
    for f, n in zip(flat, nested, strict=True):
        assert (f["ID"], f["NAME"], f["N_KIDS"], f["_record"]) == (
            n["ID"], n["PERSON"]["NAME"], n["PERSON"]["N_KIDS"], n["_record"])
        kids = [{"KID_NAME": f[f"KID_NAME_{i}"], "KID_AGE": f[f"KID_AGE_{i}"]}
                for i in range(1, int(f["N_KIDS"]) + 1)]
        assert kids == n["PERSON"]["KID"]


def test_records_that_shrink_with_their_counter(tmp_path):
    """occurs_shrink (V / VB): a record holds only the counter's elements, the items after the
    table follow them; decoded, it equals the same record written at full size."""
    book = tmp_path / "kids.cpy"
    book.write_text(COPYBOOK)
    people = [(1, "HANAKO", [("TARO", 7), ("JIRO", 5)]), (2, "ICHIRO", []),
              (3, "SABURO", [("KO", 1), ("MI", 2), ("NA", 3)])]
    full = [_record(i, name, kids) for i, name, kids in people]
    short = [r[:11 + 6 * len(k)] + r[-2:] for r, (_, _, k) in zip(full, people, strict=True)]
    (tmp_path / "full.dat").write_bytes(b"".join(full))
    (tmp_path / "short.dat").write_bytes(
        b"".join(len(r).to_bytes(2, "big") + b"\0\0" + r for r in short))  # RDW: payload only
    assert main(["layout", "import", str(book), "--shape", "nested",
                 "--out", str(tmp_path / "full.yaml")]) == 0
    text = (tmp_path / "full.yaml").read_text()
    (tmp_path / "short.yaml").write_text(
        text + "record_format: V\nrdw: {includes_header: false}\noccurs_shrink: true\n")
    tables = {}
    for name in ("full", "short"):
        out = tmp_path / f"{name}.arrow"
        assert main(["decode", str(tmp_path / f"{name}.dat"), "--layout",
                     str(tmp_path / f"{name}.yaml"), "--out", str(out)]) == 0
        tables[name] = pa.ipc.open_file(str(out)).read_all()
    cols = ["ID", "PERSON", "CODES"]
    assert tables["short"].select(cols).to_pylist() == tables["full"].select(cols).to_pylist()
    assert tables["short"]["_offset"].to_pylist() == [0, 4 + len(short[0]),
                                                      8 + len(short[0]) + len(short[1])]
    assert [r["CODES"] for r in tables["short"].to_pylist()] == [["A", "B"]] * 3


def test_occurs_shrink_needs_variable_length_records(tmp_path):
    from ikou.pipeline.config.layout import LayoutError, load_layout

    book = tmp_path / "kids.cpy"
    book.write_text(COPYBOOK)
    assert main(["layout", "import", str(book), "--out", str(tmp_path / "k.yaml")]) == 0
    (tmp_path / "k.yaml").write_text((tmp_path / "k.yaml").read_text() + "occurs_shrink: true\n")
    with pytest.raises(LayoutError, match="record_format V or VB"):
        load_layout(tmp_path / "k.yaml")
