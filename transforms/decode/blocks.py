"""Per-block work, usable with or without Beam.

A *block* is a byte range of one input file that holds whole records (the last
block of a file also holds a trailing fragment shorter than a record, if any).
:func:`plan_blocks` splits a file by arithmetic only (no reading), and
:func:`decode_block_records` reads one block, classifies its records by the
record-type field, decodes every kind with the kernel, writes the block's good
rows as Arrow IPC part files and returns a small :class:`BlockResult`.

Every record of a block ends in exactly one place: a row of a part file, or a
quarantined record (raw bytes + reasons) in the block's quarantine part file (built in bulk
from the kernel's error arrays, :mod:`ikou.transforms.decode.quarantine`).  Messages and reasons
never carry decoded values: field names, byte positions and byte hex only.

Local paths are read and written without Apache Beam; only paths with a URL scheme go
through Beam's ``FileSystems`` (:mod:`ikou.transforms.fileio`).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import os
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import pyarrow as pa

from ikou.kernels import ErrorCode, format_errors
from ikou.kernels import _compute as ac
from ikou.kernels import decode_block as kernel_decode_block
from ikou.kernels._decode_common import (
    join_columns,
    numpy_to_arrow,
    repeat_binary,
    small_unique,
)
from ikou.transforms import arrowio, fileio
from ikou.transforms.decode.gaiji_count import count_gaiji
from ikou.transforms.decode.protocols import LayoutLike
from ikou.transforms.decode.quarantine import QuarantineBuilder, decode_datums, read_part
from ikou.transforms.decode.quarantine import write_part as write_quarantine_part
from ikou.transforms.decode.shape import nest_schema, nest_table, occurs_errors

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
    "decode_blocks",
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
OCCURS_COUNT_OUT_OF_RANGE = "OCCURS_COUNT_OUT_OF_RANGE"

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
    #: V / VB files: the stretches that are not records, as quarantine entries
    #: ``(file offset, length, code, message)`` (ikou.transforms.decode.records)
    spans: tuple = ()


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
    tables: dict[str, pa.RecordBatch] = field(default_factory=dict)  # kind -> rows in memory
    quarantine_part: str | None = None  # the block's quarantined records (Arrow IPC file)
    quarantine: pa.Table | None = None  # the same in memory (input, record, Avro datum)
    n_quarantined: int = 0
    quarantined_by_kind: dict[str, int] = field(default_factory=dict)
    quarantined_by_code: dict[str, int] = field(default_factory=dict)
    tolerated_by_code: dict[str, int] = field(default_factory=dict)  # errors of kept rows
    gaiji: dict[str, int] = field(default_factory=dict)  # "F040 mapped" -> count (gaiji_count)
    headers: list[dict[str, Any]] = field(default_factory=list)
    trailers: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per step (decode, ...)

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.input_index, self.block_index)

    def quarantine_table(self) -> pa.Table | None:
        """The quarantined records (``input, record, datum``): in memory or from the part."""
        if self.quarantine is not None:
            return self.quarantine
        if self.quarantine_part is not None:
            return read_part(self.quarantine_part)
        return None

    @property
    def quarantined(self) -> list[dict[str, Any]]:
        """The quarantined records as dicts (``source, input, record, offset, kind, raw,
        reasons``), in record order (decoded from their Avro datums: for tests and tools)."""
        table = self.quarantine_table()
        if table is None:
            return []
        return decode_datums(table.column("datum").to_pylist())

    def without_quarantine(self) -> BlockResult:
        """This result without the in-memory quarantine (what travels between workers)."""
        if self.tables:
            raise ValueError("rows kept in memory cannot leave the process")
        return dataclasses.replace(self, quarantine=None)


def data_kinds(layout: LayoutLike) -> list[str]:
    """Kinds whose good records become rows (every kind but header/trailer)."""
    return [k for k in layout.kinds if k not in (HEADER, TRAILER)]


def output_name(layout: LayoutLike, kind: str) -> str:
    """File name of a row kind's Arrow output: ``<name>.arrow`` for ``data``."""
    return f"{layout.name}.arrow" if kind == "data" else f"{layout.name}.{kind}.arrow"


