"""Benchmark of the ``ikou decode`` command end to end, and of quarantining at kernel speed.

Fixed-seed synthetic 住民記録 exports (``ikou.pipeline.synth.generate_municipality``, no personal
data), tiled to the size asked for (header, the data records again and again, a trailer whose
count matches; the generator's truncated last record stays last):

* ``faulty``: 4 % corrupt data records (the generator's faults: invalid CP932 bytes, unmapped
  外字, non-digits, a cut double-byte character, impossible dates, a truncated last record);
* ``clean``: no corrupt record;
* ``all_bad``: the clean file with one fault in every data record (same size, same layout).

Measured in the same run, each against its baseline:

* ``ikou decode`` as a subprocess (start-up included; best of 3) vs the best pure-Python decoder
  (:class:`CarefulPython`, in this process: its start-up is not counted) on ``faulty`` — both
  write the rows as Arrow IPC and the quarantined records (raw bytes + reasons) as Avro, and
  must agree on which records are quarantined;
* the decode command's work (``main(["decode", ...])`` in this process) on ``all_bad`` vs
  ``clean``: MB/s and their ratio (the target: all-bad at no less than 1/3 of clean);
* the start-up of ``ikou decode --help`` (no Beam, no GX, no pyarrow).

The commands run as installed ones do, with a bytecode cache (written by the untimed first run).

    python -m benchmarks.bench_commands            # 24 MB files (IKOU_BENCH_COMMANDS_MB)
    python -m benchmarks.bench_commands --mb 100   # about the size of a real 住民記録 export
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa

from benchmarks import command_env
from benchmarks.bench_decode import PurePython, _best
from ikou.pipeline.cli import main as ikou_main
from ikou.pipeline.config.gaiji import load_gaiji
from ikou.pipeline.config.layout import load_layout
from ikou.pipeline.synth.municipality import generate_municipality
from ikou.transforms.decode.outputs import QUARANTINE_SCHEMA

SEED = 20261201
DEFAULT_MB = 24
RESIDENTS = 10_000  # generated once per kind of file, then tiled


# -- corpora -----------------------------------------------------------------------------------

def _tiled(gen_dir: Path, out: Path, target_bytes: int) -> int:
    """Header + data records repeated up to ``target_bytes`` + trailer (+ a truncated record
    found after the trailer); returns the number of data records."""
    layout = load_layout(gen_dir / "juki.layout.yaml")
    rl, sep = layout.record_length, layout.separator or b""
    stride = rl + len(sep)
    raw = (gen_dir / "juki.dat").read_bytes()
    n_full = len(raw) // stride
    recs = [raw[i * stride:(i + 1) * stride] for i in range(n_full)]
    tail = raw[n_full * stride:]
    header, trailer, data = recs[0], recs[-1], b"".join(recs[1:-1])
    assert header[:1] == b"1" and trailer[:1] == b"9"
    n_data = len(recs) - 2
    k = max(1, round(target_bytes / len(data)))
    count = k * n_data + (1 if tail else 0)
    trailer = trailer[:1] + f"{count:08d}".encode() + trailer[9:]
    with open(out, "wb") as f:
        f.write(header)
        for _ in range(k):
            f.write(data)
        f.write(trailer)
        f.write(tail)
    return count


def _all_bad(clean: Path, out: Path, layout) -> None:
    """Every data record of ``clean`` with one fault (three kinds in turn)."""
    stride = layout.record_length + len(layout.separator or b"")
    raw = bytearray(clean.read_bytes())
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, stride)
    data = np.flatnonzero(arr[:, 0] == ord("2"))
    f = {x.name: x for x in layout.kinds["data"].fields}
    pc, rs, ad = f["postal_code"].offset, f["resident_since"].offset, f["address"].offset
    arr[data[0::3], pc] = ord("O")                                        # NOT_DIGITS
    arr[data[1::3], rs:rs + 8] = np.frombuffer(b"20230230", dtype=np.uint8)  # IMPOSSIBLE_DATE
    arr[data[2::3], ad:ad + 2] = np.frombuffer(b"\x85\x40", dtype=np.uint8)  # INVALID_BYTES
    out.write_bytes(bytes(raw))


def build_corpora(work: Path, mb: float) -> dict[str, Path]:
    target = int(mb * 1e6)
    faulty_gen = generate_municipality(work / "gen_faulty", RESIDENTS, SEED, corrupt_share=0.04,
                                       sources=("juki",), write_expected=False)
    clean_gen = generate_municipality(work / "gen_clean", RESIDENTS, SEED + 1,
                                      sources=("juki",), write_expected=False)
    files = {"layout": Path(faulty_gen.layout), "gaiji": Path(faulty_gen.gaiji)}
    _tiled(Path(faulty_gen.layout).parent, work / "faulty.dat", target)
    _tiled(Path(clean_gen.layout).parent, work / "clean.dat", target)
    _all_bad(work / "clean.dat", work / "all_bad.dat", load_layout(files["layout"]))
    files.update(faulty=work / "faulty.dat", clean=work / "clean.dat",
                 all_bad=work / "all_bad.dat")
    return files


# -- the best pure-Python decoder for the same job ---------------------------------------------

_PUA = re.compile("[\ue000-\ue757]")
_LEADS = frozenset(list(range(0x81, 0xA0)) + list(range(0xE0, 0xFD)))


class CarefulPython:
    """Decodes a layout's export in plain Python: separators and record types checked, every
    field of every data record validated column by column (one codec call per column, per
    value only when that fails), good records decoded by ``bench_decode.PurePython`` (bulk
    codec calls, ``struct`` slicing), rows written as Arrow IPC with lineage columns, bad
    records with raw bytes and reasons to Avro (fastavro)."""

    def __init__(self, layout, gaiji):
        self.layout = layout
        self.plan = layout.plan("data", gaiji)
        self.decoder = PurePython(self.plan)
        self.rl = layout.record_length
        self.sep = layout.separator or b""
        self.stride = self.rl + len(self.sep)
        self.gaiji_pua = {0xE000 + _pua(c) for c in self.plan.gaiji}
        self.fields = [f for f in self.plan.fields if f.type != "filler"]

    def _errors(self, f, values):
        """{index: (code, byte position)} of the values of field ``f`` that cannot be decoded."""
        bad = {}
        if f.type == "text":
            try:
                s = b"\n".join(values).decode("cp932")
                if not any("\ue000" <= ch <= "\ue757" for ch in s):
                    return bad
            except UnicodeDecodeError:
                pass
            for i, v in enumerate(values):
                try:
                    s = v.decode("cp932")
                except UnicodeDecodeError as e:
                    cut = e.start == len(v) - 1 and v[-1] in _LEADS
                    bad[i] = ("CUT_DOUBLE_BYTE" if cut else "INVALID_BYTES", f.offset + e.start)
                    continue
                m = _PUA.search(s)
                while m is not None:
                    if ord(m.group()) not in self.gaiji_pua:
                        bad[i] = ("UNMAPPED_GAIJI",
                                  f.offset + len(s[:m.start()].encode("cp932")))
                        break
                    m = _PUA.search(s, m.end())
        elif f.type == "digits":
            blank = b" " * f.length
            for i, v in enumerate(values):
                if not v.isdigit() and v != blank:
                    bad[i] = ("NOT_DIGITS", f.offset + next(
                        k for k, b in enumerate(v) if not 0x30 <= b <= 0x39))
        elif f.type == "int":
            for i, v in enumerate(values):
                s = v.strip()
                if s and not (s.lstrip(b"-+").isdigit()):
                    bad[i] = ("NOT_DIGITS", f.offset)
        elif f.type == "date":
            for i, v in enumerate(values):
                if v.isspace() or v == b"0" * 8:
                    continue
                if not v.isdigit():
                    bad[i] = ("NOT_DIGITS", f.offset)
                    continue
                try:
                    dt.date(int(v[:4]), int(v[4:6]), int(v[6:]))
                except ValueError:
                    bad[i] = ("IMPOSSIBLE_DATE", f.offset)
        return bad

    def decode_file(self, path: str, out_arrow: str, out_avro: str) -> tuple[int, list[int]]:
        """(rows written, record numbers quarantined)."""
        buf = Path(path).read_bytes()
        source = os.path.basename(path)
        rl, stride = self.rl, self.stride
        n = len(buf) // stride + (1 if len(buf) % stride >= rl else 0)
        recs = [buf[i * stride:i * stride + rl] for i in range(n)]
        quarantine: dict[int, tuple[bytes, list]] = {}
        for i in range(n):
            s = buf[i * stride + rl:i * stride + stride]
            if s != self.sep and not (i == n - 1 and s == b""):
                quarantine[i] = (buf[i * stride:i * stride + stride],
                                 [(None, "SEPARATOR_MISMATCH", rl)])
        data_idx = [i for i in range(n) if recs[i][:1] == b"2" and i not in quarantine]
        for i in range(n):
            if recs[i][:1] not in (b"1", b"2", b"9") and i not in quarantine:
                quarantine[i] = (recs[i], [(None, "UNKNOWN_RECORD_TYPE", 0)])
        data = [recs[i] for i in data_idx]
        reasons: dict[int, list] = {}
        for f in self.fields:
            values = [r[f.offset:f.offset + f.length] for r in data]
            for j, (code, pos) in self._errors(f, values).items():
                reasons.setdefault(j, []).append((f.name, code, pos))
        for j in sorted(reasons):
            quarantine[data_idx[j]] = (data[j], reasons[j])
        tail = len(buf) - n * stride if len(buf) % stride < rl else 0
        if tail > 0:
            quarantine[n] = (buf[len(buf) - tail:], [(None, "TRUNCATED_RECORD", None)])
        good = [j for j in range(len(data)) if j not in reasons]
        batch = self.decoder.decode(b"".join(data[j] for j in good))
        rec_no = [data_idx[j] + 1 for j in good]
        table = pa.Table.from_batches([batch]).append_column(
            "_source", pa.array([source] * len(good), pa.string())).append_column(
            "_record", pa.array(rec_no, pa.int64())).append_column(
            "_offset", pa.array([(r - 1) * stride for r in rec_no], pa.int64()))
        with pa.OSFile(out_arrow, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        records = [{"source": source, "input": 0, "record": i + 1, "offset": i * stride,
                    "kind": "data" if raw[:1] == b"2" else None, "raw": raw,
                    "reasons": [{"field": fname, "code": code, "position": pos,
                                 "message": f"field {fname}: {code} at byte {pos}"}
                                for fname, code, pos in rs]}
                   for i, (raw, rs) in sorted(quarantine.items())]
        buf_out = io.BytesIO()
        fastavro.writer(buf_out, fastavro.parse_schema(QUARANTINE_SCHEMA), records,
                        codec="null", sync_marker=b"\0" * 16)
        Path(out_avro).write_bytes(buf_out.getvalue())
        return table.num_rows, [r["record"] for r in records]


def _pua(code: int) -> int:
    lead, trail = code >> 8, code & 0xFF
    return (lead - 0xF0) * 188 + (trail - 0x40 if trail < 0x80 else trail - 0x41)


# -- measurement -------------------------------------------------------------------------------

def _decode_args(files, name, work):
    return ["decode", str(files[name]), "--layout", str(files["layout"]), "--gaiji",
            str(files["gaiji"]), "--out", str(work / f"{name}.arrow"), "--rejects",
            str(work / f"{name}.avro")]


def _in_process(args):
    import contextlib

    with contextlib.redirect_stderr(io.StringIO()):
        code = ikou_main(args)
    if code != 0:
        raise RuntimeError(f"ikou {' '.join(args)} exited {code}")


def _subprocess(args):
    env = command_env()
    out = subprocess.run([sys.executable, "-m", "ikou.pipeline.cli", *args], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"ikou {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


def measure(work: Path, mb: float, repeats: int) -> list[dict]:
    files = build_corpora(work, mb)
    rows = []
    size = {k: files[k].stat().st_size for k in ("faulty", "clean", "all_bad")}
    assert size["clean"] == size["all_bad"]

    # 1. the decode command end to end vs the pure-Python decoder, on the faulty file
    args = _decode_args(files, "faulty", work)
    _subprocess(args)  # warm the page cache and the .pyc files
    t_cmd = _best(lambda: _subprocess(args), repeats)
    with open(work / "faulty.avro", "rb") as f:
        ikou_q = [r["record"] for r in fastavro.reader(f)]
    ikou_rows = pa.ipc.open_file(work / "faulty.arrow").read_all().num_rows
    layout = load_layout(files["layout"])
    base = CarefulPython(layout, load_gaiji(files["gaiji"]))
    got = {}

    def python():
        got["rows"], got["q"] = base.decode_file(str(files["faulty"]), str(work / "py.arrow"),
                                                 str(work / "py.avro"))

    t_py = _best(python, max(1, repeats - 1))
    if got["q"] != ikou_q or got["rows"] != ikou_rows:
        raise AssertionError(f"pure Python and ikou disagree: {got['rows']} rows vs {ikou_rows},"
                             f" {len(got['q'])} vs {len(ikou_q)} quarantined")
    mbf = size["faulty"] / 1e6
    rows.append({"case": "decode command vs pure Python (faulty)", "MB": round(mbf, 1),
                 "quarantined": len(ikou_q), "ikou_s": round(t_cmd, 2),
                 "python_s": round(t_py, 2), "ikou_MB_s": round(mbf / t_cmd, 1),
                 "python_MB_s": round(mbf / t_py, 1), "ratio": round(t_py / t_cmd, 1),
                 "target": ">= 15x"})

    # 2. all bad vs clean, the same size, the same layout (the command's work, in process)
    t = {}
    for name in ("clean", "all_bad"):
        a = _decode_args(files, name, work)
        _in_process(a)
        t[name] = _best(lambda a=a: _in_process(a), repeats)
    with open(work / "all_bad.avro", "rb") as f:
        n_bad = sum(1 for _ in fastavro.reader(f))
    mbc = size["clean"] / 1e6
    rows.append({"case": "all bad vs clean (decode, in process)", "MB": round(mbc, 1),
                 "quarantined": n_bad, "clean_s": round(t["clean"], 2),
                 "all_bad_s": round(t["all_bad"], 2),
                 "clean_MB_s": round(mbc / t["clean"], 1),
                 "all_bad_MB_s": round(mbc / t["all_bad"], 1),
                 "ratio": round(t["clean"] / t["all_bad"], 2), "target": ">= 0.33"})

    # 3. start-up
    t_help = _best(lambda: _subprocess(["decode", "--help"]), max(3, repeats))
    rows.append({"case": "ikou decode --help (start-up)", "ikou_s": round(t_help, 3)})
    return rows


def run(quick: bool = False, mb: float | None = None) -> list[dict]:
    mb = mb or (2 if quick else float(os.environ.get("IKOU_BENCH_COMMANDS_MB", DEFAULT_MB)))
    work = Path(tempfile.mkdtemp(prefix="ikou-bench-commands-"))
    try:
        return measure(work, mb, 1 if quick else 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_commands",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=None, help=f"file size (default {DEFAULT_MB})")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    for r in run(args.quick, args.mb):
        print(json.dumps(r, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

