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
from importlib import metadata
from typing import Any

__all__ = ["MANIFEST_FILE", "file_digest", "machine", "versions", "write_manifest"]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 3  # every manifest: "kind" job (jobs and single-layout runs) or match


def file_digest(path: str, chunk: int = 4 * 1024 * 1024) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a local file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
            size += len(b)
    return h.hexdigest(), size


def _dist_version(name: str) -> str | None:
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


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` atomically (temporary file, then rename)."""
    path = os.path.join(out_dir, MANIFEST_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
