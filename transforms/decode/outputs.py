"""Gathering block results into the run's outputs, usable with or without Beam.

:func:`finalize_results` sorts the :class:`~ikou.transforms.decode.blocks.BlockResult`s
by (input, block), merges the part files of every row kind into one Arrow IPC
*file* (re-chunked to a fixed batch size, so the bytes do not depend on the
block size or on which worker decoded what), writes ``quarantine.avro`` sorted
by (input, record) with a fixed sync marker from the blocks' quarantine parts (their records'
Avro datums, one after the other: no per-record work here), and returns a JSON-able summary.
Local paths need no Apache Beam (:mod:`ikou.transforms.fileio`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import fastavro
import pyarrow as pa

from ikou.transforms import arrowio, fileio
from ikou.transforms.decode.blocks import (
    HEADER,
    TRAILER,
    BlockResult,
    data_kinds,
    output_name,
    row_schema,
)
from ikou.transforms.decode.protocols import LayoutLike
from ikou.transforms.decode.quarantine import write_avro_file

__all__ = [
    "OUTPUT_BATCH_ROWS",
    "QUARANTINE_FILE",
    "QUARANTINE_SCHEMA",
    "SUMMARY_FILE",
    "finalize_results",
    "RowWriter",
    "merge_parts",
    "quarantine_datums",
    "quarantine_sync_marker",
    "read_summary",
    "summarize",
    "write_quarantine",
]

OUTPUT_BATCH_ROWS = 65536
QUARANTINE_FILE = "quarantine.avro"
SUMMARY_FILE = "summary.json"

QUARANTINE_SCHEMA = {
    "type": "record",
    "name": "QuarantinedRecord",
    "namespace": "ikou",
    "doc": "A legacy record that could not be migrated, with its raw bytes and every reason.",
    "fields": [
        {"name": "source", "type": "string", "doc": "input file name"},
        {"name": "input", "type": "int", "doc": "0-based index of the input in the run"},
        {"name": "record", "type": "long", "doc": "1-based record number in the file"},
        {"name": "offset", "type": "long", "doc": "byte offset of the record in the file"},
        {"name": "kind", "type": ["null", "string"], "doc": "record kind, null if unknown"},
        {"name": "raw", "type": "bytes", "doc": "the record's bytes as read"},
        {"name": "reasons", "type": {"type": "array", "items": {
            "type": "record", "name": "Reason", "fields": [
                {"name": "field", "type": ["null", "string"]},
                {"name": "code", "type": "string"},
                {"name": "position", "type": ["null", "int"]},
                {"name": "message", "type": "string"},
            ]}}},
    ],
}
_PARSED_SCHEMA = fastavro.parse_schema(QUARANTINE_SCHEMA)


def quarantine_sync_marker(input_digests: Sequence[str]) -> bytes:
    """16 bytes derived from the inputs' sha256 digests (hex), in input order."""
    h = hashlib.sha256(b"ikou quarantine.avro\0")
    for d in input_digests:
        h.update(bytes.fromhex(d))
    return h.digest()[:16]


def _write_bytes(path: str, data: bytes) -> None:
    fileio.write_bytes(path, data)


def _read_bytes(path: str) -> bytes:
    return fileio.read_bytes(path)


