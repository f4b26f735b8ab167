"""Source corruption end to end: a generated town whose tax and 国保 exports hold corrupt records
(``--source-corrupt-share``) runs through ``ikou run job.yaml``, publishes, and reconciles with
exactly the generator's corrupt records in quarantine; ``ikou demo``'s summary and the matching
accuracy (quarantined records are not part of the truth set).

Real Beam (FnApiRunner), real GX, fixed seeds, small sizes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import fastavro
import pytest

from ikou.pipeline.cli import main

SOURCE_OF = {"juki": "juki", "kojin_juminzei": "zei", "kokuho_setai": "kokuho_setai",
             "kokuho_kojin": "kokuho_hihokensha"}
CORRUPTIBLE = ("zei", "kokuho_setai", "kokuho_hihokensha")


def _expected(folder: Path, name: str) -> list[dict]:
    path = folder / (f"{name}.expected.jsonl" if name != "juki" else "expected.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _declared(folder: Path, name: str) -> dict[int, set]:
    """record → {(field, code)} of the records the generator declares quarantined."""
    return {e["record"]: {(r["field"], r["code"]) for r in e["reasons"]}
            for e in _expected(folder, name) if e["fate"] == "quarantine"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("srccorrupt")
    town, out = base / "town", base / "out"
    assert main(["generate", "--residents", "1500", "--seed", "17", "--out", str(town),
                 "--key-error-share", "0.05", "--source-corrupt-share", "0.02"]) == 0
    assert main(["run", str(town / "job.yaml"), "--out", str(out), "--block_size", "40000"]) == 0
    return town, out


def test_corrupt_tax_and_kokuho_records_are_quarantined_and_the_rest_published(run):
    town, out = run
    current = out / "current"
    m = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    assert m["published"] and m["gates"]["passed"] and m["checks"]["ok"]
    declared = {name: _declared(town, name) for name in (*SOURCE_OF.values(), "jutogai")}
    assert all(declared[name] for name in CORRUPTIBLE)  # every corruptible export has some
    assert not declared["juki"] and not declared["jutogai"]
    # per source: rows + review + quarantine = data records read = the trailer's count
    by_input = {i["source"]: i for i in m["inputs"]}
    for t in m["targets"]:
        src = SOURCE_OF[t["name"]]
        data = [e for e in _expected(town, src) if e["kind"] == "data"]
        read = by_input[src]["records_by_kind"]["data"]
        assert read == len(data) == by_input[src]["trailer"]["record_count"]
        assert t["rows"] + t.get("review", 0) + t["quarantined"] == read
        assert t["quarantined"] == len(declared[src])
        assert t["quarantined_by_code"] == dict(Counter(
            code for reasons in declared[src].values() for _f, code in reasons))
        if src in m["matching"]["reconciliation"]:
            rec = m["matching"]["reconciliation"][src]
            assert rec["ok"] and rec["quarantined"] == len(declared[src])
    assert m["quarantined"] == sum(len(v) for v in declared.values())
    # quarantine.avro holds exactly those records, with the declared reasons and raw bytes
    with open(current / "quarantine.avro", "rb") as f:
        quarantined = list(fastavro.reader(f))
    got = {(Path(q["source"]).stem, q["record"]): {(r["field"], r["code"]) for r in q["reasons"]}
           for q in quarantined}
    want = {(name, rec): reasons for name, recs in declared.items() for rec, reasons in recs.items()}
    assert got == want
    for q in quarantined:
        stem = Path(q["source"]).stem
        raw = (town / f"{stem}.dat").read_bytes()
        assert raw[q["offset"]:q["offset"] + len(q["raw"])] == q["raw"] and q["raw"][:1] == b"2"


def test_demo_shows_quarantine_and_publishes(tmp_path):
    from ikou.pipeline.cli.demo import run_demo
    from ikou.pipeline.run.match import load_truth

    lines: list[str] = []
    result = run_demo(str(tmp_path / "demo"), residents=1200, seed=5, corrupt_share=0.0,
                      source_corrupt_share=0.02, echo=lines.append)
    text = "\n".join(lines)
    town = tmp_path / "demo" / "input"
    declared = {name: _declared(town, name) for name in CORRUPTIBLE}
    total = sum(len(v) for v in declared.values())
    assert total > 0
    assert f"quarantined by reason ({total:,} records" in text
    assert "reconciliation  ok" in text and "gates           PASSED" in text
    assert "  published       " in text
    assert result.manifest["published"] and result.manifest["quarantined"] == total
    # recall is measured over the records matching could see: quarantined ones are left out of
    # the truth set and reported separately
    truth = [json.loads(x) for x in (town / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    file_of = {"kojin_juminzei": "zei", "kokuho_setai": "kokuho_setai",
               "kokuho_kojin": "kokuho_hihokensha"}
    for target, m in result.manifest["matching"]["targets"].items():
        src = file_of[target]
        mine = [t for t in truth if t["file"] == f"{src}.dat"]
        flagged = {t["record"] for t in mine if t.get("quarantined")}
        assert flagged == set(declared[src])
        acc = m["accuracy"]
        assert acc["quarantined_right_records"] == len(flagged)
        assert acc["linkable_right_records"] == len(mine) - len(flagged)
        assert f"({len(flagged):,} quarantined, not counted)" in text or not flagged
        # ``ikou match --truth`` reads the same file the same way
        assert set(load_truth(town / "truth.jsonl", f"{src}.dat")) == {
            t["record"] for t in mine} - flagged
