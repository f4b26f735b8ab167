"""Crash safety with real processes: ``ikou run`` is SIGKILLed while it decodes, merges, matches,
runs its gates and publishes (each moment reached deterministically through the run's pause
points, :mod:`ikou.transforms.pause`). Afterwards ``current`` is the previous release (or absent),
complete and matching its manifest; a rerun removes what the killed run left, reports it, and
publishes the same bytes as an uninterrupted run beside the previous release."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SMALL_BLOCK, environ, ikou_command, output_digests

from ikou.pipeline.config.job import JobError
from ikou.pipeline.run.job import run_job
from ikou.pipeline.steps.publish import LOCK, lock_output, read_current
from ikou.transforms.pause import MOMENTS

#: moment -> whether the output folder already holds a finished release
PREVIOUS = {"decode": False, "merge": True, "matching": True, "gates": True, "publish": True}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def killed(small_town, small_reference, tmp_path_factory):
    """One output folder per moment, its run killed there: moment -> (folder, previous)."""
    ref_out, _ = small_reference
    base = tmp_path_factory.mktemp("crash")
    procs, folders = {}, {}
    for moment in MOMENTS:
        out = base / moment
        if PREVIOUS[moment]:
            shutil.copytree(ref_out, out, symlinks=True)
        markers = base / f"markers-{moment}"
        markers.mkdir()
        folders[moment] = (out, markers)
        procs[moment] = subprocess.Popen(
            ikou_command("run", str(small_town / "job.yaml"), "--out", str(out),
                         "--block_size", str(SMALL_BLOCK)),
            env=environ(IKOU_PAUSE_AT=moment, IKOU_PAUSE_DIR=str(markers)),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        for moment, proc in procs.items():
            marker = folders[moment][1] / moment
            while not marker.exists() or not marker.read_text():
                assert proc.poll() is None, (moment, proc.stderr.read().decode())
                assert time.monotonic() < deadline, f"the run never reached {moment}"
                time.sleep(0.05)
            pid = int(marker.read_text())
            assert pid == proc.pid  # the pause is in the job's own process
            os.kill(pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
    return {m: (out, PREVIOUS[m]) for m, (out, _) in folders.items()}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_killed_run_leaves_the_previous_release_whole(killed, small_reference, moment):
    out, had_previous = killed[moment]
    ref_out, reference = small_reference
    found = read_current(out)  # a reader: complete and verified, or nothing
    if not had_previous:
        assert found is None
        return
    release, manifest = found
    assert Path(release).name == reference["job"]["run_id"]
    assert output_digests(manifest) == output_digests(reference)
    assert _files(Path(release)) == _files(ref_out / "current")
    assert not any(n.endswith(".tmp") for n in _files(Path(release)))


@pytest.mark.parametrize("moment", ["decode", "publish"])
def test_a_rerun_cleans_up_and_publishes_the_same_bytes(killed, small_town, small_reference,
                                                       moment):
    out, had_previous = killed[moment]
    _, reference = small_reference
    left = {str(p.relative_to(out)) for p in (out / "releases").iterdir()
            if p.name != reference["job"]["run_id"]}
    assert left  # the killed run left its staging (or its renamed release) behind
    lines = []
    result = run_job(small_town / "job.yaml", out, data_docs=False, block_size=SMALL_BLOCK,
                     echo=lines.append)
    assert sorted(result.manifest["stale_removed"]) == sorted(left)
    assert any(ln.startswith("removed what an interrupted run left") for ln in lines)
    release, manifest = read_current(out)
    assert output_digests(manifest) == output_digests(reference)
    names = sorted(p.name for p in (out / "releases").iterdir())
    if had_previous:  # the finished release stays beside the new one; current moved
        assert names == sorted([reference["job"]["run_id"], result.manifest["job"]["run_id"]])
    else:
        assert names == [result.manifest["job"]["run_id"]]
    # published files and the run's records are readable by their owner only
    for root in (Path(release), result.run_dir):
        for p in [root, *root.rglob("*")]:
            want = 0o700 if p.is_dir() else 0o600
            assert stat.S_IMODE(p.stat().st_mode) == want, p


def test_one_run_at_a_time_per_output_folder(small_town, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    with lock_output(out), pytest.raises(JobError, match="another ikou run is using"):
        run_job(small_town / "job.yaml", out, data_docs=False)
    assert (out / LOCK).exists() and not (out / "current").exists()
