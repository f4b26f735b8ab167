"""Quarantined records in bulk: built from arrays, encoded as Avro datums, written in blocks.

A block's quarantined records are collected by :class:`QuarantineBuilder` as *chunks* of
arrays (record indexes, raw byte ranges of the block's buffer, reasons as flat columns), never
as one Python object per record on the hot paths; :meth:`QuarantineBuilder.build` sorts them
by record and encodes each record as its Avro binary datum (the ``QuarantinedRecord`` schema of
:mod:`ikou.transforms.decode.outputs`) column-wise with numpy / pyarrow.

The result is a small table (``input``, ``record``, ``datum``): a block writes it as its
quarantine part file like its rows, and :func:`write_avro_file` writes the datums of every
block, in (input, record) order, as one Avro object container file whose bytes are exactly
what ``fastavro.writer`` writes for the same records (same header, same block boundaries).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import fastavro
import numpy as np
import pyarrow as pa

from ikou.kernels import _compute as ac
from ikou.kernels._decode_common import concat_runs, join_columns, numpy_to_arrow
from ikou.transforms import arrowio

if TYPE_CHECKING:
    from ikou.transforms.decode.records import Geometry

__all__ = [
    "QUARANTINE_PART_SCHEMA",
    "QuarantineBuilder",
    "SYNC_INTERVAL",
    "avro_header",
    "decode_datums",
    "encode_records",
    "read_part",
    "varints",
    "write_avro_file",
    "write_part",
]

#: fastavro's default: a block is closed after the record that brings it to >= this many bytes
SYNC_INTERVAL = 1000 * 16

QUARANTINE_PART_SCHEMA = pa.schema([
    pa.field("input", pa.int32(), nullable=False),
    pa.field("record", pa.int64(), nullable=False),
    pa.field("datum", pa.binary(), nullable=False),
])

_EMPTY = pa.scalar(b"", pa.binary())


# -- Avro binary encoding, column-wise -------------------------------------------------------

def varints(values) -> pa.Array:
    """Avro ``long`` encodings (zig-zag varints) of ``values`` as one binary array."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    u = ((v << 1) ^ (v >> 63)).view(np.uint64)
    if n and u.max() < 128:  # one byte each (lengths, counts, small numbers)
        return pa.Array.from_buffers(pa.binary(), n, [
            None, pa.py_buffer(np.arange(n + 1, dtype=np.int32)),
            pa.py_buffer(u.astype(np.uint8))])
    nbytes = np.ones(n, dtype=np.int64)
    for k in range(1, 10):
        nbytes += u >= np.uint64(1 << (7 * k))
    width = int(nbytes.max()) if n else 1
    mat = np.empty((n, width), dtype=np.uint8)
    for k in range(width):
        byte = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        mat[:, k] = byte | np.where(k < nbytes - 1, 0x80, 0).astype(np.uint8)
    data = mat[np.arange(width)[None, :] < nbytes[:, None]]  # row-major: each value's bytes
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(nbytes, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)])


def _as_binary(a: pa.Array) -> pa.Array:
    if a.type == pa.binary():
        return a
    return a.view(pa.binary()) if a.type == pa.string() else ac.cast(a, pa.binary())


def _long_or_varints(values: np.ndarray):
    """Avro longs of ``values``: one ``bytes`` constant when they are all equal."""
    v = np.asarray(values, dtype=np.int64)
    if len(v) and v.min() == v.max():
        return _long(int(v[0]))
    return varints(v)


def _string(a: pa.Array) -> list:
    """Avro ``string`` / ``bytes`` (no nulls): the length, then the bytes."""
    b = _as_binary(a)
    return [_long_or_varints(ac.binary_length(b).to_numpy(zero_copy_only=False)), b]


def _constant(a: pa.Array):
    """The single value of ``a`` (no nulls, one distinct value), else None."""
    if not len(a) or a.null_count:
        return None
    first = a[0]
    return first.as_py() if ac.all_(ac.equal(a, first)).as_py() else None


