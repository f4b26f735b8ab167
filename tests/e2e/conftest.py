"""Fixtures shared by the engine, object-store, crash and bad-input tests: one small generated
town (fixed seed) and its job published once by the in-process FnApiRunner, the reference
every other run is compared with."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL_RESIDENTS = 200
SMALL_SEED = 43
SMALL_BLOCK = 20000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen) -> None:
    """End a server the test started, by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def output_digests(manifest: dict) -> dict[str, str]:
    return {o["name"]: o["sha256"] for o in manifest["outputs"]}


def ikou_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ikou.pipeline.cli", *args]


@pytest.fixture(scope="session")
def small_town(tmp_path_factory) -> Path:
    """``ikou generate`` of a small town with every source, mappings, matching and job.yaml."""
    from ikou.pipeline.cli import main

    out = tmp_path_factory.mktemp("small-town") / "town"
    assert main(["generate", "--residents", str(SMALL_RESIDENTS), "--seed", str(SMALL_SEED),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def small_reference(small_town, tmp_path_factory):
    """The small town's job run once on the in-process FnApiRunner: (out folder, manifest)."""
    from ikou.pipeline.run.job import run_job

    out = tmp_path_factory.mktemp("small-ref") / "out"
    r = run_job(small_town / "job.yaml", out, data_docs=False, block_size=SMALL_BLOCK)
    manifest = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["runner"]["runner"] == "FnApiRunner" and r.report.passed
    return out, manifest


def environ(**extra: str) -> dict[str, str]:
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", PYTHONHASHSEED="0")
    env.update(extra)
    return env
