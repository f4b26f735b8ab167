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

from ikou.transforms import fileio
from ikou.transforms.pause import pause_point

__all__ = ["CURRENT", "CURRENT_POINTER", "KEEP_RELEASES", "LOCK", "RELEASES", "RUNS",
           "ObjectStoreOutput", "OutputBusy", "ReleaseError",
           "clean_stale", "lock_output", "new_run_id", "publish_release", "read_current",
           "restrict"]

CURRENT = "current"
RELEASES = "releases"
RUNS = "runs"
KEEP_RELEASES = 2
LOCK = ".ikou.lock"
#: On an object store: the pointer object naming the published release, written last.
CURRENT_POINTER = "CURRENT"
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


#: Files of a release that are not outputs: the manifest itself, and the run report built from it
#: (it shows the manifest's figures, so the manifest cannot name its digest).
RELEASE_DOCUMENTS = frozenset({"manifest.json", "report.html"})


class ReleaseError(RuntimeError):
    """A published release that does not match its manifest."""


def read_current(out_dir: str | os.PathLike, verify: bool = True) -> tuple[str, dict] | None:
    """What a reader does: resolve ``OUT/current`` once and read the release's manifest;
    ``None`` when nothing is published. With ``verify`` every output the manifest names is
    checked (size and sha256) and a file the manifest does not name (other than the manifest and
    ``report.html``) is refused: the caller gets
    a complete release or :class:`ReleaseError`, never a mix. Returns (release folder, manifest).
    """
    import hashlib
    import json

    if fileio.is_url(out_dir):
        return _read_current_remote(str(out_dir).rstrip("/"), verify)
    link = Path(out_dir) / CURRENT
    if not link.is_symlink():
        return None
    release = os.path.realpath(link)
    with open(os.path.join(release, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    if verify:
        named = {o["name"] for o in manifest["outputs"]}
        found = {os.path.relpath(os.path.join(d, n), release)
                 for d, _, files in os.walk(release) for n in files} - RELEASE_DOCUMENTS
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


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with fileio.open_read(path) as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_current_remote(root: str, verify: bool) -> tuple[str, dict] | None:
    import json

    pointer = fileio.join(root, CURRENT_POINTER)
    if not fileio.exists(pointer):
        return None
    head = json.loads(fileio.read_bytes(pointer))
    release = fileio.join(root, head["release"])
    mpath = fileio.join(release, "manifest.json")
    data = fileio.read_bytes(mpath)
    import hashlib

    if hashlib.sha256(data).hexdigest() != head["manifest_sha256"]:
        raise ReleaseError(f"{mpath}: sha256 differs from {pointer}")
    manifest = json.loads(data)
    if verify:
        prefix = release.rstrip("/") + "/"
        found = {p[len(prefix):] for p in fileio.listing(release)} - RELEASE_DOCUMENTS
        named = {o["name"] for o in manifest["outputs"]}
        if found != named:
            raise ReleaseError(f"{release}: files {sorted(found ^ named)} do not match the "
                               "manifest")
        for o in manifest["outputs"]:
            if _sha256(fileio.join(release, o["name"])) != o["sha256"]:
                raise ReleaseError(f"{release}: {o['name']}: sha256 differs from the manifest")
    return release, manifest


class ObjectStoreOutput:
    """The output folder on an object store (``s3://``, ``gs://``: any of Beam's file
    systems), where there is no atomic rename or symlink. The protocol:

    1. the pipeline stages under ``OUT/releases/.staging-<run id>/`` (parts, merged outputs);
    2. the merged outputs are fetched to a local scratch folder for the steps that read them in
       place (matching, gates, digests) — :meth:`fetch_staged`;
    3. the finished release is uploaded to ``OUT/releases/<run id>/``, its ``manifest.json``
       (every output with size and sha256) last;
    4. then ``OUT/CURRENT``, one small object ``{"run_id", "release", "manifest_sha256"}``, is
       written: a single PUT, which object stores make visible whole or not at all. That write
       is the publication;
    5. releases but the new one and the previous one are deleted, and the staging prefix.

    A reader reads ``CURRENT`` once, then the manifest it names (checking its sha256), then
    the files (checking theirs): :func:`read_current`. A run killed at any moment leaves
    ``CURRENT`` naming the previous, complete release; the next run deletes the staging prefix
    and any release newer than ``CURRENT`` (uploaded, never published) and reports them.
    """

    def __init__(self, root: str):
        self.root = root.rstrip("/")

    def _join(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def staging(self, run_id: str) -> str:
        return self._join(RELEASES, f"{STAGING_PREFIX}{run_id}")

    def run_dir(self, run_id: str) -> str:
        return self._join(RUNS, run_id)

    def current_run_id(self) -> str | None:
        import json

        pointer = self._join(CURRENT_POINTER)
        return json.loads(fileio.read_bytes(pointer))["run_id"] if fileio.exists(pointer) \
            else None

    def _releases(self) -> dict[str, list[str]]:
        prefix = self._join(RELEASES) + "/"
        by_name: dict[str, list[str]] = {}
        for p in fileio.listing(self._join(RELEASES)):
            by_name.setdefault(p[len(prefix):].split("/", 1)[0], []).append(p)
        return by_name

    def clean_stale(self) -> list[str]:
        current = self.current_run_id()
        removed = []
        for name, paths in sorted(self._releases().items()):
            if name.startswith(STAGING_PREFIX) or current is None or name > current:
                fileio._fs().delete(paths)
                removed.append(f"{RELEASES}/{name}")
        return removed

    def fetch_staged(self, remote_staging: str, summary: dict, local: Path) -> dict:
        """Copy the merged outputs and the summary to ``local``; the summary's paths then name
        the local copies."""
        prefix = remote_staging.rstrip("/") + "/"
        for path in fileio.listing(remote_staging):
            rel = path[len(prefix):]
            if rel.startswith("parts/"):
                continue
            fileio.copy_file(path, str(local / rel))

        def relocate(node):
            if isinstance(node, dict):
                return {k: relocate(v) for k, v in node.items()}
            if isinstance(node, list):
                return [relocate(v) for v in node]
            if isinstance(node, str) and node.startswith(prefix):
                return str(local / node[len(prefix):])
            return node

        return relocate(summary)

    def publish(self, local_release: Path, run_id: str) -> str:
        import json

        release = self._join(RELEASES, run_id)
        files = sorted(str(p.relative_to(local_release)) for p in local_release.rglob("*")
                       if p.is_file())
        files.remove("manifest.json")
        for rel in [*files, "manifest.json"]:  # the manifest last
            fileio.copy_file(str(local_release / rel), fileio.join(release, rel))
        pause_point("publish")
        previous = self.current_run_id()
        head = {"run_id": run_id, "release": f"{RELEASES}/{run_id}",
                "manifest_sha256": _sha256(str(local_release / "manifest.json"))}
        fileio.write_bytes(self._join(CURRENT_POINTER),
                           json.dumps(head, indent=1).encode() + b"\n")  # the publication
        keep = {run_id, previous}
        for name, paths in self._releases().items():
            if name not in keep and not name.startswith(STAGING_PREFIX):
                fileio._fs().delete(paths)
        return release

    def upload_run(self, local_run: Path, run_id: str) -> None:
        if not local_run.is_dir():
            return
        for p in sorted(local_run.rglob("*")):
            if p.is_file():
                fileio.copy_file(str(p), fileio.join(self.run_dir(run_id),
                                                     str(p.relative_to(local_run))))
