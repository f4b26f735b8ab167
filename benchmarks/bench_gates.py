"""Benchmark of the quality gates (ikou.pipeline.steps.gates.run_gates) and of the mapping step
(ikou.pipeline.config.mapping.apply_mapping) on synthetic resident rows.

Data are generated with a fixed seed (ikou.expectations.synthetic.good_table), written to a
temporary staging folder as Arrow IPC and never kept. ``run(quick)`` returns rows
``{benchmark, case, impl, value, unit}``: seconds for the mapping of N decoded legacy rows, for
the resident gate alone (GX validation of the 73-expectation suite), for the whole
``run_gates`` call (read, pandas conversion, validation, result trimming, Data Docs), and
records/s. Each timing is the best of ``repeat`` runs; a run whose gates do not pass (a fast
wrong answer) raises instead of reporting.

    python benchmarks/bench_gates.py            # 1,000,000 rows
    python benchmarks/bench_gates.py --quick    # 100,000 rows
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import pyarrow as pa  # noqa: E402

from ikou.expectations.synthetic import good_table  # noqa: E402
from ikou.pipeline.config.mapping import load_mapping  # noqa: E402
from ikou.pipeline.config.standard import load_standard  # noqa: E402
from ikou.pipeline.steps.gates import run_gates  # noqa: E402
from ikou.pipeline.steps.mapping import _KANA_PAIRS, apply_mapping  # noqa: E402

SEED = 20261127
MAPPING = """\
target: juki
items:
  宛名番号: {copy: atena_no}
  世帯番号: {copy: setai_no}
  氏名: {concat: [shi, mei]}
  氏名フリガナ: {kana: kana}
  生年月日: {date: birth}
  性別: {code: sex, table: {"1": "1", "2": "2"}}
  住所: {trim: addr}
  郵便番号: {copy: yubin}
  住民状態: {const: "1"}
  住民種別: {const: "1"}
"""


def _legacy_from(std_table: pa.Table) -> pa.Table:
    """Decoded-legacy-shaped columns derived from a valid standard table (half-width kana,
    氏/名 split, wareki triple), so the mapping does real work on every row."""
    import pyarrow.compute as pc

    names = pc.split_pattern(std_table.column("shimei"), "\u3000", max_splits=1)
    # Half-width kana as legacy systems write them (ｶﾞ as two characters, ASCII space).
    narrow = {full: half for half, full in reversed(_KANA_PAIRS)}
    kana = std_table.column("shimei_kana").combine_chunks().dictionary_encode()
    half_values = pa.array(["".join(narrow.get(ch, ch) for ch in v)
                            for v in kana.dictionary.to_pylist()])
    half = half_values.take(kana.indices)
    return pa.table({
        "atena_no": std_table.column("atena_no"), "setai_no": std_table.column("setai_no"),
        "shi": pc.list_element(names, 0), "mei": pc.list_element(names, 1),
        "kana": half,
        "birth": std_table.column("seinengappi"), "birth_raw": std_table.column("seinengappi_raw"),
        "birth_status": std_table.column("seinengappi_status"),
        "sex": pc.if_else(pc.equal(std_table.column("seibetsu"), "9"), "1",
                          std_table.column("seibetsu")),
        "addr": std_table.column("jusho"), "yubin": std_table.column("yubin_bango"),
        "_source": std_table.column("_source"), "_record": std_table.column("_record"),
        "_offset": std_table.column("_offset"),
    })


def run(quick: bool = False, repeat: int | None = None) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    repeat = repeat or (1 if quick else 2)
    std = load_standard("juki")
    table = good_table(std, n, seed=SEED)
    legacy = _legacy_from(table)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ikou-bench-gates-") as tmp:
        tmp = Path(tmp)
        (tmp / "juki.mapping.yaml").write_text(MAPPING, encoding="utf-8")
        mapping = load_mapping(tmp / "juki.mapping.yaml", legacy.schema)
        best_map = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            out, rejected = apply_mapping(mapping, legacy)
            best_map = min(best_map, time.perf_counter() - t0)
        if out.num_rows != n or rejected.num_rows != 0:
            raise RuntimeError("mapping benchmark produced the wrong rows")
        staged = tmp / "juki.arrow"
        with pa.OSFile(str(staged), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        best_total = best_gate = float("inf")
        for i in range(repeat):
            report = run_gates({"juki": staged}, tmp / f"run{i}", expected_rows={"juki": n})
            if not report.passed:
                raise RuntimeError("gates failed on valid data:\n" + report.summary())
            # A fast wrong answer is not a result: every map expectation saw every row.
            result = json.loads(Path(report.gates["juki"].results_file).read_text("utf-8"))
            counts = {r["result"].get("element_count") for r in result["results"]} - {None}
            if counts != {n} or len(result["results"]) != report.gates["juki"].evaluated:
                raise RuntimeError(f"gates did not validate all {n} rows: {counts}")
            best_total = min(best_total, report.seconds)
            best_gate = min(best_gate, report.gates["juki"].seconds)
        size_mb = staged.stat().st_size / 1e6
    impl = "gx-" + __import__("great_expectations").__version__ + " pandas"
    case = f"juki {n} rows"
    rows.append({"benchmark": "mapping", "case": case, "impl": "pyarrow.compute",
                 "value": round(best_map, 3), "unit": "s"})
    rows.append({"benchmark": "gates", "case": case + " (resident suite only)", "impl": impl,
                 "value": round(best_gate, 3), "unit": "s"})
    rows.append({"benchmark": "gates", "case": case + " (run_gates total, with Data Docs)",
                 "impl": impl, "value": round(best_total, 3), "unit": "s"})
    rows.append({"benchmark": "gates", "case": case + " throughput", "impl": impl,
                 "value": round(n / best_total), "unit": "records/s"})
    rows.append({"benchmark": "gates", "case": case + " staged size", "impl": "arrow ipc",
                 "value": round(size_mb, 1), "unit": "MB"})
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    for row in run(ap.parse_args().quick):
        print(json.dumps(row, ensure_ascii=False))
