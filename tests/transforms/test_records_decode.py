"""V / VB files: planned by the index pass, decoded in blocks, bad RDWs / BDWs quarantined.

Files are the generated 住民記録 export (fixed seed) turned into V / VB by
``ikou.pipeline.synth.records`` and corrupted in known places.
"""

import io
import os
import struct

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from ikou.pipeline.config.gaiji import load_gaiji
from ikou.pipeline.config.layout import load_layout
from ikou.pipeline.steps.reconcile import check
from ikou.pipeline.synth.municipality import generate_municipality
from ikou.pipeline.synth.records import to_variable, variable_layout_text
from ikou.transforms.decode.blocks import BlockDecoder, decode_blocks, plan_blocks
from ikou.transforms.decode.outputs import finalize_results, quarantine_sync_marker


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    out = tmp_path_factory.mktemp("vtown")
    gen = generate_municipality(out, 120, 20260501, write_expected=False)
    return out, gen


def make(town, fmt="V", trim=True, name=None, **opts):
    """(data path, layout path, fixed layout, bytes) of a V / VB copy of the export."""
    out, gen = town
    fixed = load_layout(gen.layout)
    data = to_variable(open(gen.export, "rb").read(), fixed, fmt, trim=trim, **opts)
    name = name or f"juki-{fmt}-{abs(hash(tuple(sorted(opts.items())))) % 1000}"
    path = out / f"{name}.dat"
    path.write_bytes(data)
    text = variable_layout_text(open(gen.layout, encoding="utf-8").read(), fmt,
                                byte_order=opts.get("byte_order", "big"),
                                includes_header=opts.get("includes_header", True))
    lpath = out / f"{name}.layout.yaml"
    lpath.write_text(text, encoding="utf-8")
    return path, lpath, fixed, data


def decode(town, path, layout, block_size=1 << 20, workers=2, tmp=None):
    """What ``ikou decode`` does (same functions): (summary, arrow bytes, avro bytes, table,
    quarantined records)."""
    out, gen = town
    layout = load_layout(layout) if not hasattr(layout, "kinds") else layout
    gaiji = load_gaiji(gen.gaiji)
    tmp = tmp or out / f"dec-{os.path.basename(path)}-{block_size}-{workers}"
    tmp.mkdir(exist_ok=True)
    dec = BlockDecoder(layout, gaiji, str(tmp))
    dec.quarantine_parts = dec.row_parts = False
    blocks = plan_blocks(0, str(path), os.path.getsize(path), layout, block_size)
    results, digest = decode_blocks(dec, blocks, workers=workers)
    summary = finalize_results(layout, results, None, str(tmp), quarantine_sync_marker([digest]),
                               outputs={"data": str(tmp / "o.arrow")},
                               quarantine_path=str(tmp / "q.avro"))
    arrow = (tmp / "o.arrow").read_bytes()
    avro = (tmp / "q.avro").read_bytes()
    table = pa.ipc.open_file(pa.py_buffer(arrow)).read_all()
    quarantined = list(fastavro.reader(io.BytesIO(avro)))
    return summary, arrow, avro, table, quarantined, results


def rdw_offsets(data, blocked=False, little=False, header=True):
    offs, pos = [], 0
    while pos < len(data):
        if blocked:
            end = pos + struct.unpack(">H", data[pos:pos + 2])[0]
            pos += 4
        else:
            end = len(data)
        while pos < end:
            w = data[pos:pos + 4][::-1] if little else data[pos:pos + 4]
            offs.append(pos)
            pos += struct.unpack(">H", w[:2])[0] + (0 if header else 4)
    return offs


def reconciles(summary, table, quarantined, data, layout_path):
    """Every record once (rows, quarantine, header/trailer), raw bytes as in the file."""
    n = summary["records"]
    heads = [h["record"] for i in summary["inputs"] for h in i["headers"] + i["trailers"]]
    numbers = sorted(table.column("_record").to_pylist() + [q["record"] for q in quarantined]
                     + heads)
    assert numbers == list(range(1, n + 1))
    for q in quarantined:
        assert data[q["offset"]:q["offset"] + len(q["raw"])] == q["raw"]
    assert summary["rows_written"] + summary["quarantined"] + len(heads) == n