def flat_row_schema(layout: LayoutLike, kind: str) -> pa.Schema:
    """The layout's flat Arrow schema for ``kind`` (a column per field) plus the lineage
    columns."""
    schema = layout.arrow_schema(kind)
    for f in LINEAGE_FIELDS:
        if schema.get_field_index(f.name) < 0:
            schema = schema.append(f)
    return schema


def nested(layout: LayoutLike) -> bool:
    """Rows of this layout are written nested (groups as structs, OCCURS as lists)."""
    return getattr(layout, "shape", "flat") == "nested"


def row_schema(layout: LayoutLike, kind: str) -> pa.Schema:
    """The schema of ``kind``'s output rows: :func:`flat_row_schema`, nested by the copybook's
    structure when the layout's ``shape`` is ``nested``."""
    schema = flat_row_schema(layout, kind)
    if nested(layout):
        schema = nest_schema(schema, layout.structure_of(kind))
    return schema


def shrink_spec(layout: LayoutLike, kind: str, plan):
    """(table offset, element size, maximum, counter plan) of ``kind``'s OCCURS … DEPENDING ON
    table, for records that hold only the counter's elements (``occurs_shrink``)."""
    from ikou.kernels import DecodePlan
    from ikou.transforms.decode.shape import flat_columns

    tables = []

    def walk(nodes, inside):
        for node in nodes:
            if node.get("depending_on") and not inside:
                tables.append(node)
            if "children" in node:
                walk(node["children"], inside or bool(node.get("occurs")))

    walk(layout.structure_of(kind), False)
    if len(tables) != 1:
        raise ValueError(f"occurs_shrink: kind {kind!r} needs exactly one OCCURS … DEPENDING ON "
                         f"table outside other tables, it has {len(tables)}")
    node = tables[0]
    n = int(node["occurs"])
    by_name = {f.name: f for f in plan.fields}
    first = [by_name[c] for c in flat_columns([{**node, "occurs": 0}], (1,)) if c in by_name]
    if not first:
        raise ValueError(f"occurs_shrink: OCCURS {node['name']} has no fields")
    start = min(f.offset for f in first)
    if n > 1:
        second = [by_name[c] for c in flat_columns([{**node, "occurs": 0}], (2,)) if c in by_name]
        size = min(f.offset for f in second) - start
    else:
        size = max(f.end for f in first) - start
    counter = by_name[node["depending_on"]]
    if counter.offset + counter.length > start:
        raise ValueError(f"occurs_shrink: the counter {counter.name} must precede its table")
    return start, size, n, DecodePlan(plan.record_length, [counter])


def occurs_nodes(structure) -> bool:
    """The structure has an OCCURS … DEPENDING ON table (whose counter must be in range)."""
    return any(n.get("depending_on") or occurs_nodes(n.get("children") or ())
               for n in structure)


def stride_of(layout: LayoutLike) -> int:
    return layout.record_length + len(layout.separator or b"")


def file_size(path: str) -> int:
    """Size of ``path`` (local, or through Beam's file systems for a URL)."""
    return fileio.size(path)


def source_name(path: str) -> str:
    return posixpath.basename(str(path).replace(os.sep, "/"))


