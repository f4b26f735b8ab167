"""Per-block work, usable with or without Beam.

A *block* is a byte range of one input file that holds whole records (the last
block of a file also holds a trailing fragment shorter than a record, if any).
:func:`plan_blocks` splits a file by arithmetic only (no reading), and
:func:`decode_block_records` reads one block, classifies its records by the
record-type field, decodes every kind with the kernel, writes the block's good
rows as Arrow IPC part files and returns a small :class:`BlockResult`.

Every record of a block ends in exactly one place: a row of a part file, or a
quarantined record (raw bytes + reasons) in the result.  Messages and reasons
never carry decoded values: field names, byte positions and byte hex only.
"""

from __future__ import annotations

import datetime
import os
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ikou.kernels import decode_block as kernel_decode_block

try:  # the facade re-exports it; _decode_common is where it lives
    from ikou.kernels import format_error
except ImportError:  # pragma: no cover - depends on the kernel facade
    from ikou.kernels._decode_common import format_error

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "HEADER",
    "TRAILER",
    "SEPARATOR_MISMATCH",
    "TRUNCATED_RECORD",
    "UNKNOWN_RECORD_TYPE",
    "LINEAGE_FIELDS",
    "Block",
    "BlockResult",
    "BlockDecoder",
    "data_kinds",
    "file_size",
    "output_name",
    "plan_blocks",
    "row_schema",
]

DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024

HEADER = "header"
TRAILER = "trailer"

# Record-level reason codes (the field-level ones come from the kernel).
TRUNCATED_RECORD = "TRUNCATED_RECORD"
SEPARATOR_MISMATCH = "SEPARATOR_MISMATCH"
UNKNOWN_RECORD_TYPE = "UNKNOWN_RECORD_TYPE"

LINEAGE_FIELDS = (
    pa.field("_source", pa.string(), nullable=False,
             metadata={b"label": "出力元ファイル".encode(), b"role": b"lineage"}),
    pa.field("_record", pa.int64(), nullable=False,
             metadata={b"label": "レコード番号".encode(), b"role": b"lineage"}),
    pa.field("_offset", pa.int64(), nullable=False,
             metadata={b"label": "バイト位置".encode(), b"role": b"lineage"}),
)


class Block(NamedTuple):
    """A byte range of one input holding whole records.

    ``first_record`` is the 0-based index of the block's first record in the
    file; ``n_records`` counts whole records (a final record without its
    separator included); ``tail`` is the length of a trailing fragment shorter
    than a record (only ever in the file's last block), part of ``length``.
    """

    input_index: int
    path: str
    block_index: int
    first_record: int
    n_records: int
    start_offset: int
    length: int
    tail: int = 0


@dataclass
class BlockResult:
    """What one decoded block reports (small: no decoded rows)."""

    input_index: int
    block_index: int
    path: str
    source: str
    n_records: int  # records in the block, a truncated fragment included
    bytes_read: int
    counts: dict[str, int] = field(default_factory=dict)  # records by kind ("" = unknown)
    rows: dict[str, int] = field(default_factory=dict)  # rows written by kind
    parts: dict[str, str] = field(default_factory=dict)  # kind -> part file path
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    n_quarantined: int = 0
    quarantined_by_kind: dict[str, int] = field(default_factory=dict)
    quarantined_by_code: dict[str, int] = field(default_factory=dict)
    tolerated_by_code: dict[str, int] = field(default_factory=dict)  # errors of kept rows
    headers: list[dict[str, Any]] = field(default_factory=list)
    trailers: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per step (decode, ...)

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.input_index, self.block_index)


def data_kinds(layout) -> list[str]:
    """Kinds whose good records become rows (every kind but header/trailer)."""
    return [k for k in layout.kinds if k not in (HEADER, TRAILER)]


def output_name(layout, kind: str) -> str:
    """File name of a row kind's Arrow output: ``<name>.arrow`` for ``data``."""
    return f"{layout.name}.arrow" if kind == "data" else f"{layout.name}.{kind}.arrow"


def row_schema(layout, kind: str) -> pa.Schema:
    """The layout's Arrow schema for ``kind`` plus the lineage columns."""
    schema = layout.arrow_schema(kind)
    for f in LINEAGE_FIELDS:
        if schema.get_field_index(f.name) < 0:
            schema = schema.append(f)
    return schema