class RowWriter:
    """Rows of one output, written to an Arrow IPC file as they come, in batches of exactly
    ``batch_rows`` (the last one shorter), so that the file's bytes depend only on the rows
    and not on how they arrived (blocks of any size, parts or batches in memory).

    A context manager: the file appears at ``out_path`` when the ``with`` block ends without an
    error, and nothing appears otherwise; ``rows`` counts what was added."""

    def __init__(self, out_path: str, schema: pa.Schema, batch_rows: int = OUTPUT_BATCH_ROWS):
        self.out_path = out_path
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._cm: Any = None  # the IPC writer's context manager and writer, from __enter__
        self._writer: Any = None

    def __enter__(self) -> RowWriter:
        self._cm = arrowio.writer(self.out_path, self.schema)
        self._writer = self._cm.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self._flush(final=True)
            except BaseException as err:  # noqa: BLE001 - the file must not appear
                self._cm.__exit__(type(err), err, err.__traceback__)
                raise
        self._pending = []
        return self._cm.__exit__(exc_type, exc, tb)

    def add(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows (a record batch or a table of the output's columns)."""
        for b in ([data] if isinstance(data, pa.RecordBatch) else data.to_batches()):
            if b.num_rows == 0:
                continue
            self._pending.append(pa.RecordBatch.from_arrays(b.columns, schema=self.schema))
            self._pending_rows += b.num_rows
            self.rows += b.num_rows
            if self._pending_rows >= self.batch_rows:
                self._flush(final=False)

    def add_part(self, path: str) -> None:
        """Append the rows of a part file (read into memory: parts are deleted soon after)."""
        reader = arrowio.open_reader(path, memory_map=False)
        for i in range(reader.num_record_batches):
            self.add(reader.get_batch(i))

    def _flush(self, final: bool) -> None:
        # Exactly batch_rows per written batch; concat_arrays copies the slices into
        # compact buffers (a slice would carry its parent's whole data buffer).
        batch_rows, schema = self.batch_rows, self.schema
        while self._pending_rows >= batch_rows or (final and self._pending_rows):
            take = min(batch_rows, self._pending_rows)
            pieces, rest, need = [], [], take
            for b in self._pending:
                if need >= b.num_rows:
                    pieces.append(b)
                    need -= b.num_rows
                elif need > 0:
                    pieces.append(b.slice(0, need))
                    rest.append(b.slice(need))
                    need = 0
                else:
                    rest.append(b)
            columns = [pa.concat_arrays([p.column(j) for p in pieces])
                       for j in range(len(schema))]
            self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
            self._pending, self._pending_rows = rest, self._pending_rows - take


def merge_parts(part_paths: Iterable[str | pa.RecordBatch | pa.Table], schema: pa.Schema,
                out_path: str, batch_rows: int = OUTPUT_BATCH_ROWS) -> int:
    """Concatenate part files (in the given order) into one IPC file; returns rows.

    A part may also be rows in memory (a record batch or table) instead of a file's path.
    Rows are re-chunked into batches of exactly ``batch_rows`` (:class:`RowWriter`).
    """
    with RowWriter(out_path, schema, batch_rows) as out:
        for part in part_paths:
            if isinstance(part, (pa.RecordBatch, pa.Table)):
                out.add(part)
            else:
                out.add_part(part)
    return out.rows


def quarantine_datums(results: Iterable[BlockResult]) -> Iterator[pa.Array]:
    """The Avro datums of the results' quarantined records, block after block in (input,
    block) order: that is (input, record) order, blocks being consecutive record ranges."""
    for r in sorted(results, key=lambda r: r.sort_key):
        if not r.n_quarantined:
            continue
        table = r.quarantine_table()
        if table is None or table.num_rows != r.n_quarantined:
            raise ValueError(f"{r.source}: block {r.block_index} reports {r.n_quarantined} "
                             "quarantined records, its quarantine part holds "
                             f"{0 if table is None else table.num_rows}")
        yield table.column("datum").combine_chunks()


def write_quarantine(records: Iterable[dict[str, Any]] | Iterable[BlockResult],
                     out_path: str, sync_marker: bytes) -> int:
    """Write ``quarantine.avro`` sorted by (input, record); returns the count.

    ``records``: block results (their quarantine parts, written in bulk), or quarantined
    records as dicts (encoded one by one with fastavro; the file's bytes are the same).
    """
    items: list[Any] = list(records)
    if items and not isinstance(items[0], BlockResult):
        recs = sorted(items, key=lambda r: (r["input"], r["record"]))
        buf = io.BytesIO()
        fastavro.writer(buf, _PARSED_SCHEMA, recs, codec="null", sync_marker=sync_marker,
                        validator=True)
        _write_bytes(out_path, buf.getvalue())
        return len(recs)
    with fileio.create(out_path) as f:
        return write_avro_file(quarantine_datums(items), f, _PARSED_SCHEMA, sync_marker)


def summarize(layout: LayoutLike, results: Sequence[BlockResult]) -> dict[str, Any]:
    """Counts per input and overall, from sorted block results (JSON-able)."""
    row_kinds = data_kinds(layout)
    inputs: dict[int, dict[str, Any]] = {}
    for r in results:
        s = inputs.setdefault(r.input_index, {
            "index": r.input_index, "path": r.path, "source": r.source, "blocks": 0,
            "records": 0, "bytes_read": 0, "records_by_kind": {}, "rows": {},
            "quarantined": 0, "quarantined_by_kind": {}, "quarantined_by_code": {},
            "tolerated_by_code": {}, "headers": [], "trailers": [], "seconds": {},
            "gaiji": {},
        })
        s["blocks"] += 1
        s["records"] += r.n_records
        s["bytes_read"] += r.bytes_read
        for d_name, d in (("records_by_kind", r.counts), ("rows", r.rows),
                          ("quarantined_by_kind", r.quarantined_by_kind),
                          ("quarantined_by_code", r.quarantined_by_code),
                          ("tolerated_by_code", r.tolerated_by_code),
                          ("gaiji", r.gaiji), ("seconds", r.seconds)):
            for k, v in d.items():
                s[d_name][k] = s[d_name].get(k, 0) + v
        s["quarantined"] += r.n_quarantined
        s["headers"].extend(r.headers)
        s["trailers"].extend(r.trailers)
    for s in inputs.values():
        s["data_records"] = sum(s["records_by_kind"].get(k, 0) for k in row_kinds)
        s["data_quarantined"] = sum(s["quarantined_by_kind"].get(k, 0) for k in row_kinds)
        s["rows_written"] = sum(s["rows"].get(k, 0) for k in row_kinds)
        for k in s:
            if isinstance(s[k], dict):
                s[k] = dict(sorted(s[k].items()))

    def total(key):
        out: dict[str, int] = {}
        for s in inputs.values():
            for k, v in s[key].items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items()))

    ordered = [inputs[i] for i in sorted(inputs)]
    return {
        "layout": layout.name,
        "inputs": ordered,
        "blocks": sum(s["blocks"] for s in ordered),
        "records": sum(s["records"] for s in ordered),
        "bytes_read": sum(s["bytes_read"] for s in ordered),
        "records_by_kind": total("records_by_kind"),
        "data_records": sum(s["data_records"] for s in ordered),
        "rows": total("rows"),
        "rows_written": sum(s["rows_written"] for s in ordered),
        "quarantined": sum(s["quarantined"] for s in ordered),
        "data_quarantined": sum(s["data_quarantined"] for s in ordered),
        "quarantined_by_kind": total("quarantined_by_kind"),
        "quarantined_by_code": total("quarantined_by_code"),
        "tolerated_by_code": total("tolerated_by_code"),
        "gaiji": total("gaiji"),  # 外字 codes seen: "F040 mapped" -> count
        "seconds": total("seconds"),  # summed over blocks (CPU time of all workers)
        "header_kind": HEADER in layout.kinds,
        "trailer_kind": TRAILER in layout.kinds,
        "outputs": {},
    }