def walk(data, table, quarantined, header=True):
    """V: from byte 0, each record (its RDW's length) or quarantined entry (its raw bytes) ends
    where the next begins, up to the end of the file: bytes covered exactly once."""
    q = {r["offset"]: len(r["raw"]) for r in quarantined}
    rows = set(table.column("_offset").to_pylist())
    pos, seen = 0, 0
    while pos < len(data):
        if pos in q:
            pos += q.pop(pos)
        else:
            seen += pos in rows
            pos += struct.unpack(">H", data[pos:pos + 2])[0] + (0 if header else 4)
    assert pos == len(data) and not q and seen == len(rows)


@pytest.mark.parametrize("fmt, opts", [
    ("V", {}), ("V", {"byte_order": "little", "includes_header": False}),
    ("VB", {"block_size": 2000})])
def test_variable_files_decode_as_the_fixed_file(town, fmt, opts):
    path, lpath, fixed, data = make(town, fmt, **opts)
    out, gen = town
    s_fixed, _, _, t_fixed, _, _ = decode(town, gen.export, fixed)
    summary, _, _, table, quarantined, _ = decode(town, path, lpath)
    assert not quarantined and summary["rows_written"] == t_fixed.num_rows
    assert len(data) < os.path.getsize(gen.export)  # trailing spaces trimmed
    cols = [c for c in t_fixed.column_names if c not in ("_offset", "_source")]
    assert table.select(cols).equals(t_fixed.select(cols))
    offs = rdw_offsets(data, fmt == "VB", opts.get("byte_order") == "little",
                       opts.get("includes_header", True))
    assert table.column("_offset").to_pylist() == offs[1:-1]  # header and trailer aside
    assert not check(summary, load_layout(lpath))[0]


def test_short_records_null_absent_fields_and_reject_cut_ones(town):
    out, gen = town
    fixed = load_layout(gen.layout)
    raw = open(gen.export, "rb").read()
    recs = [raw[i:i + 320] for i in range(0, len(raw), fixed.stride)]
    recs[3] = recs[3][:118]   # ends where the address begins: address and after absent
    recs[5] = recs[5][:150]   # ends inside the address: SHORT_FIELD
    recs[7] = recs[7] + b"XYZ"  # longer than the layout
    data = b"".join(struct.pack(">HH", len(r) + 4, 0) + r for r in recs)
    path = out / "short.dat"
    path.write_bytes(data)
    text = variable_layout_text(open(gen.layout, encoding="utf-8").read(), "V")
    text = text.replace("record_format: V", "record_format: V\nrdw: {max_length: 330}")
    (out / "short.layout.yaml").write_text(text, encoding="utf-8")
    summary, _, _, table, quarantined, _ = decode(town, path, out / "short.layout.yaml")
    by_record = {q["record"]: q for q in quarantined}
    assert sorted(by_record) == [6, 8]
    (reason,) = by_record[6]["reasons"]
    assert (reason["code"], reason["field"], reason["position"]) == ("SHORT_FIELD", "address", 118)
    assert "bytes 118-237" in reason["message"] and "record of 150 bytes" in reason["message"]
    assert by_record[8]["reasons"][0]["code"] == "LONG_RECORD"
    assert by_record[8]["raw"] == data[by_record[8]["offset"]:][:4 + 323]
    row = table.filter(pa.compute.equal(table.column("_record"), 4)).to_pylist()[0]
    assert row["address"] is None and row["household_size"] is None
    assert row["resident_since"] is None and row["atena_no"] is not None
    reconciles(summary, table, quarantined, data, None)
    walk(data, table, quarantined)
    # extra_bytes: ignore decodes the long record's first 320 bytes, counted in the summary
    (out / "ignore.layout.yaml").write_text(text.replace(
        "record_format: V\n", "record_format: V\nextra_bytes: ignore\n"), encoding="utf-8")
    summary, _, _, table, quarantined, _ = decode(town, path, out / "ignore.layout.yaml",
                                                  tmp=out / "ign")
    assert [q["record"] for q in quarantined] == [6]
    assert summary["tolerated_by_code"]["LONG_RECORD"] == 1
    assert 8 in table.column("_record").to_pylist()


