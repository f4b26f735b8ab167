"""Per-block functions without Beam: planning blocks, decoding a block, finalizing outputs.

Small exports are built here record by record (fixed seeds where random), so every expected
value is known independently of the code under test.
"""

from __future__ import annotations

import hashlib
import random

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikou.pipeline.config.layout import load_layout
from ikou.transforms.decode.blocks import (
    SEPARATOR_MISMATCH,
    TRUNCATED_RECORD,
    UNKNOWN_RECORD_TYPE,
    Block,
    BlockDecoder,
    plan_blocks,
)
from ikou.transforms.decode.outputs import finalize_results, quarantine_sync_marker

LAYOUT_YAML = """\
name: mini
label: 住民記録 (test)
encoding: cp932
record_length: 40
record_separator: {sep}
record_type: {{offset: 0, length: 1}}
kinds:
  header:
    code: "1"
    fields:
      - {{name: lg_code, label: 団体コード, offset: 1, length: 6, type: digits}}
      - {{name: pad, offset: 7, length: 33, type: filler}}
  data:
    code: "2"
    fields:
      - {{name: atena_no, label: 宛名番号, offset: 1, length: 10, type: digits}}
      - {{name: name_kanji, label: 氏名, offset: 11, length: 12, type: text}}
      - {{name: birth, label: 生年月日, offset: 23, length: 7, type: wareki}}
      - {{name: amount, offset: 30, length: 6, type: int}}
      - {{name: pad, offset: 36, length: 4, type: filler}}
  trailer:
    code: "9"
    count_field: record_count
    fields:
      - {{name: record_count, label: 合計件数, offset: 1, length: 8, type: int}}
      - {{name: pad, offset: 9, length: 31, type: filler}}
"""
SEPARATORS = {b"\r\n": '"\\r\\n"', b"\n": '"\\n"', b"": "none"}
NAMES = ["山田太郎", "髙橋一", "佐藤花子", "鈴木", "渡邉和子", "田中"]
GAIJI = {0xF040: "\u9ad9", 0xF041: "\u845b\U000E0100"}


def write_layout(tmp_path, sep=b"\r\n"):
    path = tmp_path / f"mini{len(sep)}.layout.yaml"
    path.write_text(LAYOUT_YAML.format(sep=SEPARATORS[sep]), encoding="utf-8")
    return load_layout(path)


def header(lg="131016"):
    return (b"1" + lg.encode()).ljust(40)


def trailer(count):
    return (b"9" + f"{count:08d}".encode()).ljust(40)


def data(i, name="山田太郎", birth=b"3450101", atena=None, amount=None):
    name_b = name if isinstance(name, bytes) else name.encode("cp932")
    atena_b = atena if atena is not None else f"{i:010d}".encode()
    amount_b = amount if amount is not None else f"{i % 100000:6d}".encode()
    rec = b"2" + atena_b + name_b.ljust(12) + birth + amount_b + b"    "
    assert len(rec) == 40
    return rec


def make_export(n, seed=1, corrupt=()):
    """Header + n data records + trailer; ``corrupt`` maps data index -> kind of corruption.

    Returns (records, expected) where expected maps 1-based record number to either
    ("row", values) or ("quarantine", codes).
    """
    rng = random.Random(seed)
    corrupt = dict(corrupt)
    recs = [header()]
    expected = {1: ("header", None)}
    for i in range(n):
        name = rng.choice(NAMES)
        rno = len(recs) + 1
        how = corrupt.get(i)
        if how == "invalid":
            recs.append(data(i, name=b"\x81\x20" + "田中".encode("cp932")))
            expected[rno] = ("quarantine", {"INVALID_BYTES"})
        elif how == "digits":
            recs.append(data(i, atena=b"00000X0000", name=name))
            expected[rno] = ("quarantine", {"NOT_DIGITS"})
        elif how == "unmapped":
            recs.append(data(i, name=b"\xf0\x42" + "一".encode("cp932")))
            expected[rno] = ("quarantine", {"UNMAPPED_GAIJI"})
        elif how == "gaiji":
            recs.append(data(i, name=b"\xf0\x40" + "一".encode("cp932")))
            expected[rno] = ("row", {"atena_no": f"{i:010d}", "name_kanji": "\u9ad9一",
                                     "amount": i % 100000})
        elif how == "type":
            recs.append(b"7" + data(i, name=name)[1:])
            expected[rno] = ("quarantine", {UNKNOWN_RECORD_TYPE})
        else:
            recs.append(data(i, name=name))
            expected[rno] = ("row", {"atena_no": f"{i:010d}", "name_kanji": name,
                                     "amount": i % 100000})
    recs.append(trailer(n))
    expected[len(recs)] = ("trailer", None)
    return recs, expected


