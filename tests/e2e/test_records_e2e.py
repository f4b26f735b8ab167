"""A VB export through ``ikou run --layout`` (Beam, FnApiRunner), ``ikou decode`` and a job.

One Beam run; the job's per-block decode-and-map step runs in process on the same file.
"""

import os
import struct

import pyarrow as pa
import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.config.job import load_job, write_demo_job
from ikou.pipeline.run.job import steps_for
from ikou.pipeline.synth.municipality import generate_municipality
from ikou.pipeline.synth.records import convert_export
from ikou.transforms.decode.blocks import plan_blocks
from ikou.transforms.decode.sources import MappingBlockDecoder


@pytest.fixture(scope="module")
def vb_town(tmp_path_factory):
    out = tmp_path_factory.mktemp("vbtown")
    gen = generate_municipality(out, 150, 20260502)
    write_demo_job(out, gen.sources)
    convert_export(gen.export, gen.layout, "VB")
    data = bytearray(open(gen.export, "rb").read())
    # one data record of the first block cut inside its address (SHORT_FIELD, quarantined)
    pos = 4
    for _ in range(3):
        pos += struct.unpack(">H", data[pos:pos + 2])[0]
    length = struct.unpack(">H", data[pos:pos + 2])[0]
    assert length > 160
    cut = length - 154  # payload of 150 bytes: the address (bytes 118-237) is cut
    data[pos:pos + 2] = struct.pack(">H", 154)
    del data[pos + 154:pos + 154 + cut]
    data[0:2] = struct.pack(">H", struct.unpack(">H", data[0:2])[0] - cut)  # its BDW
    open(gen.export, "wb").write(bytes(data))
    return out, gen


def test_run_layout_on_beam_equals_ikou_decode(vb_town, tmp_path, capsys):
    out, gen = vb_town
    common = ["--layout", str(gen.layout), "--gaiji", str(gen.gaiji)]
    assert main(["decode", str(gen.export), *common, "--out", str(tmp_path / "d.arrow"),
                 "--rejects", str(tmp_path / "d.avro"), "--block-size", "7000"]) == 0
    assert main(["run", *common, "--out", str(tmp_path / "run"), "--block-size", "3000",
                 "--no-progress", str(gen.export)]) == 0
    current = tmp_path / "run" / "current"
    assert (current / "juki.arrow").read_bytes() == (tmp_path / "d.arrow").read_bytes()
    assert (current / "quarantine.avro").read_bytes() == (tmp_path / "d.avro").read_bytes()
    table = pa.ipc.open_file(str(tmp_path / "d.arrow")).read_all()
    assert table.num_rows == 149
    capsys.readouterr()


def test_a_job_source_in_vb_is_decoded_and_mapped(vb_town, tmp_path):
    out, gen = vb_town
    job = load_job(out / "job.yaml")
    (step,) = [s for s in steps_for(job) if s.name == "juki"]
    assert step.layout.record_format == "VB" and step.mapper is not None
    dec = MappingBlockDecoder(step.layout, step.gaiji, str(tmp_path), step.mapper)
    blocks = plan_blocks(0, str(gen.export), os.path.getsize(gen.export), step.layout, 5000)
    results = [dec.decode(b) for b in blocks]
    assert len(results) >= 2  # cut at BDW boundaries (blocks of 32,760 bytes)
    assert sum(r.rows.get("data", 0) for r in results) == 149
    (q,) = [q for r in results for q in r.quarantined]
    assert [x["code"] for x in q["reasons"]] == ["SHORT_FIELD"]
    assert q["record"] == 4 and len(q["raw"]) == 154
    mapped = pa.ipc.open_file(results[0].parts["data"]).read_all()
    assert mapped.num_rows > 0 and mapped.schema == step.mapper.schema


def test_a_whole_job_with_a_vb_source_publishes(vb_town, tmp_path, capsys):
    """``ikou run JOB.yaml`` (Beam, mapping, matching, gates, publish) with the 住民記録 source
    in VB: every record published or quarantined, the manifest naming its record format."""
    import json

    out, gen = vb_town
    assert main(["run", str(out / "job.yaml"), "--out", str(tmp_path / "job"),
                 "--gates", "warn", "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "job" / "current" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert '"VB"' in text
    juki = pa.ipc.open_file(str(tmp_path / "job" / "current" / "juki.arrow")).read_all()
    assert juki.num_rows == 149
    capsys.readouterr()