def plan_blocks(input_index: int, path: str, size: int, layout: LayoutLike,
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
    if getattr(layout, "variable", False):  # V / VB: an index pass reads the file
        from ikou.transforms.decode.records import plan_variable_blocks

        return plan_variable_blocks(Block, input_index, path, size, layout, block_size)
    rl = layout.record_length
    stride = stride_of(layout)
    n_full, rem = divmod(size, stride)
    tail = 0
    if rem >= rl:
        n_full += 1  # the last record, separator missing or cut
    else:
        tail = rem
    per_block = max(1, block_size // stride)
    blocks: list[Block] = []
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


#: a block's bytes: read whole, or a view of a buffer that later blocks are read into
BlockBytes = bytes | memoryview


def read_block(block: Block, into: bytearray | None = None) -> BlockBytes:
    """The bytes of a block (local, or through Beam's ``FileSystems`` for a URL).  With
    ``into`` (at least ``block.length`` bytes) and a local file, they are read into it and a
    view of them is returned."""
    with fileio.open_read(block.path) as f:
        f.seek(block.start_offset)
        if into is None or fileio.is_url(block.path):
            data: BlockBytes = f.read(block.length)
            got = len(data)
        else:
            data = memoryview(into)[:block.length]
            got = 0
            while got < block.length:  # a read may return less than asked
                n = f.readinto(data[got:])
                if not n:
                    break
                got += n
    if got != block.length:
        raise OSError(f"{block.path}: read {got} bytes at offset {block.start_offset}, "
                      f"expected {block.length} (file changed while reading?)")
    return data


def decode_blocks(decoder: BlockDecoder, blocks: Sequence[Block], workers: int = 2,
                  ahead: int = 4, digest: bool = True,
                  on_result: Callable[[BlockResult], None] | None = None,
                  ) -> tuple[list[BlockResult], str | None]:
    """Decode ``blocks`` (consecutive, of one file, in order) with ``workers`` threads (the
    kernel releases the GIL); returns (results in block order, the sha256 hex of the bytes
    read: the file's digest when the blocks cover it; None with ``digest=False``, for a caller
    that hashed the file already).  Blocks are read one after the other and hashed while
    earlier ones decode; at most ``ahead`` are read but not yet decoded.  ``on_result`` is
    called with each result in block order as soon as it is ready, while later blocks decode
    (e.g. to write its rows and let them go)."""
    from concurrent.futures import ThreadPoolExecutor

    h = hashlib.sha256() if digest else None
    results: list[BlockResult] = []

    def done(r: BlockResult) -> None:
        if on_result is not None:
            on_result(r)
        results.append(r)

    if workers <= 1:
        for b in blocks:
            t0 = time.perf_counter()
            data = read_block(b)
            if h is not None:
                h.update(data)
            done(decoder.decode_read(b, data, time.perf_counter() - t0))
        return results, h.hexdigest() if h is not None else None
    # fixed-length records of a local file: read into a few buffers used again and again
    # (a fresh 8 MB buffer per block costs its 2,048 page faults); a block's decoding keeps
    # nothing of its buffer (every raw record it quarantines is copied out)
    recycle = not decoder.variable and all(not fileio.is_url(b.path) for b in blocks)
    free: list[bytearray] = []
    pending: collections.deque = collections.deque()

    def finish_first() -> None:
        fut, used = pending.popleft()
        done(fut.result())
        if used is not None:
            free.append(used)

    with ThreadPoolExecutor(workers) as pool:
        for b in blocks:
            while len(pending) >= ahead:
                finish_first()
            t0 = time.perf_counter()
            used = None
            if recycle:
                used = free.pop() if free else bytearray(b.length)
                if len(used) < b.length:
                    used = bytearray(b.length)
            buf = read_block(b, used)
            seconds = time.perf_counter() - t0
            if h is not None:
                h.update(buf)  # hashlib releases the GIL: overlaps the workers' decoding
            pending.append((pool.submit(decoder.decode_read, b, buf, seconds), used))
        while pending:
            finish_first()
    return results, h.hexdigest() if h is not None else None


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
        return ErrorCode(int(code)).name
    except (ValueError, TypeError):
        return str(code)


def _code_names(codes: np.ndarray) -> pa.Array:
    """:func:`_code_name` of every kernel error code, as a string array."""
    uniq, inverse = small_unique(codes)
    return ac.take(pa.array([_code_name(c) for c in uniq.tolist()], pa.string()),
                   numpy_to_arrow(inverse))


def _count_codes(codes: np.ndarray) -> dict[str, int]:
    uniq, inverse = small_unique(codes)
    counts = np.bincount(inverse, minlength=len(uniq))
    out: dict[str, int] = {}
    for c, n in zip(uniq.tolist(), counts.tolist(), strict=True):
        name = _code_name(c)
        out[name] = out.get(name, 0) + n
    return out


def _repeat_str(value: str, n: int) -> pa.Array:
    return repeat_binary(value.encode("utf-8"), n).view(pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_columns(arr: np.ndarray, starts: np.ndarray, width: int) -> pa.Array:
    """``arr[s:s + width].hex()`` for every start, as a string array (no Python loop)."""
    n = len(starts)
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(width)[None, :]
    b = arr[idx]
    mat = np.empty((n, 2 * width), dtype=np.uint8)
    mat[:, 0::2] = _HEX[b >> 4]
    mat[:, 1::2] = _HEX[b & 15]
    offsets = np.arange(n + 1, dtype=np.int32) * (2 * width)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(mat.tobytes())])


class BlockDecoder:
    """Decodes blocks of one layout; holds the per-kind plans and schemas."""

    #: write each block's quarantined records as a part file (else they stay in the result)
    quarantine_parts = True
    #: write each block's rows as part files (else they stay in the result: one process)
    row_parts = True
    #: count the 外字 codes seen, mapped and unmapped (for the run report; ikou decode, which
    #: writes no report, switches it off)
    gaiji_counts = True

    def __init__(self, layout: LayoutLike, gaiji: dict | None, staging_dir: str | None,
                 gaiji_fallback: bool = False):
        self.layout = layout
        self.gaiji = dict(gaiji or {})
        self.staging_dir = staging_dir
        self.plans = {kind: layout.plan(kind, self.gaiji, gaiji_fallback)
                      for kind in layout.kinds}
        self.row_kinds = data_kinds(layout)
        self.schemas = {kind: row_schema(layout, kind) for kind in self.row_kinds}
        self.flat_schemas = {kind: flat_row_schema(layout, kind) for kind in self.row_kinds}
        self.nested = nested(layout)
        structures = {kind: getattr(layout, "structure_of", lambda k: ())(kind)
                      for kind in self.row_kinds}
        #: row kinds with an OCCURS … DEPENDING ON table: their counters are checked
        self.counted = {k: s for k, s in structures.items() if occurs_nodes(s)}
        self.structures = structures
        #: V / VB with ``occurs_shrink``: per kind (table offset, element size, maximum,
        #: counter plan): records hold only the counter's elements
        self.shrink = ({k: shrink_spec(layout, k, self.plans[k]) for k in self.counted}
                       if getattr(layout, "occurs_shrink", False) else {})
        self.stride = stride_of(layout)
        self.sep = np.frombuffer(bytes(layout.separator or b""), dtype=np.uint8)
        rt = layout.record_type
        self.rt = None if rt is None else (int(rt[0]), int(rt[1]))
        #: V / VB: records behind 4-byte RDWs (ikou.transforms.decode.records)
        self.variable = bool(getattr(layout, "variable", False))
        self.header_len = 4 if self.variable else 0
        self.record_format = layout.framing.kernel_format() if self.variable else None
        self.codes = {}
        if self.rt is not None:
            for kind, k in layout.kinds.items():
                # with a record-type field every kind has a code (the layout's parser checks)
                code = (k.code.encode("ascii") if isinstance(k.code, str)
                        else bytes(cast(bytes, k.code)))
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
        return self.decode_read(block, buf, time.perf_counter() - t0)

    def decode_read(self, block: Block, buf: BlockBytes, read_seconds: float) -> BlockResult:
        """:meth:`decode_bytes` of a block already read (in ``read_seconds``), timed."""
        t1 = time.perf_counter()
        res = self.decode_bytes(block, buf)
        res.seconds["read"] = read_seconds
        # decode = everything but reading and what a subclass timed itself (e.g. mapping)
        res.seconds["decode"] = time.perf_counter() - t1 - sum(
            v for k, v in res.seconds.items() if k != "read")
        return res

    def decode_bytes(self, block: Block, buf: BlockBytes) -> BlockResult:
        """Decode a block given its bytes (``buf`` starts at ``block.start_offset``)."""
        if self.variable:
            from ikou.transforms.decode.records import decode_variable_block

            # whole bytes (decode_blocks reads variable-length records without a shared buffer)
            res, q = decode_variable_block(self, block, bytes(buf), BlockResult,
                                           QuarantineBuilder)
            return self._finish(block, res, q)
        res = BlockResult(block.input_index, block.block_index, block.path,
                          source_name(block.path), block.n_records + (1 if block.tail else 0),
                          len(buf))
        arr = np.frombuffer(buf, dtype=np.uint8)
        starts = np.arange(block.n_records, dtype=np.int64) * self.stride
        q = QuarantineBuilder(res.source, block.input_index, block.first_record,
                              block.start_offset, self.stride)

        kind_idx = self._classify(arr, starts)
        sep_bad = self._separator_mismatches(arr, starts, len(buf))
        kind_names = list(self.layout.kinds)
        rl = self.layout.record_length
        self._quarantine_separators(q, arr, starts, np.flatnonzero(sep_bad), kind_idx,
                                    kind_names)
        self._quarantine_unknown(q, arr, starts, np.flatnonzero((kind_idx < 0) & ~sep_bad))
        unknown = int((kind_idx < 0).sum())
        if unknown:
            res.counts[""] = unknown

        for ki, kind in enumerate(kind_names):
            sel = np.flatnonzero(kind_idx == ki)
            res.counts[kind] = int(len(sel))
            self._decode_kind(block, buf, starts, kind, sel[~sep_bad[sel]], res, q)

        if block.tail:
            frag = bytes(buf[len(buf) - block.tail:])
            frag_kind = self._kind_of_fragment(frag)
            res.counts[frag_kind or ""] = res.counts.get(frag_kind or "", 0) + 1
            q.put(block.n_records, frag_kind, frag,
                  [_reason(None, TRUNCATED_RECORD,
                           f"record of {len(frag)} bytes at end of file, expected {rl}", None)])
        return self._finish(block, res, q)

    def _finish(self, block: Block, res: BlockResult, q: QuarantineBuilder) -> BlockResult:
        """The block's quarantined records built and written (its quarantine part)."""
        t0 = time.perf_counter()
        table, by_kind, by_code = q.build()
        res.n_quarantined = table.num_rows
        res.quarantined_by_kind = by_kind
        res.quarantined_by_code = by_code
        if table.num_rows:
            res.quarantine = table
            if self.staging_dir is not None and self.quarantine_parts:
                res.quarantine_part = write_quarantine_part(
                    self.part_path(block, None), table)
        res.seconds["quarantine"] = res.seconds.get("quarantine", 0.0) + (
            time.perf_counter() - t0)
        return res

    def _quarantine_separators(self, q: QuarantineBuilder, arr: np.ndarray, starts: np.ndarray,
                               bad: np.ndarray, kind_idx: np.ndarray, kind_names) -> None:
        """Records not followed by the separator: the record and what stands in its place."""
        if not len(bad):
            return
        size = len(arr)
        full = starts[bad] + self.stride <= size
        rl = self.layout.record_length
        expected = bytes(self.sep).hex()
        for sel, length in ((bad[full], self.stride), (bad[~full], None)):
            if not len(sel):
                continue
            if length is None:  # the block's last record, cut inside its separator (one)
                length = size - int(starts[sel[0]])
            found = (_hex_columns(arr, starts[sel] + rl, length - rl) if length > rl
                     else _repeat_str("none", len(sel)))
            msg = join_columns([f"record separator at byte {rl}: found ", found,
                                f", expected {expected}"], string=True)
            kinds = ac.take(pa.array([kind_names[k] if k >= 0 else None
                                      for k in range(-1, len(kind_names))], pa.string()),
                            numpy_to_arrow(kind_idx[sel] + 1))
            n = len(sel)
            q.add_rows(arr, starts, sel, length, kinds, np.ones(n, dtype=np.int64),
                       pa.nulls(n, pa.string()), _repeat_str(SEPARATOR_MISMATCH, n),
                       numpy_to_arrow(np.full(n, rl, dtype=np.int32)), msg)

    def _quarantine_unknown(self, q: QuarantineBuilder, arr: np.ndarray, starts: np.ndarray,
                            sel: np.ndarray) -> None:
        """Records whose record-type field matches no kind of the layout."""
        if not len(sel):
            return
        assert self.rt is not None, "unknown kinds need a record-type field"
        off, ln = self.rt
        n = len(sel)
        msg = join_columns([f"record type at byte {off}: ",
                            _hex_columns(arr, starts[sel] + off, ln),
                            " matches no kind of the layout"], string=True)
        q.add_rows(arr, starts, sel, self.layout.record_length, None, np.ones(n, dtype=np.int64),
                   pa.nulls(n, pa.string()), _repeat_str(UNKNOWN_RECORD_TYPE, n),
                   numpy_to_arrow(np.full(n, off, dtype=np.int32)), msg)

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

    def _decode_kind(self, block: Block, buf: BlockBytes, starts: np.ndarray, kind: str,
                     sel: np.ndarray, res: BlockResult, q: QuarantineBuilder) -> None:
        """Decode the records ``sel`` (local indexes) of one kind; rows, values or quarantine."""
        if not len(sel):
            if kind in self.schemas:
                res.rows[kind] = 0
            return
        plan = self.plans[kind]
        rl = self.layout.record_length
        # the rejected rows are dropped by the kernel (in place); their errors remain
        dec = kernel_decode_block(buf, np.ascontiguousarray(starts[sel]), plan,
                                  drop_rejected=True)
        if self.gaiji_counts:
            count_gaiji(np.frombuffer(buf, dtype=np.uint8), starts[sel], plan, res.gaiji,
                        self.stride)
        err = dec.errors
        bad = np.asarray(dec.bad_rows, dtype=np.int64)
        keep = np.ones(len(sel), dtype=bool)
        keep[bad] = False
        if len(err):
            tolerated = keep[err.row]  # tolerated by the field's on_error policy: counted only
            if tolerated.any():
                for name, n in _count_codes(err.code[tolerated]).items():
                    res.tolerated_by_code[name] = res.tolerated_by_code.get(name, 0) + n
            e = ~tolerated  # every error of a rejected row is one of its reasons, in order
            if len(bad):
                rows, field_i, codes = err.row[e], err.field[e], err.code[e]
                pos, value = err.pos[e], err.value[e]
                names = pa.array([f.name for f in plan.fields], pa.string())
                q.add_rows(np.frombuffer(buf, dtype=np.uint8), starts, sel[bad], rl, kind,
                           np.bincount(np.searchsorted(bad, rows), minlength=len(bad)),
                           ac.take(names, numpy_to_arrow(field_i)), _code_names(codes),
                           numpy_to_arrow(pos, pa.int32()),
                           format_errors(plan, field_i, codes, pos, value))
        self.emit_kept(block, buf, starts, kind, dec.batch, sel, keep, res, q, compacted=True)

    def emit_kept(self, block: Block, buf: BlockBytes, starts: np.ndarray, kind: str,
                  batch: pa.RecordBatch, sel: np.ndarray, keep: np.ndarray, res: BlockResult,
                  q: QuarantineBuilder, compacted: bool = False) -> None:
        """The decoded records ``sel`` of ``kind`` whose ``keep`` is set (OCCURS counters
        checked first): rows of a row kind, or the values of a header / trailer.
        ``batch`` has a row per record of ``sel``, or (``compacted``) only those of ``keep``."""
        present = np.flatnonzero(keep) if compacted else None  # batch row -> index in sel
        if kind in self.counted:
            self._check_counters(buf, starts, sel, keep, batch, present, kind, q.put)
        good = sel[keep]
        mask = keep if present is None else keep[present]
        if not mask.all():
            batch = ac.filter_(batch, numpy_to_arrow(mask))
        if kind in self.schemas:
            self._emit_rows(block, buf, starts, kind, batch, good, res, q.put)
        else:
            target = res.headers if kind == HEADER else res.trailers
            for local, row in zip(good.tolist(), batch.to_pylist(), strict=True):
                target.append({"record": block.first_record + local + 1,
                               "values": {k: _jsonable(v) for k, v in row.items()}})

    def _check_counters(self, buf: BlockBytes, starts: np.ndarray, sel: np.ndarray, keep: np.ndarray,
                        batch: pa.RecordBatch, present: np.ndarray | None, kind: str,
                        put) -> None:
        """Quarantine (and drop from ``keep``) the kept records whose OCCURS … DEPENDING ON
        counter is outside 0..maximum: the table cannot be cut to it.  ``present``: the index
        in ``sel`` of each row of ``batch`` (None: one row per record of ``sel``)."""
        errors = occurs_errors(pa.Table.from_batches([batch]), self.counted[kind])
        by_row: dict[int, list] = {}
        for row, counter, message in errors:
            row = int(row if present is None else present[row])
            if keep[row]:
                by_row.setdefault(row, []).append(
                    _reason(counter, OCCURS_COUNT_OUT_OF_RANGE, message))
        rl = self.layout.record_length
        for row, reasons in sorted(by_row.items()):
            keep[row] = False
            local = int(sel[row])
            s = int(starts[local])
            put(local, kind, None if self.variable else bytes(buf[s:s + rl]), reasons)

    def _emit_rows(self, block: Block, buf: BlockBytes, starts: np.ndarray, kind: str,
                   batch: pa.RecordBatch, good: np.ndarray, res: BlockResult, put) -> None:
        """The good decoded rows of a row kind (``good``: their local record indexes): written
        as the block's part file. Subclasses may transform them first (e.g. map them to a
        standard layout) and quarantine rows with ``put(local, kind, raw, reasons)``."""
        res.rows[kind] = int(len(good))
        if len(good) and not self.row_parts:
            res.tables[kind] = self.with_lineage(block, kind, batch, res.source, starts, good)
        elif len(good):
            res.parts[kind] = self._write_part(block, kind, batch, res.source, starts, good)

    def with_lineage(self, block: Block, kind: str, batch: pa.RecordBatch, source: str,
                     starts: np.ndarray, good: np.ndarray) -> pa.RecordBatch:
        """``batch`` plus the lineage columns ``_source``, ``_record``, ``_offset``."""
        n = batch.num_rows
        schema = self.flat_schemas[kind]
        lineage = [
            _repeat_str(source, n),
            numpy_to_arrow(block.first_record + good + 1, pa.int64()),
            numpy_to_arrow(block.start_offset + starts[good] - self.header_len, pa.int64()),
        ]
        columns = list(batch.columns)
        names = [f.name for f in LINEAGE_FIELDS]
        columns += [a for nm, a in zip(names, lineage, strict=True) if batch.schema.get_field_index(nm) < 0]
        flat = pa.RecordBatch.from_arrays(columns, schema=schema)
        if not self.nested:
            return flat
        table = nest_table(flat, self.structures[kind])
        return pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns],
                                          schema=self.schemas[kind])

    def _write_part(self, block: Block, kind: str, batch: pa.RecordBatch, source: str,
                    starts: np.ndarray, good: np.ndarray) -> str:
        out = self.with_lineage(block, kind, batch, source, starts, good)
        return self.write_part(block, kind, out)

    def write_part(self, block: Block, kind: str, out: pa.RecordBatch | pa.Table) -> str:
        """Write ``out`` as the block's part file of ``kind`` (atomically; a retried bundle
        replaces it with the same bytes); returns its path."""
        return arrowio.write_file(self.part_path(block, kind), out)

    def part_path(self, block: Block, kind: str | None) -> str:
        """Path of the block's part file of ``kind`` (None: of its quarantined records)."""
        if self.staging_dir is None:
            raise ValueError("no staging folder for part files")
        name = (f"{block.input_index:05d}-{block.block_index:07d}-{kind}.arrow" if kind
                else f"{block.input_index:05d}-{block.block_index:07d}.quarantine.arrow")
        return fileio.join(self.staging_dir, "parts", name)