def _nullable_string(a: pa.Array) -> list:
    """Avro ``["null", "string"]``: index 0 for null, else 1, the length and the bytes."""
    if not a.null_count:
        value = _constant(a)
        if value is not None:
            raw = value.encode() if isinstance(value, str) else bytes(value)
            return [b"\x02" + _long(len(raw)) + raw]
        return [b"\x02", *_string(a)]
    null = ac.is_null(a)
    length, value = _string(ac.fill_null(_as_binary(a), _EMPTY))
    return [ac.if_else(null, pa.scalar(b"\x00", pa.binary()), pa.scalar(b"\x02", pa.binary())),
            ac.if_else(null, _EMPTY, length), value]


def _nullable_int(a: pa.Array) -> list:
    """Avro ``["null", "int"]``."""
    values = varints(ac.fill_null(a, 0).to_numpy(zero_copy_only=False).astype(np.int64))
    if not a.null_count:
        return [b"\x02", values]
    null = ac.is_null(a)
    return [ac.if_else(null, pa.scalar(b"\x00", pa.binary()), pa.scalar(b"\x02", pa.binary())),
            ac.if_else(null, _EMPTY, values)]


def encode_records(source: str, input_index: int, record: np.ndarray, offset: np.ndarray,
                   kind: pa.Array, raw: pa.Array, reason_counts: np.ndarray,
                   r_field: pa.Array, r_code: pa.Array, r_position: pa.Array,
                   r_message: pa.Array) -> pa.Array:
    """Avro binary datums of quarantined records (schema ``ikou.QuarantinedRecord``).

    Per record: ``record``, ``offset`` (int64), ``kind`` (string, null if unknown), ``raw``
    (binary) and ``reason_counts`` (how many reasons); the reasons' columns are flat, the
    records' reasons one after the other in record order.
    """
    n = len(record)
    src = source.encode()
    head = _long(len(src)) + src + _long(input_index)
    m = len(r_code)
    reasons = join_columns([*_nullable_string(r_field), *_string(r_code),
                            *_nullable_int(r_position), *_string(r_message)], n=m)
    counts = np.asarray(reason_counts, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    if m == n and (counts == 1).all():  # one reason each: the reasons are the items
        items = reasons
    else:
        items = concat_runs(reasons, offsets)  # each record's reasons, one after the other
    if (counts > 0).all():
        end = b"\x00"
    elif not counts.any():
        end = b""
    else:
        end = ac.if_else(numpy_to_arrow(counts > 0), pa.scalar(b"\x00", pa.binary()), _EMPTY)
    return join_columns([head, varints(record), varints(offset), *_nullable_string(kind),
                         *_string(raw), _long_or_varints(counts), items, end], n=n)


def decode_datums(datums: Iterable[bytes]) -> list[dict[str, Any]]:
    """The records (dicts, as ``fastavro`` reads them) of Avro datums."""
    from ikou.transforms.decode.outputs import _PARSED_SCHEMA

    return [cast("dict[str, Any]", fastavro.schemaless_reader(io.BytesIO(d), _PARSED_SCHEMA))
            for d in datums]


# -- one block's quarantined records --------------------------------------------------------

def _gather_rows(arr: np.ndarray, starts: np.ndarray, length: int) -> pa.Array:
    """``arr[s:s + length]`` for every start as a binary array (every slice within ``arr``)."""
    n = len(starts)
    if n == 0 or length == 0:
        return pa.array([b""] * n, pa.binary())
    rows = np.lib.stride_tricks.as_strided(arr, shape=(len(arr) - length + 1, length),
                                           strides=(1, 1), writeable=False)
    data = rows[starts]  # a copy of just these slices
    offsets = np.arange(n + 1, dtype=np.int32) * length
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)])


