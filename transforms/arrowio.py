"""Arrow IPC files by path, the one reader and writer of ikou's staged, part and output files.

Reading: a local file is memory-mapped (zero copy: columns are views of the page cache, so a
large staged file costs no heap); a path with a URL scheme (``s3://``, ``gs://``) is read
through :mod:`ikou.transforms.fileio` (Beam's file systems, imported only then).

Writing is atomic: the batches go to ``PATH.tmp`` (streamed to disk when local, buffered for an
object store), renamed to ``PATH`` only when the file is complete, so a reader (or a retried
bundle) never sees half a file, and a reader's memory map of the old file stays valid.  The
bytes depend only on the schema and the batches written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import pyarrow as pa

from ikou.transforms import fileio

__all__ = ["open_reader", "read_table", "write_file", "writer"]


def open_reader(path: str | os.PathLike,
                memory_map: bool = True) -> pa.ipc.RecordBatchFileReader:
    """An Arrow IPC file reader over ``path`` (memory-mapped when local, unless ``memory_map``
    is false: then read into memory, for small files deleted soon after, whose maps would
    otherwise keep their file system busy until garbage collection)."""
    path = os.fspath(path)
    if fileio.is_url(path) or not memory_map:
        return pa.ipc.open_file(pa.py_buffer(fileio.read_bytes(path)))
    return pa.ipc.open_file(pa.memory_map(path))


def read_table(path: str | os.PathLike, columns: list[str] | None = None,
               memory_map: bool = True) -> pa.Table:
    """The whole table of an Arrow IPC file (only ``columns`` when given)."""
    table = open_reader(path, memory_map).read_all()
    return table.select(columns) if columns is not None else table


@contextlib.contextmanager
def writer(path: str | os.PathLike, schema: pa.Schema) -> Iterator[pa.ipc.RecordBatchFileWriter]:
    """An IPC file writer whose file appears at ``path`` when the ``with`` block ends without an
    error (nothing appears otherwise); a missing local folder is created."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    if fileio.is_url(path):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, schema) as w:
            yield w
        fileio.write_atomic(path, sink.getvalue().to_pybytes())
        return
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    try:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, schema) as w:
            yield w
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_file(path: str | os.PathLike,
               data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
               schema: pa.Schema | None = None) -> str:
    """Write a table (its chunks as batches), a batch, or batches (``schema`` needed) as one
    IPC file at ``path``, atomically; returns ``path``."""
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        schema = schema or data.schema
    elif schema is None:
        raise TypeError("write_file: batches need a schema")
    with writer(path, schema) as w:
        if isinstance(data, pa.Table):
            w.write_table(data)
        elif isinstance(data, pa.RecordBatch):
            w.write_batch(data)
        else:
            for batch in data:
                w.write_batch(batch)
    return os.fspath(path)
