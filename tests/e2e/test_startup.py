"""Start-up: a command imports Beam and Great Expectations only when it runs them.

An import-time check, not a timed test: each command runs in a fresh interpreter, which then
reports whether the heavy libraries were loaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("apache_beam", "great_expectations")

_PROBE = """
import sys
from ikou.pipeline.cli import main
rc = main({argv!r})
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules), "RC", rc)
"""


def _loaded(argv: list[str]) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED")][-1]
    return eval(line.split(" ", 1)[1].rsplit(" RC", 1)[0]), proc.stderr  # a printed list


@pytest.mark.parametrize("argv", [
    ["--help"], ["--version"], ["generate", "--help"], ["decode", "--help"], ["run", "--help"],
    ["match", "--help"], ["demo", "--help"], ["layout", "import", "--help"],
])
def test_help_imports_neither_beam_nor_gx(argv):
    loaded, _ = _loaded(argv)
    assert loaded == [], f"ikou {' '.join(argv)} imported {loaded}"


def test_generate_imports_neither_beam_nor_gx(tmp_path):
    loaded, _ = _loaded(["generate", "--residents", "20", "--seed", "1", "--out",
                         str(tmp_path)])
    assert loaded == []


def test_layout_import_imports_neither_beam_nor_gx(tmp_path):
    book = tmp_path / "rec.cpy"
    book.write_text("       01  REC.\n           05  A  PIC X(4).\n           05  B  PIC S9(5) COMP-3.\n")
    loaded, _ = _loaded(["layout", "import", str(book), "--out", str(tmp_path / "rec.yaml")])
    assert loaded == [] and (tmp_path / "rec.yaml").is_file()


def test_a_refused_option_is_caught_before_gx_is_imported(tmp_path):
    loaded, err = _loaded(["run", str(tmp_path / "job.yaml"), "--no-such-flag"])
    assert "great_expectations" not in loaded and "unknown option --no-such-flag" in err
    assert "apitools" not in err  # Beam's import-time warning never reaches the terminal