class QuarantineBuilder:
    """The quarantined records of one block, added in bulk, built once.

    ``add`` takes a chunk: local record indexes (distinct from every other chunk's), one kind
    for all of them (or an array of kinds), their raw bytes (a binary array) and their reasons
    as flat columns with the number of reasons per record.  ``put`` adds one record with reason
    dicts (for the rare per-record cases: a truncated fragment, rows a mapper rejects).
    """

    def __init__(self, source: str, input_index: int, first_record: int, start_offset: int,
                 stride: int):
        self.source = source
        self.input_index = input_index
        self.first_record = first_record
        self.start_offset = start_offset
        self.stride = stride
        self._chunks: list[dict[str, Any]] = []
        self._single: list[tuple[int, str | None, bytes, list]] = []
        #: V / VB blocks: where each record lies (``ikou.transforms.decode.records.Geometry``:
        #: raw bytes and file offset per local record); None: records on a grid of ``stride``
        self.geometry: Geometry | None = None

    def add(self, local: np.ndarray, kind, raw: pa.Array, counts: np.ndarray,
            field: pa.Array, code: pa.Array, position: pa.Array, message: pa.Array) -> None:
        local = np.asarray(local, dtype=np.int64)
        if not len(local):
            return
        if kind is None or isinstance(kind, str):
            kind = pa.array([kind] * len(local), pa.string())
        self._chunks.append({"local": local, "kind": kind, "raw": raw,
                             "counts": np.asarray(counts, dtype=np.int64), "field": field,
                             "code": code, "position": position, "message": message})

    def add_rows(self, arr: np.ndarray, starts: np.ndarray, local: np.ndarray, length: int,
                 kind, counts, field, code, position, message) -> None:
        """Like :meth:`add`, the raw bytes being ``length`` bytes at each record's start."""
        local = np.asarray(local, dtype=np.int64)
        raw = (self.geometry.raw(local) if self.geometry is not None
               else _gather_rows(arr, starts[local], length))
        self.add(local, kind, raw, counts, field, code, position, message)

    def put(self, local: int, kind: str | None, raw: bytes | None,
            reasons: Sequence[dict]) -> None:
        """One record; ``raw`` None: its bytes from the block's geometry (V / VB)."""
        if raw is None:
            assert self.geometry is not None, "a record without bytes outside a V / VB block"
            raw = self.geometry.raw_one(int(local))
        self._single.append((int(local), kind, bytes(raw), list(reasons)))

    def _single_chunk(self) -> dict[str, Any] | None:
        if not self._single:
            return None
        reasons = [r for s in self._single for r in s[3]]
        return {
            "local": np.array([s[0] for s in self._single], dtype=np.int64),
            "kind": pa.array([s[1] for s in self._single], pa.string()),
            "raw": pa.array([s[2] for s in self._single], pa.binary()),
            "counts": np.array([len(s[3]) for s in self._single], dtype=np.int64),
            "field": pa.array([r.get("field") for r in reasons], pa.string()),
            "code": pa.array([r["code"] for r in reasons], pa.string()),
            "position": pa.array([r.get("position") for r in reasons], pa.int32()),
            "message": pa.array([r["message"] for r in reasons], pa.string()),
        }

    def __len__(self) -> int:
        return sum(len(c["local"]) for c in self._chunks) + len(self._single)

    def build(self) -> tuple[pa.Table, dict[str, int], dict[str, int]]:
        """(the table ``input, record, datum`` sorted by record, records by kind ("" for
        unknown), records by code (a record counted once per distinct code))."""
        chunks = list(self._chunks)
        single = self._single_chunk()
        if single is not None:
            chunks.append(single)
        if not chunks:
            return QUARANTINE_PART_SCHEMA.empty_table(), {}, {}
        local = np.concatenate([c["local"] for c in chunks])
        counts = np.concatenate([c["counts"] for c in chunks])
        kind = pa.concat_arrays([c["kind"] for c in chunks])
        raw = pa.concat_arrays([c["raw"] for c in chunks])
        cols = {k: pa.concat_arrays([ac.cast(c[k], t) for c in chunks]) for k, t in (
            ("field", pa.string()), ("code", pa.string()), ("position", pa.int32()),
            ("message", pa.string()))}
        # records in record order; each record's reasons stay together, in their order
        order = np.argsort(local, kind="stable")
        if (np.diff(local[order]) == 0).any():
            raise ValueError("a record was quarantined twice")
        if (np.diff(order) < 0).any():  # chunks interleave: bring records into order
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            owner = np.repeat(np.arange(len(local)), counts)
            r_order = np.argsort(rank[owner], kind="stable")
            take = numpy_to_arrow(order)
            r_take = numpy_to_arrow(r_order)
            local, counts = local[order], counts[order]
            kind, raw = ac.take(kind, take), ac.take(raw, take)
            cols = {k: ac.take(v, r_take) for k, v in cols.items()}
        record = self.first_record + local + 1
        offset = (self.geometry.file_offset[local] if self.geometry is not None
                  else self.start_offset + local * self.stride)
        datum = encode_records(self.source, self.input_index, record, offset, kind, raw,
                               counts, cols["field"], cols["code"], cols["position"],
                               cols["message"])
        table = pa.Table.from_arrays(
            [numpy_to_arrow(np.full(len(record), self.input_index, dtype=np.int32)),
             numpy_to_arrow(record), datum], schema=QUARANTINE_PART_SCHEMA)
        by_kind = _value_counts(ac.fill_null(kind, ""))
        # a record counted once per distinct code among its reasons
        owner_sorted = np.repeat(np.arange(len(local)), counts)
        code_idx = ac.dictionary_encode(cols["code"])
        names = code_idx.dictionary.to_pylist()
        ids = code_idx.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        seen = np.zeros((len(local), max(1, len(names))), dtype=bool)
        seen[owner_sorted, ids] = True
        per_code = seen.sum(axis=0)
        by_code = {names[i]: int(per_code[i]) for i in np.argsort(names) if per_code[i]}
        return table, by_kind, by_code


