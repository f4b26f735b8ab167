"""The Beam pipeline end to end on a generated municipality (real runs, real files).

- decoded rows equal the generator's expected.jsonl field by field;
- every corrupt record is in quarantine.avro with its raw bytes and the expected reasons;
- counts reconcile and the manifest says so;
- outputs are byte-identical in-process and with 2 worker processes and another block size.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re

import apache_beam as beam
import fastavro
import pyarrow as pa
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ikou.pipeline.config.gaiji import load_gaiji
from ikou.pipeline.config.layout import load_layout
from ikou.pipeline.run.single import run_migration
from ikou.pipeline.synth.municipality import generate_municipality
from ikou.transforms.decode.blocks import data_kinds, output_name, plan_blocks
from ikou.transforms.decode.sources import DecodeMapBlocks, PlanJobBlocks, SourceStep

RESIDENTS = 1500
MESSAGE = re.compile(
    r"^(field [a-z_]+ \([a-z]+\): [A-Z_]+: [^\u3000-\u9fff]*(外字[^\u3000-\u9fff]*)*"
    r" at byte \d+( \((code|byte) 0x[0-9A-F]+\))?"
    r"|record of \d+ bytes at end of file, expected \d+)$")
SEED = 4242


@pytest.fixture(scope="module")
def municipality(tmp_path_factory):
    return generate_municipality(tmp_path_factory.mktemp("muni"), RESIDENTS, SEED,
                                 corrupt_share=0.02)


@pytest.fixture(scope="module")
def expected(municipality):
    with open(municipality.expected, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def inprocess(municipality, tmp_path_factory):
    out = tmp_path_factory.mktemp("inprocess")
    summary = run_migration(municipality.layout, municipality.gaiji, [municipality.export], out)
    return out / "current", summary


def inp_size(municipality):
    return municipality.export.stat().st_size


def _json_value(v):
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def _row_values(row, layout):
    out = {}
    for f in layout.kinds["data"].fields:
        if f.type == "filler":
            continue
        if f.type == "wareki":
            out[f.name] = {"date": _json_value(row[f.name]), "raw": row[f.name + "_raw"],
                           "status": row[f.name + "_status"]}
        else:
            out[f.name] = _json_value(row[f.name])
    return out


def test_rows_equal_the_expected_values_field_by_field(municipality, expected, inprocess):
    out, summary = inprocess
    layout = load_layout(municipality.layout)
    table = pa.ipc.open_file(out / "juki.arrow").read_all()
    rows = table.to_pylist()
    want = [e for e in expected if e["kind"] == "data" and e["fate"] == "row"]
    assert len(rows) == len(want) == summary.rows_written
    mismatches = []
    for row, e in zip(rows, want, strict=True):
        assert (row["_record"], row["_offset"], row["_source"]) == (
            e["record"], e["offset"], "juki.dat")
        got = _row_values(row, layout)
        for name, value in e["values"].items():
            if got[name] != value:
                mismatches.append((e["record"], name))  # record number and field only
    assert mismatches == []
    # some of every wareki status made it through (the generator deals them all)
    statuses = set(table.column("birth_status").to_pylist())
    assert statuses == {"valid", "out_of_era", "impossible", "unknown", "blank"}


def test_every_corrupt_record_is_quarantined_with_raw_bytes_and_reasons(
        municipality, expected, inprocess):
    out, summary = inprocess
    content = municipality.export.read_bytes()
    with open(out / "quarantine.avro", "rb") as f:
        got = {r["record"]: r for r in fastavro.reader(f)}
    want = {e["record"]: e for e in expected if e["fate"] == "quarantine"}
    assert sorted(got) == sorted(want)
    assert len(want) == municipality.quarantined == summary.quarantined
    for rno, e in want.items():
        r = got[rno]
        assert r["offset"] == e["offset"] and r["kind"] == e["kind"]
        assert r["source"] == "juki.dat" and r["input"] == 0
        assert r["raw"] == content[e["offset"]:e["offset"] + 320]
        assert {(x["field"], x["code"]) for x in r["reasons"]} == {
            (x["field"], x["code"]) for x in e["reasons"]}
        for x in r["reasons"]:  # field name, code, byte position and hex only
            assert MESSAGE.match(x["message"]), x["message"]
    codes = {}
    for e in want.values():
        for c in {x["code"] for x in e["reasons"]}:
            codes[c] = codes.get(c, 0) + 1
    assert summary.quarantined_by_code == dict(sorted(codes.items()))
    assert "TRUNCATED_RECORD" in codes and len(codes) >= 5


def test_counts_reconcile_and_the_manifest_describes_the_run(municipality, expected, inprocess):
    out, summary = inprocess
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    n_data = sum(1 for e in expected if e["kind"] == "data")
    assert m["records"] == len(expected) == municipality.records
    assert m["data_records"] == n_data == RESIDENTS
    assert m["rows_written"] + m["quarantined_by_kind"]["data"] == n_data
    assert m["records_by_kind"] == {"data": n_data, "header": 1, "trailer": 1}
    assert m["checks"]["ok"] is True
    trailer = m["checks"]["sources"]["juki"]["inputs"][0]["trailer"]
    assert trailer == {"found": 1, "quarantined": 0, "count": n_data, "expected": n_data,
                       "ok": True}
    (inp,) = m["inputs"]
    data = municipality.export.read_bytes()
    assert inp["sha256"] == hashlib.sha256(data).hexdigest() and inp["size"] == len(data)
    header = next(e for e in expected if e["kind"] == "header")
    assert inp["header"] == header["values"]
    outs = {o["name"]: o for o in m["outputs"]}
    assert set(outs) == {"juki.arrow", "quarantine.avro"}
    for name, o in outs.items():
        assert o["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert outs["juki.arrow"]["rows"] == m["rows_written"]
    assert outs["quarantine.avro"]["rows"] == m["quarantined"]
    assert m["throughput"]["mb_per_s"] > 0 and m["throughput"]["records_per_s"] > 0
    assert set(m["versions"]) >= {"python", "apache_beam", "pyarrow", "fastavro", "ikou",
                                  "kernel_impl"}
    assert m["runner"]["runner"] == "FnApiRunner"
    metrics = m["runner"]["metrics"]  # Beam's counters agree with the summary
    assert (metrics["records_read"], metrics["rows_written"], metrics["records_quarantined"]) == (
        m["records"], m["rows_written"], m["quarantined"])
    assert metrics["bytes_read"] == inp_size(municipality)
    # nothing but the outputs is left in the folder (no staging, no parts)
    assert sorted(p.name for p in out.iterdir()) == ["juki.arrow", "manifest.json",
                                                     "quarantine.avro", "report.html"]
    # no personal value in the manifest: no name of the export appears in it
    text = (out / "manifest.json").read_text(encoding="utf-8")
    first = next(e for e in expected if e["fate"] == "row" and e["kind"] == "data")
    assert first["values"]["name_kanji"] not in text
    assert first["values"]["atena_no"] not in text


@pytest.mark.slow
def test_two_worker_processes_and_small_blocks_give_identical_bytes(
        municipality, inprocess, tmp_path):
    out1, s1 = inprocess
    out2 = tmp_path / "mp"
    s2 = run_migration(
        municipality.layout, municipality.gaiji, [municipality.export], out2,
        ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"],
        block_size=64 * 1024)
    assert s2.manifest["runner"]["direct_num_workers"] == 2
    assert s2.manifest["runner"]["runner"] == "FnApiRunner"  # DirectRunner mapped: no Prism
    assert s2.manifest["inputs"][0]["blocks"] > 4 > s1.manifest["inputs"][0]["blocks"]
    for name in ("juki.arrow", "quarantine.avro"):
        assert (out1 / name).read_bytes() == (out2 / "current" / name).read_bytes(), name


def test_several_inputs_are_reconciled_one_by_one(municipality, tmp_path):
    # the same export under two names: two inputs, lineage tells them apart
    a = tmp_path / "a.dat"
    b = tmp_path / "b.dat"
    a.write_bytes(municipality.export.read_bytes())
    b.write_bytes(municipality.export.read_bytes())
    s = run_migration(municipality.layout, municipality.gaiji, [a, b], tmp_path / "out",
                      block_size=100_000)
    assert s.records == 2 * municipality.records
    t = pa.ipc.open_file(tmp_path / "out" / "current" / "juki.arrow").read_all()
    src = t.column("_source").to_pylist()
    n = len(src) // 2
    assert src == ["a.dat"] * n + ["b.dat"] * n
    assert t.column("_record").to_pylist()[:n] == t.column("_record").to_pylist()[n:]
    with open(tmp_path / "out" / "current" / "quarantine.avro", "rb") as f:
        q = list(fastavro.reader(f))
    assert [r["input"] for r in q] == [0] * (len(q) // 2) + [1] * (len(q) // 2)
    assert len(s.checks["sources"]["juki"]["inputs"]) == 2


def test_plan_and_decode_composites_in_a_test_pipeline(municipality, tmp_path):
    layout = load_layout(municipality.layout)
    gaiji = load_gaiji(municipality.gaiji)
    path = str(municipality.export)
    size = municipality.export.stat().st_size
    want = plan_blocks(0, path, size, layout, 100_000)
    step = SourceStep("juki", layout, gaiji, (0,), "juki.arrow", None, "decoded", False,
                      tuple((k, output_name(layout, k)) for k in data_kinds(layout)))
    with BeamTestPipeline(runner=FnApiRunner()) as p:
        blocks = p | beam.Create([(0, path)]) | PlanJobBlocks([step], 100_000)
        assert_that(blocks, equal_to(want), label="blocks")
        decoded = blocks | DecodeMapBlocks([step], str(tmp_path))
        counts = decoded["results"] | beam.Map(lambda r: (r.block_index, r.n_records))
        assert_that(counts, equal_to([(b.block_index, b.n_records + (1 if b.tail else 0))
                                      for b in want]), label="counts")
        # quarantined records travel as the blocks' part files, counted in the results
        n_q = (decoded["results"] | beam.Map(lambda r: r.n_quarantined)
               | beam.CombineGlobally(sum))
        assert_that(n_q, equal_to([municipality.quarantined]), label="quarantine")
        in_parts = (decoded["results"] | beam.Map(
            lambda r: r.quarantine_table().num_rows if r.quarantine_part else 0)
            | "InParts" >> beam.CombineGlobally(sum))
        assert_that(in_parts, equal_to([municipality.quarantined]), label="parts")
