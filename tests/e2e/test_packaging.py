"""Packaging: what Beam's ``--setup_file`` does for Dataflow workers, offline. Beam's stager
builds the sdist (``python -m build --no-isolation --sdist``, as the driver does); a fresh
virtualenv that sees the project's site-packages through a ``.pth`` file (so nothing is
downloaded) installs it with ``pip install --no-deps --no-build-isolation --no-index``, as a
worker does, which compiles the kernels from the shipped C sources; the compiled kernel then
loads from that virtualenv.

Compiling three kernels at -O3 costs about a minute of CPU, more than the test budget of
``make test`` allows: this test runs with ``make test-packaging`` (``IKOU_TEST_PACKAGING=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.environ.get("IKOU_TEST_PACKAGING") != "1",
                                reason="slow: make test-packaging")


def test_setup_file_installs_and_compiles_the_kernels_in_a_fresh_virtualenv(tmp_path):
    from apache_beam.runners.portability.stager import Stager

    sdist = Path(Stager._build_setup_package(str(ROOT / "setup.py"), str(tmp_path)))
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("kernels/_decode.c") for n in names)  # no Cython needed on workers
    assert not any(n.endswith(".so") for n in names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "project-venv.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", str(sdist)], check=True, cwd=tmp_path)
    got = subprocess.run([str(py), "-c", "import ikou.kernels as k, ikou.kernels._decode as d;"
                          " print(k.KERNEL_IMPL, d.CYTHON_MODULE, d.__file__)"],
                         check=True, capture_output=True, text=True, cwd=tmp_path)
    impl, marker, path = got.stdout.split()
    assert impl == "compiled" and marker == "1"
    assert path.startswith(site.stdout.strip()) and path.endswith(".so")
