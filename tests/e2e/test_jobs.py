"""Migration jobs end to end: job files, one Beam pipeline for every source with mapping
per block, reconciliation, Great Expectations gates, and the atomic publish.

Real Beam (FnApiRunner), real GX, data from the generator (fixed seeds, small sizes)."""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest

from ikou.pipeline.cli import EXIT_GATES, EXIT_RECONCILE, main
from ikou.pipeline.config.job import JobError, load_job
from ikou.pipeline.config.standard import load_standard
from ikou.pipeline.steps.matching import original_field

ROOT = Path(__file__).resolve().parents[2]
RESIDENTS = 300
TARGETS = ("juki", "kojin_juminzei", "kokuho_setai", "kokuho_kojin")
SOURCE_OF = {"juki": "juki", "kojin_juminzei": "zei", "kokuho_setai": "kokuho_setai",
             "kokuho_kojin": "kokuho_hihokensha"}
#: Targets the generated job matches against the residents (名寄せ) → the resolved key column.
MATCHED = {"kojin_juminzei": "atena_no", "kokuho_setai": "setainushi_atena_no",
           "kokuho_kojin": "atena_no"}


def _lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


def _one_error_line(capsys, rc, expected_rc=2) -> str:
    _, err = capsys.readouterr()
    lines = _lines(err)
    assert rc == expected_rc, err
    assert len(lines) == 1, err
    assert lines[0].startswith("ikou: error: ") and "Traceback" not in err
    return lines[0]


