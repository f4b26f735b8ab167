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

import contextlib
import fcntl
import os
import shutil
import time
from pathlib import Path

from ikou.transforms.pause import pause_point

__all__ = ["CURRENT", "KEEP_RELEASES", "LOCK", "RELEASES", "RUNS", "OutputBusy", "ReleaseError",
           "clean_stale", "lock_output", "new_run_id", "publish_release", "read_current",
           "restrict"]

CURRENT = "current"
RELEASES = "releases"
RUNS = "runs"
KEEP_RELEASES = 2
LOCK = ".ikou.lock"
STAGING_PREFIX = ".staging-"


class OutputBusy(RuntimeError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def lock_output(out_dir: Path):
    """Hold ``OUT/.ikou.lock`` (an advisory ``flock``, released by the kernel when the process
    ends, even by SIGKILL) for the whole run: one run at a time per output folder, so what the
    next run finds in staging is stale, never a live run's."""
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(f"another ikou run is using the output folder {out_dir}") from None
        yield
    finally:
        os.close(fd)


def _current_name(out_dir: Path) -> str | None:
    link = out_dir / CURRENT
    if not link.is_symlink():
        return None
    return os.path.basename(os.readlink(link))


def clean_stale(out_dir: Path) -> list[str]:
    """Remove what killed runs left (their staging folders, a release renamed but never made
    ``current``, a half-made ``current`` link) and return their names relative to ``OUT``.
    Finished releases (``current`` and the ones before it) are never touched."""
    releases = out_dir / RELEASES
    current = _current_name(out_dir)
    stale: list[Path] = sorted(out_dir.glob(f".{CURRENT}.*.tmp"))
    if releases.is_dir():
        for p in sorted(releases.iterdir()):
            if p.name.startswith(STAGING_PREFIX):
                stale.append(p)  # a run killed before publishing
            elif not p.name.startswith(".") and (current is None or p.name > current):
                stale.append(p)  # renamed into releases/ but killed before current moved
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return [str(p.relative_to(out_dir)) for p in stale]


def restrict(root: Path, file_mode: int = 0o600, folder_mode: int = 0o700) -> None:
    """Give ``root`` and everything under it the published permissions (owner only unless the
    job says otherwise)."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, folder_mode)
        for name in files:
            os.chmod(os.path.join(folder, name), file_mode)


def new_run_id() -> str:
    """A run id from the wall clock (UTC, nanoseconds): sortable, unique per run."""
    ns = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def publish_release(staging: Path, out_dir: Path, run_id: str) -> Path:
    """Rename ``staging`` to ``releases/<run_id>`` and point ``current`` at it (one
    ``os.replace`` of a symlink); older releases but the previous one (the release ``current``
    named until now) are removed. A finished release is never overwritten: every run publishes
    beside the others under its own run id."""
    releases = out_dir / RELEASES
    release = releases / run_id
    previous = _current_name(out_dir)
    if release.exists():
        raise FileExistsError(f"release {release} exists: a finished release is never replaced")
    os.rename(staging, release)
    pause_point("publish")
    link = out_dir / CURRENT
    tmp = out_dir / f".{CURRENT}.{run_id}.tmp"
    os.symlink(os.path.join(RELEASES, run_id), tmp)
    os.replace(tmp, link)  # the publishing step: atomic on POSIX
    older = sorted((p for p in releases.iterdir() if not p.name.startswith(".")
                    and p.name != run_id), key=lambda p: p.name, reverse=True)
    keep = {run_id, previous} if previous else {run_id}
    for p in older:
        if p.name not in keep and len(keep) < KEEP_RELEASES:
            keep.add(p.name)
    for p in older:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    return release


class ReleaseError(RuntimeError):
    """A published release that does not match its manifest."""


def read_current(out_dir: str | os.PathLike, verify: bool = True) -> tuple[str, dict] | None:
    """What a reader does: resolve ``OUT/current`` once and read the release's manifest;
    ``None`` when nothing is published. With ``verify`` every output the manifest names is
    checked (size and sha256) and a file the manifest does not name is refused: the caller gets
    a complete release or :class:`ReleaseError`, never a mix. Returns (release folder, manifest).
    """
    import hashlib
    import json

    link = Path(out_dir) / CURRENT
    if not link.is_symlink():
        return None
    release = os.path.realpath(link)
    with open(os.path.join(release, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    if verify:
        named = {o["name"] for o in manifest["outputs"]}
        found = {os.path.relpath(os.path.join(d, n), release)
                 for d, _, files in os.walk(release) for n in files} - {"manifest.json"}
        if found != named:
            raise ReleaseError(f"{release}: files {sorted(found ^ named)} do not match the "
                               "manifest")
        for o in manifest["outputs"]:
            h = hashlib.sha256()
            with open(os.path.join(release, o["name"]), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
            if h.hexdigest() != o["sha256"]:
                raise ReleaseError(f"{release}: {o['name']}: sha256 differs from the manifest")
    return release, manifest
