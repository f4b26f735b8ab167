"""Progress on the terminal: shown on a terminal (a pty), quiet otherwise, nothing personal."""

from __future__ import annotations

import io
import os
import pty
import re

from conftest import personal_values

from ikou.pipeline.run.progress import (
    NullProgress,
    RunProgress,
    StageProgress,
    planned_blocks,
    progress_wanted,
)


def test_run_progress_on_a_terminal(report_run):
    out = report_run.progress_output
    assert "decode + map" in out
    assert re.search(r"\d[\d.]* ?[kM]?B/s", out), out[-500:]  # bytes per second
    assert "left" in out and "records" in out
    records = report_run.result.manifest["records"]
    assert f"{records:,}/{records:,} records" in out  # every block seen
    for stage in ("matching", "gates", "publish"):
        assert stage in out
    leaked = [v for v in personal_values(report_run.input_dir) if v in out]
    assert not leaked


def test_quiet_when_not_a_terminal():
    assert not progress_wanted(stream=io.StringIO())
    with open(os.devnull, "w") as f:
        assert not progress_wanted(stream=f)
    r, w = os.pipe()
    with os.fdopen(w, "w") as f:
        assert not progress_wanted(stream=f)
    os.close(r)


def test_wanted_on_a_terminal_unless_switched_off(monkeypatch):
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as f:
            assert progress_wanted(stream=f)
            assert not progress_wanted(True, stream=f)  # --no-progress
            monkeypatch.setenv("IKOU_NO_PROGRESS", "1")
            assert not progress_wanted(stream=f)
    finally:
        os.close(master)


def test_cli_shows_no_progress_when_captured(report_run, capfd):
    """``ikou generate`` with its output captured (not a terminal) prints its lines only."""
    from ikou.pipeline.cli import main

    out = report_run.workdir / "gen-quiet"
    assert main(["generate", "--residents", "50", "--seed", "3", "--out", str(out),
                 "--sources", "juki"]) == 0
    captured = capfd.readouterr()
    assert "ikou generate: 50 residents" in captured.out
    assert "\r" not in captured.err and "generate:" not in captured.err


def test_stage_progress_writes_stage_names():
    buf = io.StringIO()
    bar = StageProgress("match", stream=buf)
    bar.stage("linking")
    bar.close()
    assert "match: linking" in buf.getvalue()
    NullProgress().stage("nothing")  # the default of library calls: silent


def test_planned_blocks_cover_every_input(report_run):
    from ikou.pipeline.config.job import load_job
    from ikou.pipeline.run.job import steps_for

    job = load_job(report_run.input_dir / "job.yaml")
    inputs = [str(p.absolute()) for _, p in job.inputs]
    blocks, total_bytes, total_records = planned_blocks(steps_for(job), inputs, 64 * 1024)
    assert total_bytes == sum(os.path.getsize(p) for p in inputs)
    assert total_records == report_run.result.manifest["records"]
    assert len(blocks) > len(inputs)  # several blocks per large input at 64 KiB
    assert isinstance(RunProgress(), NullProgress)