def stride_of(layout) -> int:
    return layout.record_length + len(layout.separator or b"")


def file_size(path: str) -> int:
    """Size of ``path`` through Beam's file systems (local or remote)."""
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def source_name(path: str) -> str:
    return posixpath.basename(str(path).replace(os.sep, "/"))


def plan_blocks(input_index: int, path: str, size: int, layout,
                block_size: int = DEFAULT_BLOCK_SIZE) -> list[Block]:
    """Split a file of ``size`` bytes into blocks of whole records.

    Pure arithmetic.  A file always yields at least one block (an empty file
    one empty block) so that every input is reported.  The remainder after the
    last full stride is either a final record whose separator is missing or
    incomplete (``>= record_length`` bytes: a record) or a truncated fragment
    (kept as ``tail`` of the last block).
    """
    if block_size <= 0:
        raise ValueError(f"block size must be positive, got {block_size}")
    rl = layout.record_length
    stride = stride_of(layout)
    n_full, rem = divmod(size, stride)
    tail = 0
    if rem >= rl:
        n_full += 1  # the last record, separator missing or cut
    else:
        tail = rem
    per_block = max(1, block_size // stride)
    blocks = []
    first = 0
    while True:
        n = min(per_block, n_full - first)
        start = first * stride
        last = first + n >= n_full
        length = (size - start) if last else n * stride
        blocks.append(Block(input_index, str(path), len(blocks), first, n, start, length,
                            tail if last else 0))
        first += n
        if last:
            break
    return blocks


def read_block(block: Block) -> bytes:
    """The bytes of a block, read with Beam's ``FileSystems``."""
    with FileSystems.open(block.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.seek(block.start_offset)
        data = f.read(block.length)
    if len(data) != block.length:
        raise OSError(f"{block.path}: read {len(data)} bytes at offset {block.start_offset}, "
                      f"expected {block.length} (file changed while reading?)")
    return data


def _jsonable(value):
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _reason(field_name, code, message, position=None) -> dict[str, Any]:
    return {"field": field_name, "code": code, "position": position, "message": message}


def _code_name(code) -> str:
    name = getattr(code, "name", None)
    if name is not None:
        return str(name)
    try:
        from ikou.kernels import ErrorCode
        return ErrorCode(int(code)).name
    except (ImportError, ValueError, TypeError):
        return str(code)


class BlockDecoder:
    """Decodes blocks of one layout; holds the per-kind plans and schemas."""

    def __init__(self, layout, gaiji: dict | None, staging_dir: str | None,
                 gaiji_fallback: bool = False):
        self.layout = layout
        self.gaiji = dict(gaiji or {})
        self.staging_dir = staging_dir
        self.plans = {kind: layout.plan(kind, self.gaiji, gaiji_fallback)
                      for kind in layout.kinds}
        self.row_kinds = data_kinds(layout)
        self.schemas = {kind: row_schema(layout, kind) for kind in self.row_kinds}
        self.stride = stride_of(layout)
        self.sep = np.frombuffer(bytes(layout.separator or b""), dtype=np.uint8)
        rt = layout.record_type
        self.rt = None if rt is None else (int(rt[0]), int(rt[1]))
        self.codes = {}
        if self.rt is not None:
            for kind, k in layout.kinds.items():
                code = k.code.encode("ascii") if isinstance(k.code, str) else bytes(k.code)
                self.codes[kind] = np.frombuffer(code, dtype=np.uint8)

    # -- classification -------------------------------------------------
    def _classify(self, arr: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Kind index per record (index into ``self.kind_names``; -1 = unknown)."""
        kinds = list(self.layout.kinds)
        out = np.full(len(starts), -1, dtype=np.int64)
        if self.rt is None:
            out[:] = kinds.index("data") if "data" in kinds else 0
            return out
        off, ln = self.rt
        if len(starts) == 0:
            return out
        field_bytes = arr[starts[:, None] + off + np.arange(ln)[None, :]]
        for i, kind in enumerate(kinds):
            hit = (field_bytes == self.codes[kind][None, :]).all(axis=1)
            out[hit & (out < 0)] = i
        return out

    def _kind_of_fragment(self, frag: bytes) -> str | None:
        if self.rt is None:
            return "data" if "data" in self.layout.kinds else next(iter(self.layout.kinds))
        off, ln = self.rt
        if len(frag) < off + ln:
            return None
        return self.layout.kind_for_code(frag[off:off + ln])

    # -- the block --------------------------------------------------------
    def decode(self, block: Block) -> BlockResult:
        t0 = time.perf_counter()
        buf = read_block(block)
        t1 = time.perf_counter()
        res = self.decode_bytes(block, buf)
        res.seconds["read"] = t1 - t0
        # decode = everything but reading and what a subclass timed itself (e.g. mapping)
        res.seconds["decode"] = time.perf_counter() - t1 - sum(
            v for k, v in res.seconds.items() if k != "read")
        return res

    def decode_bytes(self, block: Block, buf: bytes) -> BlockResult:
        """Decode a block given its bytes (``buf`` starts at ``block.start_offset``)."""
        res = BlockResult(block.input_index, block.block_index, block.path,
                          source_name(block.path), block.n_records + (1 if block.tail else 0),
                          len(buf))
        arr = np.frombuffer(buf, dtype=np.uint8)
        starts = np.arange(block.n_records, dtype=np.int64) * self.stride
        quarantine: dict[int, dict[str, Any]] = {}  # local record index -> quarantined record

        def put(local: int, kind: str | None, raw: bytes, reasons: list) -> None:
            quarantine[local] = {
                "source": res.source,
                "input": block.input_index,
                "record": block.first_record + local + 1,
                "offset": block.start_offset + local * self.stride,
                "kind": kind,
                "raw": bytes(raw),
                "reasons": reasons,
            }

        kind_idx = self._classify(arr, starts)
        sep_bad = self._separator_mismatches(arr, starts, len(buf))
        kind_names = list(self.layout.kinds)
        rl = self.layout.record_length
        for local in np.flatnonzero(sep_bad).tolist():
            s = int(starts[local])
            raw = buf[s:s + self.stride]
            ki = int(kind_idx[local])
            put(local, kind_names[ki] if ki >= 0 else None, raw,
                [_reason(None, SEPARATOR_MISMATCH,
                         f"record separator at byte {rl}: found {raw[rl:].hex() or 'none'}, "
                         f"expected {bytes(self.sep).hex()}", rl)])
        for local in np.flatnonzero((kind_idx < 0) & ~sep_bad).tolist():
            s = int(starts[local])
            off, ln = self.rt
            put(local, None, buf[s:s + rl],
                [_reason(None, UNKNOWN_RECORD_TYPE,
                         f"record type at byte {off}: {buf[s + off:s + off + ln].hex()} "
                         "matches no kind of the layout", off)])
        unknown = int((kind_idx < 0).sum())
        if unknown:
            res.counts[""] = unknown

        for ki, kind in enumerate(kind_names):
            sel = np.flatnonzero(kind_idx == ki)
            res.counts[kind] = int(len(sel))
            self._decode_kind(block, buf, starts, kind, sel[~sep_bad[sel]], res, put)

        if block.tail:
            frag = buf[len(buf) - block.tail:]
            kind = self._kind_of_fragment(frag)
            res.counts[kind or ""] = res.counts.get(kind or "", 0) + 1
            put(block.n_records, kind, frag,
                [_reason(None, TRUNCATED_RECORD,
                         f"record of {len(frag)} bytes at end of file, expected {rl}", None)])

        res.quarantined = [quarantine[k] for k in sorted(quarantine)]
        res.n_quarantined = len(res.quarantined)
        for rec in res.quarantined:
            k = rec["kind"] or ""
            res.quarantined_by_kind[k] = res.quarantined_by_kind.get(k, 0) + 1
            for code in sorted({r["code"] for r in rec["reasons"]}):
                res.quarantined_by_code[code] = res.quarantined_by_code.get(code, 0) + 1
        return res

    def _separator_mismatches(self, arr: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
        """True for records not followed by the separator (a missing one at EOF is fine)."""
        rl, sep_len = self.layout.record_length, len(self.sep)
        bad = np.zeros(len(starts), dtype=bool)
        if not sep_len or not len(starts):
            return bad
        full = starts + rl + sep_len <= size
        idx = starts[full][:, None] + rl + np.arange(sep_len)[None, :]
        bad[full] = ~(arr[idx] == self.sep[None, :]).all(axis=1)
        if not full[-1]:  # the file's last record, cut before or inside its separator
            bad[-1] = size > int(starts[-1]) + rl  # missing entirely: accepted
        return bad

    def _decode_kind(self, block: Block, buf: bytes, starts: np.ndarray, kind: str,
                     sel: np.ndarray, res: BlockResult, put) -> None:
        """Decode the records ``sel`` (local indexes) of one kind; rows, values or quarantine."""
        if not len(sel):
            if kind in self.schemas:
                res.rows[kind] = 0
            return
        plan = self.plans[kind]
        rl = self.layout.record_length
        dec = kernel_decode_block(buf, np.ascontiguousarray(starts[sel]), plan)
        err = dec.errors
        bad = np.asarray(dec.bad_rows, dtype=np.int64)
        keep = np.ones(len(sel), dtype=bool)
        keep[bad] = False
        if len(err):
            reasons: dict[int, list] = {}
            for row, f_i, code, pos, val in zip(err.row.tolist(), err.field.tolist(),
                                                err.code.tolist(), err.pos.tolist(),
                                                err.value.tolist(), strict=True):
                if keep[row]:  # tolerated by the field's on_error policy: counted only
                    name = _code_name(code)
                    res.tolerated_by_code[name] = res.tolerated_by_code.get(name, 0) + 1
                    continue
                reasons.setdefault(row, []).append(_reason(
                    plan.fields[f_i].name, _code_name(code),
                    format_error(plan, f_i, code, pos, val), pos))
            for r in bad.tolist():
                local = int(sel[r])
                s = int(starts[local])
                put(local, kind, buf[s:s + rl], reasons.get(r, []))
        good = sel[keep]
        batch = dec.batch if keep.all() else dec.batch.filter(pa.array(keep))
        if kind in self.schemas:
            self._emit_rows(block, buf, starts, kind, batch, good, res, put)
        else:
            target = res.headers if kind == HEADER else res.trailers
            for local, row in zip(good.tolist(), batch.to_pylist(), strict=True):
                target.append({"record": block.first_record + local + 1,
                               "values": {k: _jsonable(v) for k, v in row.items()}})

    def _emit_rows(self, block: Block, buf: bytes, starts: np.ndarray, kind: str,
                   batch: pa.RecordBatch, good: np.ndarray, res: BlockResult, put) -> None:
        """The good decoded rows of a row kind (``good``: their local record indexes): written
        as the block's part file. Subclasses may transform them first (e.g. map them to a
        standard layout) and quarantine rows with ``put(local, kind, raw, reasons)``."""
        res.rows[kind] = int(len(good))
        if len(good):
            res.parts[kind] = self._write_part(block, kind, batch, res.source, starts, good)

    def with_lineage(self, block: Block, kind: str, batch: pa.RecordBatch, source: str,
                     starts: np.ndarray, good: np.ndarray) -> pa.RecordBatch:
        """``batch`` plus the lineage columns ``_source``, ``_record``, ``_offset``."""
        n = batch.num_rows
        schema = self.schemas[kind]
        lineage = [
            pa.array([source] * n, pa.string()),
            pa.array(block.first_record + good + 1, pa.int64()),
            pa.array(block.start_offset + starts[good], pa.int64()),
        ]
        columns = list(batch.columns)
        names = [f.name for f in LINEAGE_FIELDS]
        columns += [a for nm, a in zip(names, lineage, strict=True) if batch.schema.get_field_index(nm) < 0]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _write_part(self, block: Block, kind: str, batch: pa.RecordBatch, source: str,
                    starts: np.ndarray, good: np.ndarray) -> str:
        out = self.with_lineage(block, kind, batch, source, starts, good)
        return self.write_part(block, kind, out)

    def write_part(self, block: Block, kind: str, out: pa.RecordBatch | pa.Table) -> str:
        """Write ``out`` as the block's part file of ``kind`` (atomically; a retried bundle
        replaces it with the same bytes); returns its path."""
        schema = out.schema
        if self.staging_dir is None:
            raise ValueError("no staging folder for part files")
        name = f"{block.input_index:05d}-{block.block_index:07d}-{kind}.arrow"
        path = FileSystems.join(self.staging_dir, "parts", name)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, schema) as writer:
            if isinstance(out, pa.Table):
                writer.write_table(out)
            else:
                writer.write_batch(out)
        data = sink.getvalue()
        tmp = path + ".tmp"
        with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data.to_pybytes())
        if FileSystems.exists(path):  # a retried bundle: same bytes, replace
            FileSystems.delete([path])
        FileSystems.rename([tmp], [path])
        return path
