"""Publishing a release atomically.

Output folder (see docs/jobs.md)::

    OUT/current -> releases/<run id>        the published set: a symlink, swapped atomically
    OUT/releases/<run id>/                  the outputs, quarantine.avro, manifest.json
    OUT/releases/.staging-<run id>/         while the run stages (removed unless published)
    OUT/runs/<run id>/                      summary.json, gates.json, validations/, data_docs/,
                                            manifest.json (also for runs that published nothing)

Publishing renames the staging folder to ``releases/<run id>`` (invisible to readers, who go
through ``current``) and then replaces the symlink ``current`` with ``os.replace`` of a new
symlink: a reader that resolves ``current`` once sees either the old set or the new one, never a
mix. The previous release is kept (readers still inside it keep working); older ones are removed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

__all__ = ["CURRENT", "KEEP_RELEASES", "RELEASES", "RUNS", "new_run_id", "publish_release"]

CURRENT = "current"
RELEASES = "releases"
RUNS = "runs"
KEEP_RELEASES = 2


def new_run_id() -> str:
    """A run id from the wall clock (UTC, nanoseconds): sortable, unique per run."""
    ns = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def publish_release(staging: Path, out_dir: Path, run_id: str) -> Path:
    """Rename ``staging`` to ``releases/<run_id>`` and point ``current`` at it (one
    ``os.replace`` of a symlink); older releases but the previous one are removed."""
    releases = out_dir / RELEASES
    release = releases / run_id
    os.rename(staging, release)
    link = out_dir / CURRENT
    tmp = out_dir / f".{CURRENT}.{run_id}.tmp"
    os.symlink(os.path.join(RELEASES, run_id), tmp)
    os.replace(tmp, link)  # the publishing step: atomic on POSIX
    keep = {run_id}
    older = sorted((p for p in releases.iterdir() if not p.name.startswith(".")
                    and p.name != run_id), key=lambda p: p.name, reverse=True)
    keep.update(p.name for p in older[:KEEP_RELEASES - 1])
    for p in older:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    return release