def _corrupt(data, offs, case, rng):
    """(corrupted bytes, expected (offset, length, code) entries)."""
    i = len(offs) // 2
    a, b = offs[i], offs[i + 1]
    if case == "zero_length":
        return data[:a] + b"\0\0\0\0" + data[a + 4:], [(a, b - a, "BAD_RDW")]
    if case == "too_long":
        return data[:a] + b"\x7f\xff\0\0" + data[a + 4:], [(a, b - a, "BAD_RDW")]
    if case == "reserved":
        return data[:a + 2] + b"\x01\x00" + data[a + 4:], [(a, b - a, "BAD_RDW")]
    if case == "past_end":  # the last-but-one record claims the maximum: beyond the file
        a, b = offs[-2], offs[-1]
        return data[:a] + struct.pack(">HH", 324, 0) + data[a + 4:], [(a, b - a, "BAD_RDW")]
    if case == "garbage":  # three records overwritten
        c = offs[i + 3]
        junk = rng.integers(0x41, 0x5B, c - a, dtype=np.uint8).tobytes()
        return data[:a] + junk + data[c:], [(a, c - a, "BAD_RDW")]
    if case == "inserted":
        return data[:a] + b"\x00\x01\x02\x03\x04\x05\x06" + data[a:], [(a, 7, "BAD_RDW")]
    if case == "truncated":
        cut = len(data) - 5
        return data[:cut], [(offs[-1], cut - offs[-1], "TRUNCATED_RECORD")]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["zero_length", "too_long", "reserved", "past_end", "garbage",
                                  "inserted", "truncated"])
def test_bad_rdws_are_quarantined_and_the_scan_picks_up(town, case):
    out, gen = town
    _, _, _, clean = make(town, "V", name="clean-v")
    offs = rdw_offsets(clean)
    data, expected = _corrupt(clean, offs, case, np.random.default_rng(5))
    path = out / f"bad-{case}.dat"
    path.write_bytes(data)
    summary, _, _, table, quarantined, _ = decode(town, path, out / "clean-v.layout.yaml",
                                                  block_size=3000)
    assert [(q["offset"], len(q["raw"]), q["reasons"][0]["code"]) for q in quarantined] == \
        expected
    message = quarantined[0]["reasons"][0]["message"]
    assert ("RDW length" in message) or case == "inserted" or case == "truncated"
    reconciles(summary, table, quarantined, data, None)
    walk(data, table, quarantined)
    assert summary["records"] == len(offs) + {"garbage": -2, "inserted": 1}.get(case, 0)


def test_vb_bad_bdw_and_bad_rdw_inside_a_block(town):
    out, gen = town
    path, lpath, _, clean = make(town, "VB", name="clean-vb", block_size=1500)
    blocks = []
    pos = 0
    while pos < len(clean):
        blocks.append(pos)
        pos += struct.unpack(">H", clean[pos:pos + 2])[0]
    b1, b2, b3 = blocks[3], blocks[8], blocks[10]
    data = bytearray(clean)
    data[b1:b1 + 4] = b"\0\0\0\0"                      # a bad BDW
    rdw2 = b2 + 4 + struct.unpack(">H", clean[b2 + 4:b2 + 6])[0]  # second record of block 8
    data[rdw2:rdw2 + 4] = b"\xff\xff\0\0"              # a bad RDW inside a good block
    data = bytes(data)
    bad = out / "bad.vb"
    bad.write_bytes(data)
    results = {}
    for bs, workers in ((1000, 2), (4096, 1), (1 << 20, 2)):
        summary, arrow, avro, table, quarantined, _ = decode(town, bad, lpath, bs, workers)
        results[bs] = (arrow, avro)
        assert [(q["offset"], len(q["raw"]), q["reasons"][0]["code"]) for q in quarantined] \
            == [(b1, blocks[4] - b1, "BAD_BDW"), (rdw2, blocks[9] - rdw2, "BAD_RDW")]
        assert "skipped to the end of the block" in quarantined[1]["reasons"][0]["message"]
        reconciles(summary, table, quarantined, data, None)
    assert len(set(results.values())) == 1  # byte-identical whatever the block size / workers
    assert b3  # the file has blocks after the damage


