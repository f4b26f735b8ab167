"""The same job on four Beam engines publishes byte-identical outputs (the manifests' sha256):

1. FnApiRunner in process (the default);
2. ``DirectRunner`` with ``multi_processing`` and 2 worker processes (mapped to the FnApiRunner
   with the pipeline options in its provision info);
3. ``PortableRunner`` with ``job_endpoint=embed`` and ``LOOPBACK`` workers (the portable job API
   of Flink and Dataflow's runner v2);
4. the same against Beam's job service over gRPC, started and stopped by the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SMALL_BLOCK, free_port, output_digests, stop, wait_for_port

from ikou.pipeline.run.job import run_job


def _run(town, out, args):
    run_job(town / "job.yaml", out, beam_args=args, data_docs=False, block_size=SMALL_BLOCK)
    return json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))


def test_four_engines_publish_the_same_bytes(small_town, small_reference, tmp_path):
    _, reference = small_reference
    want = output_digests(reference)
    assert len(want) >= 10 and any(n.startswith("match/") for n in want)
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        engines = {
            "multi_processing": ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                 "--direct_num_workers=2"],
            "portable_embed": ["--runner=PortableRunner", "--job_endpoint=embed",
                               "--environment_type=LOOPBACK"],
        }
        got = {name: _run(small_town, tmp_path / name, args) for name, args in engines.items()}
        wait_for_port(port, service)
        got["job_service"] = _run(small_town, tmp_path / "job_service", [
            "--runner=PortableRunner", f"--job_endpoint=127.0.0.1:{port}",
            "--environment_type=LOOPBACK"])
    finally:
        stop(service)
    assert got["multi_processing"]["runner"]["direct_running_mode"] == "multi_processing"
    assert got["portable_embed"]["runner"]["runner"] == "PortableRunner"
    for name, manifest in got.items():
        assert output_digests(manifest) == want, name
        # the counters reach the manifest on every engine
        assert manifest["runner"]["metrics"] == reference["runner"]["metrics"], name
