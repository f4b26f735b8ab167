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

__all__ = ["MANIFEST_FILE", "build_manifest", "file_digest", "versions", "write_manifest"]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 3  # one schema for every run (jobs and single-layout runs)


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


def build_manifest(*, layout, summary: dict[str, Any], inputs: list[dict[str, Any]],
                   outputs: list[dict[str, Any]], checks: dict[str, Any],
                   timings: dict[str, float], runner: dict[str, Any]) -> dict[str, Any]:
    """Assemble the manifest document.

    ``inputs``: per input ``path``, ``sha256``, ``size``; ``outputs``: per file
    ``name``, ``sha256``, ``size``, ``rows``; ``checks``: the reconciliation;
    ``timings``: seconds per phase (``pipeline`` is used for throughput).
    """
    by_index = {s["index"]: s for s in summary["inputs"]}
    ins = []
    for i, info in enumerate(inputs):
        s = by_index.get(i, {})
        ins.append({
            "path": info["path"],
            "name": os.path.basename(info["path"]),
            "sha256": info["sha256"],
            "size": info["size"],
            "records": s.get("records", 0),
            "records_by_kind": s.get("records_by_kind", {}),
            "rows_written": s.get("rows_written", 0),
            "quarantined": s.get("quarantined", 0),
            "quarantined_by_code": s.get("quarantined_by_code", {}),
            "blocks": s.get("blocks", 0),
            # decoded header / trailer fields (団体コード, 作成日, 合計件数…: no personal data)
            "header": (s.get("headers") or [{}])[0].get("values"),
            "trailer": (s.get("trailers") or [{}])[0].get("values"),
        })
    total_bytes = sum(i["size"] for i in inputs)
    seconds = timings.get("pipeline") or 0.0
    throughput = {
        "bytes": total_bytes,
        "seconds": round(seconds, 3),
        "mb_per_s": round(total_bytes / 1e6 / seconds, 3) if seconds > 0 else None,
        "records_per_s": round(summary["records"] / seconds, 1) if seconds > 0 else None,
    }
    return {
        "manifest_version": MANIFEST_VERSION,
        "layout": {"name": layout.name, "label": layout.label, "path": layout.path,
                   "record_length": layout.record_length},
        "inputs": ins,
        "records": summary["records"],
        "records_by_kind": summary["records_by_kind"],
        "data_records": summary["data_records"],
        "rows_written": summary["rows_written"],
        "quarantined": summary["quarantined"],
        "quarantined_by_code": summary["quarantined_by_code"],
        "quarantined_by_kind": summary["quarantined_by_kind"],
        # field errors a field's on_error policy tolerated (the value became null): rows kept
        "tolerated_by_code": summary.get("tolerated_by_code", {}),
        "checks": checks,
        "outputs": outputs,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "throughput": throughput,
        "runner": runner,
        "versions": versions(),
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
