"""Reading and writing files by path: local paths with ``os``, URLs through Beam.

A path with a URL scheme (``s3://``, ``gs://``, ``hdfs://``, ...) goes through Beam's
``FileSystems``, imported only then: decoding local files (``ikou decode``) never imports
Apache Beam.  Local paths behave as ``FileSystems`` would treat them.
"""

from __future__ import annotations

import os
import re

__all__ = ["copy_file", "create", "delete", "delete_under", "exists", "is_url", "join", "listing",
           "match", "open_read", "read_bytes", "rename", "set_options", "size", "write_atomic",
           "write_bytes"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path) -> bool:
    return bool(_SCHEME.match(str(path)))


def _fs():
    from apache_beam.io.filesystems import FileSystems

    if not _S3_REUSE:
        _reuse_s3_clients()
    return FileSystems


_S3_REUSE: list = []


def _reuse_s3_clients() -> None:
    """Beam's S3 file system makes a new boto3 client (a new session, its service models parsed
    again: about half a second) for every call, so a run's few hundred calls (inputs, parts,
    merging, publishing) spent most of their time there.  One client per thread and per set of
    S3 options is kept instead: a client's only state is its current download stream, which it
    checks against each request, so calls made one after the other may share it."""
    import threading

    _S3_REUSE.append(True)
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # no boto3: no S3 file system to speed up
        return
    made = boto3_client.Client
    local = threading.local()

    def client(options):
        from apache_beam.options import pipeline_options

        if isinstance(options, pipeline_options.PipelineOptions):
            o = options.view_as(pipeline_options.S3Options).get_all_options()
        else:
            o = dict(options)
        key = tuple(sorted((k, repr(v)) for k, v in o.items() if k.startswith("s3_")))
        cache = local.__dict__.setdefault("clients", {})
        if key not in cache:
            cache[key] = made(options=options)
        return cache[key]

    boto3_client.Client = client  # type: ignore[misc, assignment]  # Beam's class, patched


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
    """Write ``data`` to ``path`` whole or not at all (a retried bundle replaces the file with
    the same bytes): locally through a temporary file and a rename; on an object store with one
    upload, which becomes visible only when complete (a rename there is a copy and a delete)."""
    if is_url(path):
        write_bytes(path, data)
        return
    tmp = path + ".tmp"
    write_bytes(tmp, data)
    rename(tmp, path)


def set_options(beam_args) -> None:
    """Tell Beam's file systems the run's options (``--s3_endpoint_url``, credentials, ...) for
    the reads and writes the driver makes outside a pipeline (hashing inputs, publishing)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    _fs().set_options(PipelineOptions(list(beam_args)))


def match(pattern: str) -> list[tuple[str, int]]:
    """(path, size) of the files a pattern (``*``, ``?``; ``**`` across folders) matches,
    sorted by path; ``[]`` when none."""
    if not is_url(pattern):
        import glob

        return [(p, os.path.getsize(p)) for p in sorted(glob.glob(pattern, recursive=True))
                if os.path.isfile(p)]
    from apache_beam.io.filesystem import BeamIOError

    try:
        found = _fs().match([pattern])[0].metadata_list
    except BeamIOError:
        return []
    return sorted((m.path, m.size_in_bytes) for m in found)


def listing(folder: str) -> list[str]:
    """Every file under ``folder`` (recursively), sorted."""
    return [p for p, _ in match(join(folder, "**"))] if is_url(folder) else sorted(
        os.path.join(d, n) for d, _, files in os.walk(folder) for n in files)


def delete_under(folder: str) -> list[str]:
    """Delete every file under ``folder`` (on an object store: every object with that prefix);
    returns what was deleted."""
    paths = listing(folder)
    if paths and is_url(folder):
        _fs().delete(paths)
    elif not is_url(folder):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return paths


def copy_file(src: str, dst: str, chunk: int = 8 * 1024 * 1024) -> None:
    """Copy one file between any two file systems (local or Beam's), streaming."""
    with open_read(src) as r, create(dst) as w:
        while True:
            b = r.read(chunk)
            if not b:
                break
            w.write(b)
