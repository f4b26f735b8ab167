"""``manifest.json``: what a run read, wrote, checked, how long it took, with what.

The manifest is written last, after every output is in place, so its presence
means the run's outputs are complete.  It holds counts, digests and names of
files only: never a decoded value.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from typing import Any

__all__ = ["MANIFEST_FILE", "BackgroundDigests", "build_manifest", "describe_file", "file_digest",
           "machine", "versions", "write_manifest"]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 3  # every manifest: "kind" job (jobs and single-layout runs) or match


def file_digest(path: str, chunk: int = 4 * 1024 * 1024) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file (local, or on a Beam file system)."""
    from ikou.transforms import fileio

    h = hashlib.sha256()
    size = 0
    with fileio.open_read(path) as f:
        if hasattr(f, "readinto"):  # one buffer, read into again and again
            buf = bytearray(chunk)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
                size += n
            return h.hexdigest(), size
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
            size += len(b)
    return h.hexdigest(), size


class BackgroundDigests:
    """:func:`file_digest` of several files, computed one after the other on a thread of its own
    (hashlib and file reads release the GIL), so a command hashes its inputs while it imports
    Beam or the kernels instead of after.  :meth:`result` waits for them and raises what the
    hashing raised."""

    def __init__(self, paths):
        import threading

        self.paths = [str(p) for p in paths]
        self._result: list[tuple[str, int]] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ikou-hash-inputs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = [file_digest(p) for p in self.paths]
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> list[tuple[str, int]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _dist_version(name: str) -> str | None:
    from importlib import metadata  # not on the path of ikou decode, which hashes its input here

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The machine a run ran on: system, processor, CPU count and memory (no host name)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {"system": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
            "cpus": os.cpu_count(), "memory_bytes": memory}


def versions() -> dict[str, Any]:
    """Versions of the interpreter, the libraries and the kernel implementation loaded."""
    try:
        from ikou.kernels import KERNEL_IMPL
    except ImportError:  # pragma: no cover - a broken build
        KERNEL_IMPL = None
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "apache_beam": _dist_version("apache-beam"),
        "pyarrow": _dist_version("pyarrow"),
        "fastavro": _dist_version("fastavro"),
        "numpy": _dist_version("numpy"),
        "ikou": _dist_version("ikou"),
        "kernel_impl": KERNEL_IMPL,
    }


def describe_file(file: str, **facts: Any) -> dict[str, Any]:
    """An input's or output's entry: ``facts`` (name, rows, ...) with the sha256 and size of
    ``file``."""
    digest, size = file_digest(file)
    return {**facts, "sha256": digest, "size": size}


def build_manifest(kind: str, body: dict[str, Any], timings: dict[str, float],
                   runner: dict[str, Any] | None, **after_timings: Any) -> dict[str, Any]:
    """Every manifest's shape (jobs, single-layout runs and ``ikou match``): its version and
    ``kind`` ("job" or "match"), the run's own sections (``body``), the stage timings in seconds,
    any sections that read them (``after_timings``: the stage table, the throughput), then the
    runner, the machine and the versions of everything that ran."""
    return {"manifest_version": MANIFEST_VERSION, "kind": kind, **body,
            "timings": {k: round(v, 3) for k, v in timings.items()}, **after_timings,
            "runner": runner, "machine": machine(), "versions": versions()}


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` atomically (temporary file, then rename)."""
    path = os.path.join(out_dir, MANIFEST_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