def join(recs, sep=b"\r\n", final_sep=True):
    body = sep.join(recs)
    return body + (sep if final_sep and recs else b"")


def decode_file(layout, path, block_size, staging, gaiji=GAIJI):
    size = path.stat().st_size
    blocks = plan_blocks(0, str(path), size, layout, block_size)
    dec = BlockDecoder(layout, gaiji, str(staging))
    return blocks, [dec.decode(b) for b in blocks]


# -- plan_blocks --------------------------------------------------------------------------------

@pytest.mark.parametrize("sep", [b"\r\n", b"\n", b""])
@pytest.mark.parametrize("block_size", [1, 41, 42 * 7, 8 * 1024 * 1024])
@pytest.mark.parametrize("extra", [0, "nosep", 5, "cut"])
def test_plan_blocks_cover_the_file_with_whole_records(tmp_path, sep, block_size, extra):
    layout = write_layout(tmp_path, sep)
    stride = 40 + len(sep)
    n = 23
    size = n * stride
    if extra == "nosep":
        size -= len(sep)  # last record without its separator
    elif extra == "cut":
        size = (n - 1) * stride + 17  # last record cut short
    else:
        size += extra  # a trailing fragment of `extra` bytes
    blocks = plan_blocks(3, "x.dat", size, layout, block_size)
    assert [b.block_index for b in blocks] == list(range(len(blocks)))
    assert all(b.input_index == 3 for b in blocks)
    # contiguous, whole records, nothing left over
    pos = 0
    first = 0
    for b in blocks:
        assert b.start_offset == pos == b.first_record * stride
        assert b.first_record == first
        pos += b.length
        first += b.n_records
        if b is not blocks[-1]:
            assert b.length == b.n_records * stride
            assert b.tail == 0
    assert pos == size
    full = n - 1 if extra == "cut" else n
    assert first == full
    tail = {0: 0, "nosep": 0, 5: 5, "cut": 17}[extra]
    assert blocks[-1].tail == tail
    per_block = max(1, block_size // stride)
    assert len(blocks) == max(1, -(-full // per_block))


def test_plan_blocks_of_an_empty_file_is_one_empty_block(tmp_path):
    layout = write_layout(tmp_path)
    assert plan_blocks(0, "e.dat", 0, layout, 1000) == [Block(0, "e.dat", 0, 0, 0, 0, 0, 0)]


def test_plan_blocks_rejects_a_non_positive_block_size(tmp_path):
    with pytest.raises(ValueError, match="block size"):
        plan_blocks(0, "x", 10, write_layout(tmp_path), 0)


# -- decoding a block ---------------------------------------------------------------------------

def _check_against_expected(results, expected, staging_rows):
    """Every record exactly once; rows and quarantine as expected."""
    seen = {}
    for r in results:
        for q in r.quarantined:
            assert q["record"] not in seen
            seen[q["record"]] = ("quarantine", {x["code"] for x in q["reasons"]})
        for h in r.headers:
            seen[h["record"]] = ("header", None)
        for t in r.trailers:
            seen[t["record"]] = ("trailer", None)
    for row in staging_rows:
        assert row["_record"] not in seen
        seen[row["_record"]] = ("row", {k: row[k] for k in ("atena_no", "name_kanji", "amount")})
    assert seen == expected


def _rows(results):
    rows = []
    for r in sorted(results, key=lambda r: r.sort_key):
        if "data" in r.parts:
            rows += pa.ipc.open_file(r.parts["data"]).read_all().to_pylist()
    return rows


@pytest.mark.parametrize("block_size", [100, 42 * 10, 1 << 20])
def test_decode_blocks_rows_lineage_and_quarantine(tmp_path, block_size):
    layout = write_layout(tmp_path)
    corrupt = {3: "invalid", 10: "digits", 11: "unmapped", 12: "gaiji", 20: "type"}
    recs, expected = make_export(40, corrupt=corrupt)
    path = tmp_path / "juki.dat"
    content = join(recs)
    path.write_bytes(content)
    blocks, results = decode_file(layout, path, block_size, tmp_path / "stage")
    rows = _rows(results)
    _check_against_expected(results, expected, rows)
    for row in rows:
        assert row["_source"] == "juki.dat"
        off = row["_offset"]
        assert off == (row["_record"] - 1) * 42
        assert content[off + 1:off + 11].decode() == row["atena_no"]
        assert row["birth_status"] == "valid" and str(row["birth"]) == "1970-01-01"
    quarantined = [q for r in results for q in r.quarantined]
    for q in quarantined:
        assert q["raw"] == content[q["offset"]:q["offset"] + 40]
        assert q["source"] == "juki.dat" and q["input"] == 0
        for reason in q["reasons"]:
            assert reason["message"] and "山田" not in reason["message"]
    by_code = {}
    for r in results:
        for k, v in r.quarantined_by_code.items():
            by_code[k] = by_code.get(k, 0) + v
    assert by_code == {"INVALID_BYTES": 1, "NOT_DIGITS": 1, "UNMAPPED_GAIJI": 1,
                       UNKNOWN_RECORD_TYPE: 1}
    unmapped = next(q for q in quarantined if q["reasons"][0]["code"] == "UNMAPPED_GAIJI")
    assert unmapped["reasons"][0]["field"] == "name_kanji"
    assert "F042" in unmapped["reasons"][0]["message"].upper()
    counts = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    assert counts == {"header": 1, "data": 39, "trailer": 1, "": 1}
    trailer_rec = [t for r in results for t in r.trailers]
    assert trailer_rec == [{"record": 42, "values": {"record_count": 40}}]
    header_rec = [h for r in results for h in r.headers]
    assert header_rec == [{"record": 1, "values": {"lg_code": "131016"}}]


def test_truncated_last_record_is_quarantined_with_its_bytes(tmp_path):
    layout = write_layout(tmp_path)
    recs, expected = make_export(12)
    content = join(recs)[:-42] + recs[-1][:25]  # the trailer cut to 25 bytes, no separator
    path = tmp_path / "cut.dat"
    path.write_bytes(content)
    _, results = decode_file(layout, path, 42 * 5, tmp_path / "stage")
    q = [x for r in results for x in r.quarantined]
    assert len(q) == 1
    assert q[0]["record"] == 14 and q[0]["offset"] == 13 * 42
    assert q[0]["raw"] == recs[-1][:25]
    assert q[0]["kind"] == "trailer"
    assert [x["code"] for x in q[0]["reasons"]] == [TRUNCATED_RECORD]
    assert sum(r.n_records for r in results) == 14
    assert not [t for r in results for t in r.trailers]


def test_a_fragment_of_no_known_type_has_no_kind(tmp_path):
    layout = write_layout(tmp_path, b"")
    recs, _ = make_export(3)
    path = tmp_path / "x.dat"
    path.write_bytes(join(recs, b""))
    _, results = decode_file(layout, path, 1000, tmp_path / "s")
    assert not [x for r in results for x in r.quarantined]
    path.write_bytes(join(recs, b"") + b"\n")  # one stray byte: a 1-byte fragment
    _, results = decode_file(layout, path, 1000, tmp_path / "s")
    (q,) = [x for r in results for x in r.quarantined]
    assert q["kind"] is None and q["raw"] == b"\n" and q["record"] == 6


def test_missing_final_separator_is_accepted_a_wrong_one_is_not(tmp_path):
    layout = write_layout(tmp_path)
    recs, expected = make_export(8)
    path = tmp_path / "x.dat"
    path.write_bytes(join(recs, final_sep=False))
    _, results = decode_file(layout, path, 42 * 3, tmp_path / "s")
    _check_against_expected(results, expected, _rows(results))

    content = bytearray(join(recs))
    content[4 * 42 + 40:4 * 42 + 42] = b"XY"  # record 5's separator
    path.write_bytes(bytes(content))
    _, results = decode_file(layout, path, 42 * 3, tmp_path / "s2")
    (q,) = [x for r in results for x in r.quarantined]
    assert q["record"] == 5 and q["offset"] == 4 * 42
    assert q["raw"] == bytes(content[4 * 42:5 * 42])  # the record and the wrong separator
    assert [x["code"] for x in q["reasons"]] == [SEPARATOR_MISMATCH]
    assert "5859" in q["reasons"][0]["message"]  # the bytes found, in hex
    assert len(_rows(results)) == 7

    path.write_bytes(join(recs)[:-1])  # the final separator cut in half
    _, results = decode_file(layout, path, 42 * 3, tmp_path / "s3")
    (q,) = [x for r in results for x in r.quarantined]
    assert q["record"] == 10 and q["kind"] == "trailer"
    assert [x["code"] for x in q["reasons"]] == [SEPARATOR_MISMATCH]


def test_single_kind_layout_without_separator(tmp_path):
    yaml = (
        "name: flat\nrecord_length: 12\n"
        "fields:\n"
        "  - {name: code, offset: 0, length: 4, type: digits}\n"
        "  - {name: born, offset: 4, length: 8, type: date}\n"
    )
    p = tmp_path / "flat.yaml"
    p.write_text(yaml, encoding="utf-8")
    layout = load_layout(p)
    recs = [b"0001" + b"20240229", b"0002" + b"20230229", b"0003" + b"        "]
    path = tmp_path / "flat.dat"
    path.write_bytes(b"".join(recs))
    _, results = decode_file(layout, path, 24, tmp_path / "s", gaiji={})
    rows = _rows(results)
    assert [(r["code"], str(r["born"]), r["_record"], r["_offset"]) for r in rows] == [
        ("0001", "2024-02-29", 1, 0), ("0003", "None", 3, 24)]
    (q,) = [x for r in results for x in r.quarantined]
    assert q["record"] == 2 and q["raw"] == recs[1]
    assert [x["code"] for x in q["reasons"]] == ["IMPOSSIBLE_DATE"]


# -- finalize ---------------------------------------------------------------------------------

def _finalize(layout, results, out_dir, digest="00" * 32):
    out_dir.mkdir(parents=True, exist_ok=True)
    quarantined = [q for r in results for q in r.quarantined]
    return finalize_results(layout, list(reversed(results)), quarantined[::-1], str(out_dir),
                            quarantine_sync_marker([digest]), batch_rows=64)


def test_finalize_output_bytes_do_not_depend_on_block_size(tmp_path):
    layout = write_layout(tmp_path)
    corrupt = {i: random.Random(7).choice(["invalid", "digits", "unmapped", "gaiji"])
               for i in range(0, 300, 37)}
    recs, expected = make_export(300, corrupt=corrupt)
    path = tmp_path / "juki.dat"
    path.write_bytes(join(recs))
    digests = set()
    for bs in (42 * 7, 42 * 64, 1 << 20):
        _, results = decode_file(layout, path, bs, tmp_path / f"stage{bs}")
        summary = _finalize(layout, results, tmp_path / f"out{bs}")
        arrow = (tmp_path / f"out{bs}" / "mini.arrow").read_bytes()
        avro = (tmp_path / f"out{bs}" / "quarantine.avro").read_bytes()
        digests.add((hashlib.sha256(arrow).hexdigest(), hashlib.sha256(avro).hexdigest()))
        table = pa.ipc.open_file(tmp_path / f"out{bs}" / "mini.arrow").read_all()
        n_rows = sum(1 for v in expected.values() if v[0] == "row")
        assert table.num_rows == n_rows == summary["rows_written"]
        assert table.column("_record").to_pylist() == sorted(
            k for k, v in expected.items() if v[0] == "row")
        reader = pa.ipc.open_file(tmp_path / f"out{bs}" / "mini.arrow")
        sizes = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
        assert sizes[:-1] == [64] * (len(sizes) - 1)
        assert table.schema.field("name_kanji").metadata[b"label"] == "氏名".encode()
        with open(tmp_path / f"out{bs}" / "quarantine.avro", "rb") as f:
            recs_q = list(fastavro.reader(f))
        assert [r["record"] for r in recs_q] == sorted(
            k for k, v in expected.items() if v[0] == "quarantine")
        assert summary["quarantined"] == len(recs_q)
        assert summary["records"] == 302 and summary["data_records"] == 300
    assert len(digests) == 1


def test_quarantine_sync_marker_follows_the_inputs(tmp_path):
    a = quarantine_sync_marker(["00" * 32])
    assert a == quarantine_sync_marker(["00" * 32]) and len(a) == 16
    assert a != quarantine_sync_marker(["01" + "00" * 31])
    layout = write_layout(tmp_path)
    _finalize(layout, [], tmp_path / "empty")
    with open(tmp_path / "empty" / "quarantine.avro", "rb") as f:
        assert list(fastavro.reader(f)) == []
    assert pa.ipc.open_file(tmp_path / "empty" / "mini.arrow").read_all().num_rows == 0


def test_blocks_use_numpy_starts_only_within_the_block(tmp_path):
    """A block decoded from its own bytes equals the same records decoded from the whole file."""
    layout = write_layout(tmp_path)
    recs, _ = make_export(50, seed=3)
    content = join(recs)
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    dec = BlockDecoder(layout, GAIJI, str(tmp_path / "s"))
    block = plan_blocks(0, str(path), len(content), layout, 42 * 10)[2]
    res = dec.decode_bytes(block, content[block.start_offset:block.start_offset + block.length])
    rows = pa.ipc.open_file(res.parts["data"]).read_all()
    assert rows.column("_record").to_pylist() == list(range(21, 31))
    assert np.all(np.array(rows.column("_offset")) == (np.arange(21, 31) - 1) * 42)


# -- every record exactly once, whatever the damage and the block size -----------------------


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 30), block_records=st.integers(1, 12),
       damage=st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=3)),
                       max_size=4),
       cut=st.integers(0, 60), sep=st.sampled_from([b"\r\n", b"\n", b""]))
