"""Reading and writing files by path: local paths with ``os``, URLs through Beam.

A path with a URL scheme (``s3://``, ``gs://``, ``hdfs://``, ...) goes through Beam's
``FileSystems``, imported only then: decoding local files (``ikou decode``) never imports
Apache Beam.  Local paths behave as ``FileSystems`` would treat them.
"""

from __future__ import annotations

import os
import re

__all__ = ["create", "delete", "exists", "is_url", "join", "open_read", "read_bytes",
           "rename", "size", "write_atomic", "write_bytes"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path) -> bool:
    return bool(_SCHEME.match(str(path)))


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _uncompressed():
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED


def join(base: str, *parts: str) -> str:
    if is_url(base):
        return _fs().join(base, *parts)
    return os.path.join(base, *parts)


def size(path: str) -> int:
    if is_url(path):
        return _fs().match([path])[0].metadata_list[0].size_in_bytes
    return os.path.getsize(path)


def open_read(path: str):
    if is_url(path):
        return _fs().open(path, compression_type=_uncompressed())
    return open(path, "rb")


def create(path: str):
    """A binary file open for writing (local: its folder is created if missing)."""
    if is_url(path):
        return _fs().create(path, compression_type=_uncompressed())
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    return open(path, "wb")


def exists(path: str) -> bool:
    return _fs().exists(path) if is_url(path) else os.path.exists(path)


def delete(path: str) -> None:
    if is_url(path):
        _fs().delete([path])
    else:
        os.remove(path)


def rename(src: str, dst: str) -> None:
    if is_url(src) or is_url(dst):
        _fs().rename([src], [dst])
    else:
        os.replace(src, dst)


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    with create(path) as f:
        f.write(data)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (a retried bundle
    replaces the file with the same bytes)."""
    tmp = path + ".tmp"
    write_bytes(tmp, data)
    if is_url(path) and exists(path):
        delete(path)
    rename(tmp, path)
