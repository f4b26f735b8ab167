"""The gates in their own process: same report as in process, errors come back as themselves,
the parent never imports Great Expectations, and a worker that is not asked ends cleanly."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from test_gates import bad_outputs, good_outputs, stage

from ikou.pipeline.steps.gate_report import GateError
from ikou.pipeline.steps.gate_worker import GateWorker


def _comparable(report) -> dict:
    d = report.to_dict()
    for key in ("seconds", "timings", "data_docs", "analytics"):
        d.pop(key, None)
    for g in d["gates"].values():
        g.pop("seconds", None)
        g.pop("results_file", None)
    return d


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tables, _failing, _planted, _stranger = bad_outputs(good_outputs())
    staged = stage(tmp_path_factory.mktemp("gw") / "staging", tables)
    rows = {k: v.num_rows for k, v in tables.items() if k != "jutogai"}
    return staged, rows


def test_the_worker_reports_what_the_gates_report_in_process(planted, tmp_path):
    from ikou.pipeline.steps.gates import run_gates

    staged, expected = planted
    here = run_gates(staged, tmp_path / "here", mode="fail", expected_rows=expected,
                     data_docs=False)
    there = GateWorker().run(staged=staged, run_dir=tmp_path / "there", mode="fail",
                             expected_rows=expected, data_docs=False)
    assert not there.passed and there.failed == here.failed  # the planted failures: found
    assert _comparable(there) == _comparable(here)
    assert dataclasses.is_dataclass(there) and type(there).__module__.endswith("gate_report")


def test_an_error_in_the_worker_is_raised_as_itself(tmp_path):
    with pytest.raises(GateError, match="gates mode must be one of fail, warn"):
        GateWorker().run(staged={}, run_dir=tmp_path, mode="sometimes")


def test_the_parent_never_imports_great_expectations(planted, tmp_path):
    staged, expected = planted
    probe = f"""
import sys
from ikou.pipeline.steps.gate_worker import GateWorker
report = GateWorker().run(staged={dict((k, str(v)) for k, v in staged.items())!r},
                          run_dir={str(tmp_path)!r}, mode="warn", expected_rows={expected!r},
                          data_docs=False)
print("GX", "great_expectations" in sys.modules, "PUBLISH", report.publish)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "GX False PUBLISH True" in out.stdout


def test_a_worker_never_asked_ends_with_the_run():
    worker = GateWorker()
    proc = worker._proc
    worker.close()
    assert proc.poll() is not None  # ended, not orphaned
    worker.close()  # twice is harmless


def test_a_process_that_has_gx_already_runs_the_gates_itself(planted, tmp_path):
    import ikou.pipeline.steps.gates  # noqa: F401 - Great Expectations is now imported
    from ikou.pipeline.steps import gate_worker

    runner = gate_worker.take()
    assert isinstance(runner, gate_worker.InProcess)
    staged, rows = planted
    report = runner.run(staged=staged, run_dir=tmp_path, mode="warn", expected_rows=rows,
                        data_docs=False)
    assert report.publish and not report.passed