def _expected(folder: Path, name: str) -> list[dict]:
    path = folder / (f"{name}.expected.jsonl" if name != "juki" else "expected.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _read(path: Path) -> pa.Table:
    return pa.ipc.open_file(str(path)).read_all()


def _quarantine(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        return list(fastavro.reader(f))


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """A generated municipality with every source, mapping files and job.yaml (ikou generate)."""
    out = tmp_path_factory.mktemp("town") / "town"
    assert main(["generate", "--residents", str(RESIDENTS), "--seed", "41",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def published(town, tmp_path_factory):
    """``ikou run town/job.yaml --out OUT``: the good run (exit 0)."""
    out = tmp_path_factory.mktemp("out") / "out"
    rc = main(["run", str(town / "job.yaml"), "--out", str(out), "--block_size", "30000"])
    assert rc == 0
    return out


# -- the generated job set ------------------------------------------------------------------

def test_generate_writes_a_complete_migration_set(town):
    names = {p.name for p in town.iterdir()}
    for src in ("juki", "zei", "kokuho_setai", "kokuho_hihokensha", "jutogai"):
        assert f"{src}.dat" in names and f"{src}.layout.yaml" in names
    assert {"gaiji.csv", "job.yaml", "juki.mapping.yaml", "zei.mapping.yaml",
            "kokuho_setai.mapping.yaml", "kokuho_hihokensha.mapping.yaml"} <= names
    job = load_job(town / "job.yaml")
    assert [t.name for t in job.targets] == list(TARGETS)
    assert [t.source for t in job.targets] == [SOURCE_OF[t] for t in TARGETS]
    assert [r.source for r in job.references] == ["jutogai"]
    assert job.gates == "fail" and job.outputs == town / "out" and len(job.gaiji) > 0


# -- job loading errors -----------------------------------------------------------------------

def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@pytest.mark.parametrize("edit, anchor, message", [
    (lambda t: t.replace("source: zei}", "source: ze}"), "source: ze}", "unknown source 'ze'"),
    (lambda t: t.replace("inputs: [zei.dat]", "inputs: [zei2.dat]"), "zei2.dat",
     "input not found"),
    (lambda t: t.replace("gates: fail", "gates: maybe"), None, "'gates' must be one of"),
    (lambda t: t.replace("  - {source: jutogai}\n", "  - {source: jutogai, key: x}\n"),
     "key: x", "unknown keys: key"),
    (lambda t: t.replace("references:\n  - {source: jutogai}\n", ""), "name: jutogai",
     "neither a target's source nor a reference"),
    (lambda t: t.replace("layout: zei.layout.yaml", "layout: juki.layout.yaml"),
     "zei.mapping.yaml", "unknown legacy field"),
    (lambda t: t.replace("standard: kokuho_setai,", "standard: kokuho_kojin,"),
     "standard: kokuho_kojin, mapping: kokuho_setai", "fills 'kokuho_setai', not"),
    (lambda t: t.replace("targets:", "targets: [\n"), None, "invalid YAML"),
])
def test_job_errors_name_file_and_line(town, tmp_path, capsys, edit, anchor, message):
    for p in town.iterdir():
        if p.suffix in (".yaml", ".csv", ".dat"):
            shutil.copy(p, tmp_path / p.name)
    text = edit((town / "job.yaml").read_text(encoding="utf-8"))
    job = tmp_path / "job.yaml"
    job.write_text(text, encoding="utf-8")
    with pytest.raises(JobError, match=message) as exc:
        load_job(job)
    if anchor is not None:
        assert f"job.yaml:{_line_of(text, anchor)}: " in str(exc.value)
    else:
        assert "job.yaml:" in str(exc.value)
    line = _one_error_line(capsys, main(["run", str(job), "--out", str(tmp_path / "o")]))
    assert message in line and "job.yaml:" in line
    assert not (tmp_path / "o").exists()


def test_mapping_error_names_the_mapping_file_and_line(town, tmp_path):
    for p in town.iterdir():
        if p.suffix in (".yaml", ".csv", ".dat"):
            shutil.copy(p, tmp_path / p.name)
    mapping = tmp_path / "zei.mapping.yaml"
    text = mapping.read_text(encoding="utf-8").replace("{code: kazei_kubun}", "{code: kazei}")
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(JobError) as exc:
        load_job(tmp_path / "job.yaml")
    job_line = _line_of((tmp_path / "job.yaml").read_text(encoding="utf-8"), "zei.mapping")
    assert str(exc.value).startswith(f"{tmp_path / 'job.yaml'}:{job_line}: ")
    assert f"zei.mapping.yaml:{_line_of(text, 'kazei}')}: " in str(exc.value)
    assert "unknown legacy field 'kazei'" in str(exc.value)


# -- end to end ---------------------------------------------------------------------------------

def test_job_publishes_three_standard_files(published, town):
    current = published / "current"
    assert current.is_symlink() and os.readlink(current).startswith("releases" + os.sep)
    release = current.resolve()
    names = sorted(str(p.relative_to(release)) for p in release.rglob("*") if p.is_file())
    # the generated job matches tax and 国保 records to the residents (review files for
    # what matching cannot resolve, the links for audit)
    matched = {t: key for t, key in MATCHED.items()}
    assert names == sorted([f"{t}.arrow" for t in TARGETS] + [
        "reference/jutogai.arrow", "quarantine.avro", "manifest.json", "report.html"]
        + [f"review/{t}.arrow" for t in matched] + [f"match/{t}.links.arrow" for t in matched])
    assert not list((published / "releases").glob(".staging-*"))
    m = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    assert m["published"] and m["gates"]["passed"] and m["checks"]["ok"]
    assert m["quarantined"] == 0 and _quarantine(current / "quarantine.avro") == []
    for t in m["targets"]:
        table = _read(current / f"{t['name']}.arrow")
        source = SOURCE_OF[t["name"]]
        data = [e for e in _expected(town, source) if e["kind"] == "data"]
        # rows == reconciled counts == the generator's data records (no corruption here)
        assert table.num_rows == t["rows"] == len(data) > 0
        assert m["gates"]["gates"][t["name"]]["rows"] == t["rows"]
        # the schema is the definition's, with the Japanese item metadata (+ for a matched
        # target the original value of each key that matching resolved)
        std = load_standard(t["name"])
        want = std.schema(lineage=True)
        if t["name"] in matched:
            key = matched[t["name"]]
            want = want.append(original_field(want, key))
        assert table.schema.equals(want, check_metadata=True)
        first = table.schema.field(std.items[0].field)
        assert first.metadata[b"ikou.name"].decode() == std.items[0].name
        assert first.metadata[b"ikou.item_no"] == b"1"
        # lineage kept: source file and record numbers in file order
        assert set(table.column("_source").to_pylist()) == {f"{source}.dat"}
        assert table.column("_record").to_pylist() == [e["record"] for e in data]
    assert m["targets"][0]["rows"] == RESIDENTS
    for step in ("hash_inputs", "pipeline", "pipeline.decode", "pipeline.mapping", "check",
                 "gates", "publish", "total"):
        assert step in m["timings"]
    assert m["throughput"]["records_per_s"] > 0


def test_mapped_values_follow_the_legacy_records(published, town):
    current = published / "current"
    tax = _read(current / "kojin_juminzei.arrow").to_pylist()
    want = [e["values"] for e in _expected(town, "zei") if e["kind"] == "data"]
    assert [r["atena_no"] for r in tax] == [w["atena_no"] for w in want]
    assert [r["shikibetsu_no"] for r in tax] == [w["tsuchisho_no"] for w in want]
    assert [r["shotokuwari_gaku"] for r in tax] == [int(w["shotokuwari"]) for w in want]
    assert [r["nenzei_gaku"] for r in tax] == [int(w["annual_tax"]) for w in want]
    kk = _read(current / "kokuho_kojin.arrow").to_pylist()
    want = [e["values"] for e in _expected(town, "kokuho_hihokensha") if e["kind"] == "data"]
    assert [r["kigo_bango"] for r in kk] == [w["kokuho_no"] for w in want]
    assert [r["shikaku_shutoku_date_raw"] for r in kk] == [w["shutoku"]["raw"] for w in want]
    ref = _read(current / "reference" / "jutogai.arrow")
    assert ref.num_rows == sum(1 for e in _expected(town, "jutogai") if e["kind"] == "data")


def test_two_worker_processes_publish_the_same_bytes(published, town, tmp_path):
    """The mapper and layouts travel to Beam worker processes (pickled) and the outputs do
    not depend on who decoded which block."""
    m = json.loads((published / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["gates"]["passed"]  # still the good run's release
    out = tmp_path / "mp"
    rc = main(["run", str(town / "job.yaml"), "--out", str(out), "--block_size", "20000",
               "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert rc == 0
    mp = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert mp["runner"]["direct_running_mode"] == "multi_processing"
    assert {o["name"]: o["sha256"] for o in mp["outputs"]} == {
        o["name"]: o["sha256"] for o in m["outputs"]}


def test_run_folder_holds_validations_and_data_docs(published):
    m = json.loads((published / "current" / "manifest.json").read_text(encoding="utf-8"))
    run = published / "runs" / m["job"]["run_id"]
    assert (run / "data_docs" / "index.html").is_file()
    gates = {p.stem for p in (run / "validations").glob("*.json")}
    assert set(TARGETS) <= gates and "kojin_juminzei.atena_no.reference" in gates
    assert json.loads((run / "gates.json").read_text(encoding="utf-8"))["passed"]
    # validation results are not published data (the release holds the run report only)
    assert [p.name for p in (published / "current").rglob("*.html")] == ["report.html"]


def test_unknown_code_is_quarantined_with_raw_bytes(town, tmp_path):
    """A tax record whose 課税区分 no table knows: quarantined by the mapping, not published."""
    work = tmp_path / "town"
    shutil.copytree(town, work, ignore=shutil.ignore_patterns("out"))
    data = bytearray((work / "zei.dat").read_bytes())
    stride = 242
    record = 5  # 1-based: the 4th data record
    start = (record - 1) * stride
    assert data[start:start + 1] == b"2"
    data[start + 92:start + 93] = b"7"  # kazei_kubun (offset 92): no such code
    (work / "zei.dat").write_bytes(bytes(data))
    rc = main(["run", str(work / "job.yaml"), "--out", str(tmp_path / "out")])
    assert rc == 0
    current = tmp_path / "out" / "current"
    q = _quarantine(current / "quarantine.avro")
    assert len(q) == 1
    (rec,) = q
    assert (rec["source"], rec["record"], rec["offset"], rec["kind"]) == (
        "zei.dat", record, start, "data")
    assert rec["raw"] == bytes(data[start:start + 240])
    assert [(r["field"], r["code"]) for r in rec["reasons"]] == [
        ("kazei_kubun", "MAPPING_UNKNOWN_CODE")]
    assert "'7'" in rec["reasons"][0]["message"] and "課税区分" in rec["reasons"][0]["message"]
    m = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    tax = next(t for t in m["targets"] if t["name"] == "kojin_juminzei")
    src = next(i for i in m["inputs"] if i["source"] == "zei")
    assert tax["quarantined_by_code"] == {"MAPPING_UNKNOWN_CODE": 1}
    assert tax["rows"] + 1 == src["records_by_kind"]["data"]
    assert record not in _read(current / "kojin_juminzei.arrow").column("_record").to_pylist()


@pytest.fixture(scope="module")
def broken(town, tmp_path_factory):
    """The town with one resident's 宛名番号 check digit broken."""
    work = tmp_path_factory.mktemp("broken") / "town"
    shutil.copytree(town, work, ignore=shutil.ignore_patterns("out"))
    data = bytearray((work / "juki.dat").read_bytes())
    start = 6 * 322  # record 7
    digit = data[start + 10] - 0x30
    data[start + 10] = 0x30 + (digit + 1) % 10  # the last digit of atena_no (bytes 1-10)
    (work / "juki.dat").write_bytes(bytes(data))
    return work


def test_broken_file_publishes_nothing_and_says_why(broken, published, capsys):
    before = os.readlink(published / "current")
    releases = sorted(p.name for p in (published / "releases").iterdir())
    rc = main(["run", str(broken / "job.yaml"), "--out", str(published)])
    out, err = capsys.readouterr()
    assert rc == EXIT_GATES
    assert "gates (fail): FAILED" in err
    assert ("expect_column_values_to_have_valid_atena_check_digit [atena_no] (1 宛名番号): "
            f"1 of {RESIDENTS} rows; e.g. _record=7 ") in err
    assert _lines(err)[-1].startswith("ikou: error: gates failed (juki")
    assert "nothing published" in _lines(err)[-1]
    # nothing published: current unchanged, no new release, staging removed
    assert os.readlink(published / "current") == before
    assert sorted(p.name for p in (published / "releases").iterdir()) == releases
    runs = sorted((published / "runs").iterdir())
    m = json.loads((runs[-1] / "manifest.json").read_text(encoding="utf-8"))
    assert m["published"] is False and m["outputs"] == []
    failing = m["gates"]["gates"]["juki"]["failures"]
    assert [(f["expectation"], f["unexpected_count"]) for f in failing] == [
        ("expect_column_values_to_have_valid_atena_check_digit", 1)]
    assert (runs[-1] / "data_docs" / "index.html").is_file()


def test_reports_contain_no_personal_values(broken, published):
    runs = sorted((published / "runs").iterdir())
    texts = []
    for run in runs:
        for p in run.rglob("*"):
            if p.is_file() and p.suffix in (".json", ".html", ".txt"):
                texts.append(p.read_text(encoding="utf-8"))
    for p in (published / "current").resolve().parent.rglob("manifest.json"):
        texts.append(p.read_text(encoding="utf-8"))
    text = "\n".join(texts)
    assert len(texts) > 20 and "_record" in text and "atena_no" in text
    values = set()
    for source in ("juki", "zei", "kokuho_setai", "kokuho_hihokensha", "jutogai"):
        for e in _expected(broken, source):
            if e["kind"] != "data":
                continue
            v = e["values"]
            for key in ("name_kanji", "name_kana", "address", "head_name_kanji",
                        "head_name_kana"):
                if v.get(key) and len(v[key]) >= 4:
                    values.add(v[key])
            birth = (v.get("birth") or {}).get("date")
            if birth and birth != "2025-04-01":  # the exports' 作成年月日 is in the manifest
                values.add(birth)
    assert len(values) > 500
    # ...they really are in the data that was validated
    juki = _read(published / "current" / "juki.arrow")
    assert set(juki.column("shimei").to_pylist()) & values
    leaked = sorted(v for v in values if v in text)
    assert not leaked, f"personal values in run reports: {leaked[:5]}"


def test_gates_warn_publishes_and_reports(broken, published, capsys):
    before = os.readlink(published / "current")
    rc = main(["run", str(broken / "job.yaml"), "--out", str(published), "--gates", "warn"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "FAILED (published anyway: --gates warn)" in out
    assert "expect_column_values_to_have_valid_atena_check_digit" in out
    assert os.readlink(published / "current") != before
    m = json.loads((published / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["published"] and not m["gates"]["passed"] and m["gates"]["mode"] == "warn"
    # the previous release stays (readers inside it keep working); a third run prunes
    releases = sorted(p.name for p in (published / "releases").iterdir())
    assert len(releases) == 2 and before.endswith(releases[0])
    assert main(["run", str(broken / "job.yaml"), "--out", str(published), "--gates",
                 "warn"]) == 0
    capsys.readouterr()
    after = sorted(p.name for p in (published / "releases").iterdir())
    assert len(after) == 2 and releases[0] not in after and releases[1] in after
    # identical inputs, identical published bytes
    a, b = [published / "releases" / r for r in after]
    for name in [f"{t}.arrow" for t in TARGETS] + ["quarantine.avro"]:
        assert (a / name).read_bytes() == (b / name).read_bytes()


# -- command line forms ----------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["more.dat"], "a job file names its inputs"),
    (["--gates", "maybe"], "argument --gates: invalid choice: 'maybe' (choose from 'fail', 'warn')"),
    (["--gaiji", "g.csv"], "given in the job file"),
])
def test_run_job_usage_errors(town, tmp_path, capsys, extra, message):
    line = _one_error_line(capsys, main(["run", str(town / "job.yaml"), "--out",
                                         str(tmp_path / "o"), *extra]))
    assert message in line


def test_gates_option_needs_a_job(town, tmp_path, capsys):
    line = _one_error_line(capsys, main(["run", "--layout", str(town / "juki.layout.yaml"),
                                         "--out", str(tmp_path / "o"), "--gates", "warn",
                                         str(town / "juki.dat")]))
    assert "--gates applies to job files" in line


def test_job_without_outputs_needs_out(town, tmp_path, capsys):
    for p in town.iterdir():
        if p.suffix in (".yaml", ".csv", ".dat"):
            shutil.copy(p, tmp_path / p.name)
    job = tmp_path / "job.yaml"
    job.write_text(job.read_text(encoding="utf-8").replace("outputs: out\n", ""),
                   encoding="utf-8")
    line = _one_error_line(capsys, main(["run", str(job)]))
    assert "no output folder" in line


def test_generate_sources_option(tmp_path, capsys):
    assert main(["generate", "--residents", "20", "--seed", "3", "--out", str(tmp_path / "g"),
                 "--sources", "juki"]) == 0
    capsys.readouterr()
    job = load_job(tmp_path / "g" / "job.yaml")
    assert [t.name for t in job.targets] == ["juki"] and job.references == ()
    line = _one_error_line(capsys, main(["generate", "--residents", "20", "--seed", "3",
                                         "--out", str(tmp_path / "h"), "--sources", "juki,x"]))
    assert "unknown source 'x'" in line


# -- package structure --------------------------------------------------------------------------------

def _imports(folder: str) -> set[tuple[str, str]]:
    out = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                out.update((path.name, a.name) for a in node.names)
    return out


@pytest.mark.parametrize("folder, forbidden", [
    ("expectations", ("ikou.pipeline", "ikou.transforms")),
    ("transforms", ("ikou.pipeline", "ikou.expectations")),
    ("kernels", ("ikou.pipeline", "ikou.transforms", "ikou.expectations")),
])
def test_dependencies_point_one_way(folder, forbidden):
    bad = sorted((f, m) for f, m in _imports(folder) if m.startswith(forbidden))
    assert not bad, f"{folder} imports {bad}"


def test_block_outputs_share_one_status_dictionary(tmp_path):
    """Each block is mapped alone; their date statuses must use one dictionary, or the parts
    cannot be merged into one Arrow IPC file (found on a 1,000,000-resident run)."""
    from ikou.pipeline.config.mapping import load_mapping
    from ikou.pipeline.steps.mapping import apply_mapping
    from ikou.transforms.decode.outputs import merge_parts

    (tmp_path / "m.yaml").write_text(
        "target: kokuho_setai\nitems:\n  世帯番号: {copy: s}\n  世帯主宛名番号: {copy: a}\n"
        "  資格取得年月日: {date: d}\n  資格喪失年月日: {date: e}\n"
        "  被保険者証記号番号: {copy: k}\n", encoding="utf-8")
    legacy = pa.schema([("s", pa.string()), ("a", pa.string()), ("d", pa.date32()),
                        ("e", pa.string()), ("k", pa.string())])
    mapping = load_mapping(tmp_path / "m.yaml", legacy)
    import datetime

    day = datetime.date(2020, 1, 2)
    blocks = [pa.table({"s": ["1"] * 3, "a": ["1"] * 3, "d": [None, day, None],
                        "e": ["20200230", "", "00000000"], "k": ["1"] * 3}, schema=legacy),
              pa.table({"s": ["1"] * 2, "a": ["1"] * 2, "d": [day, None],
                        "e": ["20200101", "20200230"], "k": ["1"] * 2}, schema=legacy)]
    parts = []
    for i, b in enumerate(blocks):
        out = apply_mapping(mapping, b).table
        for name in ("shikaku_shutoku_date_status", "shikaku_soshitsu_date_status"):
            assert out.column(name).chunk(0).dictionary.to_pylist() == [
                "valid", "out_of_era", "impossible", "unknown", "blank"]
        path = tmp_path / f"part{i}.arrow"
        with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, out.schema) as w:
            w.write_table(out)
        parts.append(str(path))
    schema = mapping.standard.schema(lineage=True)
    assert merge_parts(parts, schema, str(tmp_path / "all.arrow"), batch_rows=2) == 5
    merged = _read(tmp_path / "all.arrow")
    assert merged.column("shikaku_shutoku_date_status").to_pylist() == [
        "blank", "valid", "blank", "valid", "blank"]
    assert merged.column("shikaku_soshitsu_date_status").to_pylist() == [
        "impossible", "blank", "unknown", "valid", "impossible"]


def test_reconciliation_failure_in_a_job_publishes_nothing(town, tmp_path, capsys):
    work = tmp_path / "town"
    shutil.copytree(town, work, ignore=shutil.ignore_patterns("out"))
    data = bytearray((work / "kokuho_setai.dat").read_bytes())
    trailer = len(data) - 162
    assert data[trailer:trailer + 1] == b"9"
    count = int(data[trailer + 1:trailer + 9])
    data[trailer + 1:trailer + 9] = b"%08d" % (count + 1)
    (work / "kokuho_setai.dat").write_bytes(bytes(data))
    rc = main(["run", str(work / "job.yaml"), "--out", str(tmp_path / "out")])
    line = _one_error_line(capsys, rc, expected_rc=EXIT_RECONCILE)
    assert f"kokuho_setai: trailer count ({count + 1}) != data records read ({count})" in line
    assert not (tmp_path / "out" / "current").exists()
    assert list((tmp_path / "out" / "releases").iterdir()) == []


def test_the_stages_add_up_to_the_run(published):
    """Every stage of the run is in the manifest, timed back to back: the stages add up to
    the total (up to rounding), their shares to one, the pipeline's parts to the pipeline."""
    from ikou.pipeline.run.job import PIPELINE_PARTS, STAGES

    m = json.loads((published / "current" / "manifest.json").read_text(encoding="utf-8"))
    st = m["stages"]
    assert list(st["stages"]) == list(STAGES)
    total = sum(s["seconds"] for s in st["stages"].values())
    assert st["total"] > 0 and abs(total - st["total"]) <= 0.001 * len(STAGES)
    assert abs(sum(s["share"] for s in st["stages"].values()) - 1) < 0.01
    assert st["stages"]["pipeline"]["seconds"] > 0 and st["stages"]["gates"]["seconds"] > 0
    assert st["stages"]["matching"]["seconds"] > 0  # the demo job matches three targets
    parts = st["pipeline_parts"]
    assert set(parts) == {*PIPELINE_PARTS, "beam"}
    assert abs(sum(parts.values()) - st["stages"]["pipeline"]["seconds"]) <= 0.001 * len(parts)
    assert m["timings"]["total"] == st["total"]
    assert m["gates"]["timings"]["validate"] > 0  # the gate step's own split


def test_the_command_runs_its_gates_in_the_gate_worker(town, tmp_path):
    """``ikou run JOB.yaml`` as a command: Great Expectations is imported by the gate worker
    process started before Beam, and the run publishes with every gate passed."""
    import subprocess
    import sys

    ikou = Path(sys.executable).parent / "ikou"
    out = tmp_path / "out"
    proc = subprocess.run([str(ikou), "run", str(town / "job.yaml"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["gates"]["passed"] and m["stages"]["stages"]["startup"]["seconds"] > 0
    assert "Traceback" not in proc.stderr and "apitools" not in proc.stderr
