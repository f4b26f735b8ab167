"""The one place Arrow IPC files are read and written.

- :func:`read_table` / :func:`open_reader`: a local file is memory-mapped (zero copy: columns are
  views of the page cache, so a large staged file costs no heap); a path with a URL scheme
  (``s3://``, ``gs://``) is read through Beam's file systems, imported only then.
- :func:`write_table`: record batches of at most ``batch_rows`` rows (so a reader can stream
  them), written to a temporary name and renamed into place, so a reader never sees half a file.
  The bytes depend only on the table (its values and chunks) and ``batch_rows``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

__all__ = ["DEFAULT_BATCH_ROWS", "is_remote", "open_reader", "read_table", "write_table"]

DEFAULT_BATCH_ROWS = 65536


def is_remote(path: str | os.PathLike) -> bool:
    return "://" in os.fspath(path)


def open_reader(path: str | os.PathLike) -> pa.ipc.RecordBatchFileReader:
    """An Arrow IPC file reader over ``path`` (memory-mapped when local)."""
    path = os.fspath(path)
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return pa.ipc.open_file(pa.py_buffer(f.read()))
    return pa.ipc.open_file(pa.memory_map(path))


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The whole table of an Arrow IPC file (only ``columns`` when given)."""
    table = open_reader(path).read_all()
    return table.select(columns) if columns is not None else table


def write_table(table: pa.Table, path: str | os.PathLike,
                batch_rows: int = DEFAULT_BATCH_ROWS) -> int:
    """Write ``table`` as an Arrow IPC file at ``path`` atomically; returns the rows written."""
    path = os.fspath(path)
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        sink = pa.BufferOutputStream()
        _write(table, sink, batch_rows)
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(sink.getvalue().to_pybytes())
        return table.num_rows
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with pa.OSFile(tmp, "wb") as sink:
        _write(table, sink, batch_rows)
    os.replace(tmp, path)
    return table.num_rows


def _write(table: pa.Table, sink, batch_rows: int) -> None:
    with pa.ipc.new_file(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
