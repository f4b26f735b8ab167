"""Quarantined records built in bulk from the kernel's error arrays.

The reference here is the per-record algorithm the block decoder used before (one dict per
record, ``format_error`` per error, fastavro writing record by record), written out again in
this file: the bulk path must give the same records (reasons, raw bytes, order), the same
counts and the same ``quarantine.avro`` bytes, on exports with many kinds of faults.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import textwrap

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, format_error, format_errors
from ikou.kernels import decode_block as kernel_decode_block
from ikou.pipeline.config.layout import load_layout
from ikou.transforms.decode.blocks import (
    SEPARATOR_MISMATCH,
    TRUNCATED_RECORD,
    UNKNOWN_RECORD_TYPE,
    BlockDecoder,
    plan_blocks,
    read_block,
)
from ikou.transforms.decode.outputs import (
    _PARSED_SCHEMA,
    finalize_results,
    quarantine_sync_marker,
    write_quarantine,
)
from ikou.transforms.decode.quarantine import varints, write_avro_file

LAYOUT = """\
name: faults
record_length: 64
record_separator: "\\r\\n"
record_type: {offset: 0, length: 1}
kinds:
  header:
    code: "1"
    fields:
      - {name: created, offset: 1, length: 8, type: date}
      - {name: pad, offset: 9, length: 55, type: filler}
  data:
    code: "2"
    fields:
      - {name: atena_no, offset: 1, length: 10, type: digits}
      - {name: name_kanji, offset: 11, length: 12, type: text}
      - {name: birth, offset: 23, length: 7, type: wareki}
      - {name: moved, offset: 30, length: 8, type: date}
      - {name: amount, offset: 38, length: 6, type: int}
      - {name: zoned, offset: 44, length: 5, type: zoned, scale: 2}
      - {name: packed, offset: 49, length: 3, type: packed}
      - {name: note, offset: 52, length: 6, type: text, on_error: "null"}
      - {name: code, offset: 58, length: 4, type: digits, blank: error}
      - {name: pad, offset: 62, length: 2, type: filler}
  trailer:
    code: "9"
    count_field: record_count
    fields:
      - {name: record_count, offset: 1, length: 8, type: int}
      - {name: pad, offset: 9, length: 55, type: filler}