def test_every_record_ends_in_exactly_one_place(tmp_path_factory, n, block_records, damage,
                                               cut, sep):
    tmp = tmp_path_factory.mktemp("prop")
    layout = write_layout(tmp, sep)
    recs, _ = make_export(n, seed=n)
    content = bytearray(join(recs, sep))
    for pos, junk in damage:  # overwrite a few bytes anywhere (record type, separator, data)
        if content:
            p = pos % len(content)
            content[p:p + len(junk)] = junk[:len(content) - p]
    content = bytes(content[:max(0, len(content) - cut)])
    path = tmp / "x.dat"
    path.write_bytes(content)
    stride = 40 + len(sep)
    blocks, results = decode_file(layout, path, block_records * stride, tmp / "s")
    rows = _rows(results)
    seen = [r["_record"] for r in rows]
    seen += [q["record"] for r in results for q in r.quarantined]
    seen += [h["record"] for r in results for h in r.headers + r.trailers]
    n_records = len(content) // stride + (1 if len(content) % stride else 0)
    assert sorted(seen) == list(range(1, n_records + 1))
    assert sum(r.n_records for r in results) == n_records
    for r in results:
        for q in r.quarantined:  # raw bytes are the file's bytes at that offset
            assert content[q["offset"]:q["offset"] + len(q["raw"])] == q["raw"]
            assert len(q["raw"]) in (40, stride) or q["offset"] + len(q["raw"]) == len(content)
    for row in rows:
        assert content[row["_offset"]:row["_offset"] + 1] == b"2"