def _value_counts(a: pa.Array) -> dict[str, int]:
    if len(a) and a.null_count == 0 and ac.all_(ac.equal(a, a[0])).as_py():
        return {a[0].as_py(): len(a)}
    vc = ac.value_counts(a)
    out = dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
    return {k: int(out[k]) for k in sorted(out)}


# -- part files and the container file -------------------------------------------------------

def write_part(path: str, table: pa.Table) -> str:
    """Write a block's quarantine table as an Arrow IPC file (atomically); returns ``path``."""
    return arrowio.write_file(path, table, QUARANTINE_PART_SCHEMA)


def read_part(path: str) -> pa.Table:
    return arrowio.read_table(path, memory_map=False)


def avro_header(schema, sync_marker: bytes) -> bytes:
    """The container file's header, as ``fastavro.writer`` writes it for ``schema``."""
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [], codec="null", sync_marker=sync_marker)
    return buf.getvalue()


def _long(v: int) -> bytes:
    """One Avro ``long`` (zig-zag varint); per container block, not per record."""
    u = (v << 1) ^ (v >> 63)
    out = bytearray()
    while u > 0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def _binary_parts(arr: pa.Array) -> tuple[np.ndarray, memoryview]:
    """(sizes, the bytes of every value one after the other) of a binary array without nulls."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.type == pa.large_binary():
        arr = ac.cast(arr, pa.binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64), memoryview(b"")
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset:arr.offset + n + 1].astype(
        np.int64)
    data = memoryview(bufs[2])[offsets[0]:offsets[-1]]
    return np.diff(offsets), data


def write_avro_file(datum_arrays: Iterable[pa.Array], out, schema, sync_marker: bytes,
                    sync_interval: int = SYNC_INTERVAL) -> int:
    """Write the datums (binary arrays, in order) as one Avro container file (codec null) to
    the binary file object ``out``; returns the number of records.

    Blocks end where ``fastavro.writer`` ends them: after the record that brings the block to
    ``sync_interval`` bytes or more (and at the end), so the bytes equal fastavro's.
    """
    out.write(avro_header(schema, sync_marker))
    total = 0
    cur_count, cur_bytes, cur_pieces = 0, 0, []

    buffered: list = []

    def dump(count, size, pieces):
        buffered.append(_long(count) + _long(size))
        buffered.extend(pieces)
        buffered.append(sync_marker)
        if len(buffered) > 256:
            out.write(b"".join(buffered))
            buffered.clear()

    for arr in datum_arrays:
        sizes, data = _binary_parts(arr)
        n = len(sizes)
        if not n:
            continue
        total += n
        prefix = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=prefix[1:])
        start = 0
        while start < n:
            target = sync_interval - cur_bytes + prefix[start]
            k = max(int(np.searchsorted(prefix, target, side="left")), start + 1)
            if k > n:  # the block goes on in the next array
                cur_pieces.append(data[prefix[start]:prefix[n]])
                cur_count += n - start
                cur_bytes += int(prefix[n] - prefix[start])
                break
            cur_pieces.append(data[prefix[start]:prefix[k]])
            dump(cur_count + k - start, cur_bytes + int(prefix[k] - prefix[start]), cur_pieces)
            cur_count, cur_bytes, cur_pieces = 0, 0, []
            start = k
    if cur_count:
        dump(cur_count, cur_bytes, cur_pieces)
    out.write(b"".join(buffered))
    return total