"""
GAIJI = {0xF040: "\u9ad9"}
NAMES = ["山田太郎", "髙橋一", "佐藤花子", "鈴木", "渡邉和子"]


def good_record(rng: random.Random, i: int) -> bytes:
    name = rng.choice(NAMES).encode("cp932").ljust(12)
    rec = (b"2" + f"{i:010d}".encode() + name + b"3450101" + b"20240131"
           + f"{i % 99999:6d}".encode() + b"1234}" + b"\x00\x12\x3c" + b"note  " + b"0042"
           + b"  ")
    assert len(rec) == 64
    return rec


FAULTS = {
    "invalid": lambda r: r[:11] + b"\x81\x20" + r[13:],          # INVALID_BYTES
    "cut": lambda r: r[:21] + b"\x88" + r[22:],                  # CUT_DOUBLE_BYTE? (lead at end)
    "unmapped": lambda r: r[:11] + b"\xf0\x42" + r[13:],         # UNMAPPED_GAIJI
    "digits": lambda r: r[:3] + b"X" + r[4:],                    # NOT_DIGITS
    "date": lambda r: r[:30] + b"20230229" + r[38:],             # IMPOSSIBLE_DATE
    "int": lambda r: r[:38] + b"  1x 2" + r[44:],                # NOT_DIGITS (int)
    "sign": lambda r: r[:48] + b"#" + r[49:],                    # INVALID_SIGN (zoned)
    "packed": lambda r: r[:51] + b"\x3f" + r[52:],               # INVALID_SIGN (packed)
    "blank": lambda r: r[:58] + b"    " + r[62:],                # BLANK_VALUE
    "tolerated": lambda r: r[:52] + b"\x81\x20    " + r[58:],    # note: on_error null (kept)
    "two": lambda r: r[:3] + b"X" + r[4:38] + b"abcdef" + r[44:],  # two reasons, one record
    "type": lambda r: b"7" + r[1:],                              # UNKNOWN_RECORD_TYPE
}


def make_export(n: int, seed: int, share: float, sep: bytes = b"\r\n",
                faults: tuple[str, ...] | None = None) -> bytes:
    faults = tuple(sorted(FAULTS)) if faults is None else faults
    rng = random.Random(seed)
    recs = [(b"1" + b"20240401").ljust(64)]
    for i in range(n):
        rec = good_record(rng, i)
        if rng.random() < share:
            rec = FAULTS[rng.choice(faults)](rec)
        recs.append(rec)
    recs.append((b"9" + f"{n:08d}".encode()).ljust(64))
    out = bytearray(sep.join(recs) + sep)
    for _ in range(max(1, n // 200)):  # a few broken separators
        k = rng.randrange(1, len(recs) - 1)
        out[k * 66 + 64:k * 66 + 66] = b"XY"
    return bytes(out)


# -- the per-record reference (the former algorithm) -----------------------------------------

def _reason(field, code, message, position=None):
    return {"field": field, "code": code, "position": position, "message": message}


def _name(code):
    try:
        return ErrorCode(int(code)).name
    except ValueError:
        return str(code)


def reference_quarantine(dec: BlockDecoder, block, buf: bytes):
    """(records, quarantined_by_code, tolerated_by_code) the per-record path produced."""
    layout = dec.layout
    source = os.path.basename(block.path)
    arr = np.frombuffer(buf, dtype=np.uint8)
    starts = np.arange(block.n_records, dtype=np.int64) * dec.stride
    quarantine, tolerated = {}, {}

    def put(local, kind, raw, reasons):
        quarantine[local] = {"source": source, "input": block.input_index,
                             "record": block.first_record + local + 1,
                             "offset": block.start_offset + local * dec.stride, "kind": kind,
                             "raw": bytes(raw), "reasons": reasons}

    kind_idx = dec._classify(arr, starts)
    sep_bad = dec._separator_mismatches(arr, starts, len(buf))
    kinds = list(layout.kinds)
    rl = layout.record_length
    for local in np.flatnonzero(sep_bad).tolist():
        s = int(starts[local])
        raw = buf[s:s + dec.stride]
        ki = int(kind_idx[local])
        put(local, kinds[ki] if ki >= 0 else None, raw,
            [_reason(None, SEPARATOR_MISMATCH,
                     f"record separator at byte {rl}: found {raw[rl:].hex() or 'none'}, "
                     f"expected {bytes(dec.sep).hex()}", rl)])
    for local in np.flatnonzero((kind_idx < 0) & ~sep_bad).tolist():
        s = int(starts[local])
        off, ln = dec.rt
        put(local, None, buf[s:s + rl],
            [_reason(None, UNKNOWN_RECORD_TYPE,
                     f"record type at byte {off}: {buf[s + off:s + off + ln].hex()} "
                     "matches no kind of the layout", off)])
    for ki, kind in enumerate(kinds):
        sel = np.flatnonzero(kind_idx == ki)
        sel = sel[~sep_bad[sel]]
        if not len(sel):
            continue
        plan = dec.plans[kind]
        res = kernel_decode_block(buf, np.ascontiguousarray(starts[sel]), plan)
        keep = np.ones(len(sel), dtype=bool)
        keep[np.asarray(res.bad_rows, dtype=np.int64)] = False
        reasons = {}
        for row, f_i, code, pos, val, _ in res.errors:
            if keep[row]:
                tolerated[_name(code)] = tolerated.get(_name(code), 0) + 1
                continue
            reasons.setdefault(row, []).append(_reason(
                plan.fields[f_i].name, _name(code), format_error(plan, f_i, code, pos, val),
                pos))
        for r in np.asarray(res.bad_rows).tolist():
            s = int(starts[int(sel[r])])
            put(int(sel[r]), kind, buf[s:s + rl], reasons.get(r, []))
    if block.tail:
        frag = buf[len(buf) - block.tail:]
        kind = dec._kind_of_fragment(frag)
        put(block.n_records, kind, frag,
            [_reason(None, TRUNCATED_RECORD,
                     f"record of {len(frag)} bytes at end of file, expected {rl}", None)])
    records = [quarantine[k] for k in sorted(quarantine)]
    by_code = {}
    for rec in records:
        for code in sorted({r["code"] for r in rec["reasons"]}):
            by_code[code] = by_code.get(code, 0) + 1
    return records, by_code, tolerated


@pytest.fixture
def layout(tmp_path):
    p = tmp_path / "faults.layout.yaml"
    p.write_text(LAYOUT, encoding="utf-8")
    return load_layout(p)


@pytest.mark.parametrize("n,share,block_size,cut", [
    (1500, 0.3, 66 * 37, 0), (1500, 1.0, 66 * 500, 0), (1500, 0.05, 1 << 20, 7),
    (150, 0.5, 66, 70)])
def test_bulk_quarantine_equals_the_per_record_path(layout, tmp_path, n, share, block_size,
                                                    cut):
    content = make_export(n, seed=int(share * 100) + cut, share=share)
    if cut:
        content = content[:-cut]  # a truncated last record (or a cut separator)
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    dec = BlockDecoder(layout, GAIJI, str(tmp_path / "stage"))
    blocks = plan_blocks(0, str(path), len(content), layout, block_size)
    want_all, got_all, codes = [], [], set()
    for block in blocks:
        want, want_codes, want_tol = reference_quarantine(dec, block, read_block(block))
        res = dec.decode(block)
        got = res.quarantined
        assert got == want  # reasons, messages, positions, raw bytes, kinds, order
        assert res.n_quarantined == len(want)
        assert res.quarantined_by_code == want_codes
        assert res.tolerated_by_code == want_tol
        kinds = {}
        for q in want:
            kinds[q["kind"] or ""] = kinds.get(q["kind"] or "", 0) + 1
        assert res.quarantined_by_kind == kinds
        if want:
            assert res.quarantine_part and os.path.exists(res.quarantine_part)
        want_all += want
        got_all.append(res)
        codes |= {r["code"] for q in want for r in q["reasons"]}
    assert len(codes) >= (3 if share < 0.1 or n < 1000 else 8)  # many kinds of faults
    assert any(len(q["reasons"]) > 1 for q in want_all) or share < 0.1 or n < 1000
    for q in want_all:  # never a decoded value in a message
        for r in q["reasons"]:
            assert not any(n in r["message"] for n in NAMES)
    # the container file: the bulk writer's bytes are fastavro's, record by record
    marker = quarantine_sync_marker(["ab" * 32])
    bulk, legacy = tmp_path / "bulk.avro", tmp_path / "legacy.avro"
    assert write_quarantine(got_all, str(bulk), marker) == len(want_all)
    assert write_quarantine(list(reversed(want_all)), str(legacy), marker) == len(want_all)
    assert bulk.read_bytes() == legacy.read_bytes()
    with open(bulk, "rb") as f:
        assert list(fastavro.reader(f)) == want_all


def test_quarantine_bytes_do_not_depend_on_block_size_nor_on_memory_or_parts(layout, tmp_path):
    content = make_export(3000, seed=5, share=0.2)
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    outs = set()
    for bs, parts in ((66 * 29, True), (66 * 97, False), (66 * 1000, True), (1 << 22, False)):
        dec = BlockDecoder(layout, GAIJI, str(tmp_path / f"s{bs}"))
        dec.quarantine_parts = parts
        results = [dec.decode(b) for b in plan_blocks(0, str(path), len(content), layout, bs)]
        if parts:  # what crosses workers: the small result, its quarantine in the part file
            results = [r.without_quarantine() for r in results]
        out = tmp_path / f"o{bs}"
        out.mkdir()
        s = finalize_results(layout, results[::-1], None, str(out),
                             quarantine_sync_marker(["00" * 32]))
        outs.add((out / "quarantine.avro").read_bytes())
        assert s["quarantined"] == s["outputs"]["quarantine.avro"]["rows"] > 400
    assert len(outs) == 1


def test_varints_are_avro_longs():
    values = [0, 1, -1, 63, -64, 64, 127, 128, 300, -300, 2**31, -(2**31), 2**62, 2**63 - 1,
              -(2**63)] + random.Random(3).sample(range(-10**15, 10**15), 200)
    got = varints(np.array(values, dtype=np.int64)).to_pylist()
    for v, b in zip(values, got, strict=True):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, "long", v)
        assert b == buf.getvalue(), v


@pytest.mark.parametrize("sizes", [[1] * 50, [17_000], [5] * 3000 + [40_000] + [3] * 7000])
def test_avro_blocks_end_where_fastavro_ends_them(sizes, tmp_path):
    rng = random.Random(len(sizes))
    recs = [{"source": "x.dat", "input": 0, "record": i + 1, "offset": i * 10, "kind": None,
             "raw": rng.randbytes(n), "reasons": []} for i, n in enumerate(sizes)]
    datums = []
    for r in recs:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, _PARSED_SCHEMA, r)
        datums.append(buf.getvalue())
    marker = b"0123456789abcdef"
    want = io.BytesIO()
    fastavro.writer(want, _PARSED_SCHEMA, recs, codec="null", sync_marker=marker)
    cuts = sorted(rng.sample(range(1, len(datums)), min(5, len(datums) - 1))) if len(
        datums) > 1 else []
    chunks = [pa.array(datums[a:b], pa.binary())
              for a, b in zip([0] + cuts, cuts + [len(datums)], strict=True)]
    got = io.BytesIO()
    assert write_avro_file(chunks, got, _PARSED_SCHEMA, marker) == len(recs)
    assert got.getvalue() == want.getvalue()


def test_format_errors_equals_format_error():
    plan = DecodePlan(record_length=30, fields=[
        FieldSpec("a", offset=0, length=10, type="digits"),
        FieldSpec("b", offset=10, length=20, type="text")])
    rng = np.random.default_rng(9)
    n = 5000
    field = rng.integers(0, 2, n)
    code = rng.integers(0, 13, n)  # some unknown codes too
    pos = rng.integers(0, 30, n)
    value = rng.integers(0, 256, n)
    wide = np.isin(code, [int(ErrorCode.INVALID_BYTES), int(ErrorCode.UNMAPPED_GAIJI)])
    value[wide] = rng.integers(0, 65536, int(wide.sum()))
    got = format_errors(plan, field, code, pos, value).to_pylist()
    assert got == [format_error(plan, *e) for e in zip(field, code, pos, value, strict=True)]
    value[0], code[0] = 70000, int(ErrorCode.INVALID_BYTES)  # not from a kernel: still right
    assert format_errors(plan, field, code, pos, value).to_pylist()[0] == format_error(
        plan, field[0], code[0], pos[0], value[0])


# -- ikou decode without Apache Beam or Great Expectations ------------------------------------

def test_ikou_decode_imports_neither_beam_nor_gx(layout, tmp_path):
    content = make_export(300, seed=11, share=0.2,  # no unknown type: the trailer count holds
                          faults=tuple(k for k in sorted(FAULTS) if k != "type"))
    (tmp_path / "x.dat").write_bytes(content)
    (tmp_path / "faults.layout.yaml").write_text(LAYOUT, encoding="utf-8")
    script = textwrap.dedent(f"""
        import sys
        from ikou.pipeline.cli import main
        sys.argv = ["ikou", "decode", {str(tmp_path / 'x.dat')!r}, "--layout",
                    {str(tmp_path / 'faults.layout.yaml')!r}, "--out",
                    {str(tmp_path / 'x.arrow')!r}, "--rejects", {str(tmp_path / 'x.avro')!r}]
        code = main()  # as the command line runs it
        print("exit", code)
        print("beam", "apache_beam" in sys.modules)
        print("gx", "great_expectations" in sys.modules)
        # pyarrow would import these on first use (pandas: a second; numpy.ma and
        # pyarrow.compute: 25-30 ms each)
        print("pandas", "pandas" in sys.modules, "numpy.ma", "numpy.ma" in sys.modules,
              "pyarrow.compute", "pyarrow.compute" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert "exit 0" in out.stdout, out.stdout + out.stderr
    assert "beam False" in out.stdout and "gx False" in out.stdout, out.stdout
    assert "pandas False numpy.ma False pyarrow.compute False" in out.stdout, out.stdout
    with open(tmp_path / "x.avro", "rb") as f:
        assert len(list(fastavro.reader(f))) > 30
    # the help of the command imports neither, too
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from ikou.pipeline.cli import main
        try:
            main(["decode", "--help"])
        except SystemExit:
            pass
        print("beam", "apache_beam" in sys.modules, "gx", "great_expectations" in sys.modules)
    """)], capture_output=True, text=True, timeout=300)
    assert "beam False gx False" in out.stdout, out.stdout + out.stderr


# -- the Beam run: quarantine.avro as the per-record path wrote it -----------------------------

def test_beam_run_quarantine_is_the_per_record_file_whatever_the_block_size(layout, tmp_path):
    import hashlib

    from ikou.pipeline.run.single import run_migration

    content = make_export(2500, seed=21, share=0.1,  # every fault but an unknown record type
                          faults=tuple(k for k in sorted(FAULTS) if k != "type"))
    path = tmp_path / "faults.dat"
    path.write_bytes(content)
    gaiji = tmp_path / "gaiji.csv"
    gaiji.write_text("sjis,unicode\nF040,U+9AD9\n", encoding="utf-8")
    dec = BlockDecoder(layout, GAIJI, None)
    (block,) = plan_blocks(0, str(path), len(content), layout, len(content) + 1)
    want, _, _ = reference_quarantine(dec, block, content)
    marker = quarantine_sync_marker([hashlib.sha256(content).hexdigest()])
    buf = io.BytesIO()
    fastavro.writer(buf, _PARSED_SCHEMA, want, codec="null", sync_marker=marker, validator=True)
    for bs in (66 * 50, 66 * 700):
        out = tmp_path / f"out{bs}"
        s = run_migration(tmp_path / "faults.layout.yaml", gaiji, [path], out, block_size=bs)
        assert s.quarantined == len(want) > 200
        assert (out / "current" / "quarantine.avro").read_bytes() == buf.getvalue()
