"""Apache Flink for real (opt-in: ``make test-flink``; ``make test`` never downloads): Beam's
``FlinkRunner`` with ``--flink_master=[local]`` (an embedded Flink cluster inside Beam's Flink
job server) runs the small town's job and publishes the same bytes as the FnApiRunner.

The job-server jar is fetched once from Maven Central into ``~/.cache/ikou/flink`` (or
``IKOU_FLINK_JAR`` names a jar already on disk). Pinned: ``beam-runners-flink-2.2-job-server``
at the installed apache-beam version (2.77.0): Beam's Python SDK talks to a job server of its
own version, and 2.2 is the Flink version Beam 2.77 defaults to (``--flink_version``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from conftest import SMALL_BLOCK, output_digests

pytestmark = pytest.mark.skipif(os.environ.get("IKOU_TEST_FLINK") != "1",
                                reason="opt-in: make test-flink (downloads the job server)")

FLINK_VERSION = "2.2"
MAVEN = "https://repo1.maven.org/maven2/org/apache/beam"


def job_server_jar() -> Path:
    if os.environ.get("IKOU_FLINK_JAR"):
        return Path(os.environ["IKOU_FLINK_JAR"])
    beam = metadata.version("apache-beam")
    name = f"beam-runners-flink-{FLINK_VERSION}-job-server"
    jar = Path.home() / ".cache" / "ikou" / "flink" / f"{name}-{beam}.jar"
    if not jar.exists():
        url = f"{MAVEN}/{name}/{beam}/{name}-{beam}.jar"
        jar.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=600) as r, open(f"{jar}.part", "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
        except urllib.error.HTTPError as e:
            pytest.fail(f"Maven Central did not serve {url}: HTTP {e.code}", pytrace=False)
        os.replace(f"{jar}.part", jar)
    return jar


def test_flink_publishes_the_same_bytes(small_town, small_reference, tmp_path):
    from ikou.pipeline.run.job import run_job

    jar = job_server_jar()
    _, reference = small_reference
    out = tmp_path / "flink"
    run_job(small_town / "job.yaml", out, data_docs=False, block_size=SMALL_BLOCK, beam_args=[
        "--runner=FlinkRunner", "--flink_master=[local]", f"--flink_version={FLINK_VERSION}",
        f"--flink_job_server_jar={jar}", "--environment_type=LOOPBACK", "--parallelism=2"])
    m = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["runner"]["runner"] == "FlinkRunner"
    assert output_digests(m) == output_digests(reference)
