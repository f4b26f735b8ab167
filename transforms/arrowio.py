"""Reading Arrow IPC files by path: a local file is memory-mapped (zero copy: columns are views
of the page cache, so a large staged file costs no heap); a path with a URL scheme (``s3://``,
``gs://``) is read through :mod:`ikou.transforms.fileio` (Beam's file systems, imported only
then).
"""

from __future__ import annotations

import os

import pyarrow as pa

from ikou.transforms import fileio

__all__ = ["open_reader", "read_table"]


def open_reader(path: str | os.PathLike) -> pa.ipc.RecordBatchFileReader:
    """An Arrow IPC file reader over ``path`` (memory-mapped when local)."""
    path = os.fspath(path)
    if fileio.is_url(path):
        return pa.ipc.open_file(pa.py_buffer(fileio.read_bytes(path)))
    return pa.ipc.open_file(pa.memory_map(path))


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The whole table of an Arrow IPC file (only ``columns`` when given)."""
    table = open_reader(path).read_all()
    return table.select(columns) if columns is not None else table