def test_outputs_do_not_depend_on_block_size_or_workers(town):
    out, gen = town
    _, _, _, clean = make(town, "V", name="clean-v")
    offs = rdw_offsets(clean)
    data, _ = _corrupt(clean, offs, "garbage", np.random.default_rng(9))
    data = data[:offs[10]] + b"\0\0\0\0" + data[offs[10] + 4:]
    path = out / "det.dat"
    path.write_bytes(data)
    seen = set()
    for bs, workers in ((700, 2), (5000, 1), (1 << 20, 2)):
        summary, arrow, avro, *_ = decode(town, path, out / "clean-v.layout.yaml", bs, workers)
        seen.add((arrow, avro))
        if bs == 700:
            assert summary["blocks"] > 20
    assert len(seen) == 1


def test_ikou_generate_and_decode_a_vb_export(tmp_path, capsys):
    from ikou.pipeline.cli import main

    assert main(["generate", "--residents", "30", "--seed", "4", "--out", str(tmp_path),
                 "--sources", "juki", "--record-format", "VB", "--no-progress"]) == 0
    assert "record_format: VB" in (tmp_path / "juki.layout.yaml").read_text(encoding="utf-8")
    assert main(["decode", str(tmp_path / "juki.dat"), "--layout",
                 str(tmp_path / "juki.layout.yaml"), "--gaiji", str(tmp_path / "gaiji.csv"),
                 "--out", str(tmp_path / "o.arrow"), "--block-size", "2000"]) == 0
    assert "32 records, 30 rows" in capsys.readouterr().err


def test_a_record_too_short_for_its_record_type(tmp_path):
    (tmp_path / "k.layout.yaml").write_text(
        "name: k\nrecord_length: 6\nrecord_format: V\nrecord_type: {offset: 0, length: 2}\n"
        "kinds:\n  data:\n    code: \"D1\"\n    fields:\n"
        "      - {name: v, offset: 2, length: 4, type: digits}\n", encoding="utf-8")
    recs = [b"D11234", b"D", b"XX9999", b"D1"]
    data = b"".join(struct.pack(">HH", len(r) + 4, 0) + r for r in recs)
    (tmp_path / "k.dat").write_bytes(data)
    layout = load_layout(tmp_path / "k.layout.yaml")
    dec = BlockDecoder(layout, {}, str(tmp_path))
    (block,) = plan_blocks(0, str(tmp_path / "k.dat"), len(data), layout)
    res = dec.decode(block)
    got = {q["record"]: (q["offset"], q["reasons"][0]["message"]) for q in res.quarantined}
    assert got == {2: (10, "record of 1 bytes ends before its record type (bytes 0-1)"),
                   3: (15, "record type at byte 0: 5858 matches no kind of the layout")}
    assert res.rows == {"data": 2} and res.counts == {"": 2, "data": 2}
    table = pa.ipc.open_file(res.parts["data"]).read_all()
    assert table.column("v").to_pylist() == ["1234", None]  # record 4 does not carry v


def test_a_long_unreadable_stretch_is_cut_into_entries(town, monkeypatch):
    from ikou.transforms.decode import records

    monkeypatch.setattr(records, "MAX_ENTRY", 100)
    out, gen = town
    _, _, _, clean = make(town, "V", name="clean-v")
    offs = rdw_offsets(clean)
    a = offs[20]
    data = clean[:a] + b"\x00" * 350 + clean[a:]
    path = out / "long-garbage.dat"
    path.write_bytes(data)
    seen = set()
    for bs in (300, 1 << 20):
        summary, arrow, avro, table, quarantined, _ = decode(town, path,
                                                             out / "clean-v.layout.yaml", bs)
        assert [(q["offset"], len(q["raw"])) for q in quarantined] == \
            [(a, 100), (a + 100, 100), (a + 200, 100), (a + 300, 50)]
        assert quarantined[3]["reasons"][0]["message"].endswith("(part 4 of 4)")
        reconciles(summary, table, quarantined, data, None)
        walk(data, table, quarantined)
        seen.add((arrow, avro))
    assert len(seen) == 1