def finalize_results(layout: LayoutLike, results: Iterable[BlockResult],
                     quarantined: Iterable[dict] | None, out_dir: str, sync_marker: bytes,
                     outputs: dict[str, str] | None = None,
                     quarantine_path: str | None = None,
                     batch_rows: int = OUTPUT_BATCH_ROWS,
                     written: dict[str, int] | None = None) -> dict[str, Any]:
    """Merge parts, write the quarantine and return (and store) the summary.

    The quarantined records come from the results' quarantine parts (or in-memory tables);
    ``quarantined`` (records as dicts) replaces them when given, for callers that built the
    records themselves (the bytes are the same).  Outputs go to
    ``out_dir`` unless ``outputs`` (kind -> path) / ``quarantine_path`` say
    otherwise; ``summary.json`` is always written to ``out_dir``.  ``written``: kind -> rows
    of the kinds whose output a :class:`RowWriter` wrote already (at ``outputs[kind]``) while
    the blocks were decoded.
    """
    ordered = sorted(results, key=lambda r: r.sort_key)
    summary = summarize(layout, ordered)
    for kind in data_kinds(layout):
        name = output_name(layout, kind)
        path = (outputs or {}).get(kind) or fileio.join(out_dir, name)
        if written is not None and kind in written:
            rows = written[kind]
        else:
            parts = [r.tables[kind] if kind in r.tables else r.parts[kind] for r in ordered
                     if kind in r.parts or kind in r.tables]
            rows = merge_parts(parts, row_schema(layout, kind), path, batch_rows)
        summary["outputs"][name] = {"path": path, "kind": kind, "rows": rows}
    qpath = quarantine_path or fileio.join(out_dir, QUARANTINE_FILE)
    n = write_quarantine(ordered if quarantined is None else quarantined, qpath, sync_marker)
    summary["outputs"][QUARANTINE_FILE] = {"path": qpath, "kind": None, "rows": n}
    _write_bytes(fileio.join(out_dir, SUMMARY_FILE),
                 json.dumps(summary, ensure_ascii=False, indent=1, sort_keys=True).encode())
    return summary


def read_summary(out_dir: str) -> dict[str, Any]:
    return json.loads(_read_bytes(fileio.join(out_dir, SUMMARY_FILE)))