def test_errors_a_field_tolerates_keep_the_row_and_are_counted(tmp_path):
    layout_path = tmp_path / "tol.yaml"
    layout_path.write_text(LAYOUT_YAML.format(sep='"\\r\\n"').replace(
        "{name: amount, offset: 30, length: 6, type: int}",
        "{name: amount, offset: 30, length: 6, type: int, on_error: \"null\"}"), encoding="utf-8")
    layout = load_layout(layout_path)
    recs, _ = make_export(6, corrupt={1: "digits"})
    recs[3] = recs[3][:30] + b"  12x4" + recs[3][36:]  # the tolerant field
    path = tmp_path / "x.dat"
    path.write_bytes(join(recs))
    _, results = decode_file(layout, path, 1 << 20, tmp_path / "s")
    (r,) = results
    assert r.tolerated_by_code == {"NOT_DIGITS": 1}
    assert r.quarantined_by_code == {"NOT_DIGITS": 1}  # the atena_no one (rejecting)
    rows = _rows(results)
    assert [(x["_record"], x["amount"]) for x in rows] == [
        (2, 0), (4, None), (5, 3), (6, 4), (7, 5)]


@pytest.mark.parametrize("block_size", [42 * 3, 42 * 10 + 5])
def test_decode_blocks_reusing_read_buffers_gives_each_blocks_own_result(tmp_path, block_size):
    """``decode_blocks`` reads a local file's blocks into a few buffers it uses again; every
    result (rows, quarantined records with their raw bytes, the cut last record) must be what
    decoding the block from bytes of its own gives, although later blocks overwrote the buffer
    it was decoded from."""
    from ikou.transforms.decode.blocks import decode_blocks

    layout = write_layout(tmp_path)
    corrupt = {3: "invalid", 10: "digits", 11: "unmapped", 12: "gaiji", 20: "type", 33: "digits"}
    recs, _ = make_export(40, corrupt=corrupt)
    path = tmp_path / "juki.dat"
    content = join(recs) + b"2" + b"9" * 17  # a cut last record
    path.write_bytes(content)
    blocks = plan_blocks(0, str(path), len(content), layout, block_size)
    assert len(blocks) > 4  # more blocks than buffers: every buffer is used again
    dec = BlockDecoder(layout, GAIJI, None)
    dec.quarantine_parts = dec.row_parts = False
    got, digest = decode_blocks(dec, blocks, workers=2, ahead=2)
    want = [dec.decode(b) for b in blocks]
    assert digest == hashlib.sha256(content).hexdigest()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.tables.keys() == w.tables.keys()
        for kind in w.tables:
            assert g.tables[kind].equals(w.tables[kind])
        assert (g.quarantine is None) == (w.quarantine is None)
        if w.quarantine is not None:
            assert g.quarantine.equals(w.quarantine)
        assert g.quarantined == w.quarantined
    raws = [q["raw"] for r in got for q in r.quarantined]
    assert raws[-1] == b"2" + b"9" * 17 and all(isinstance(r, bytes) for r in raws)
