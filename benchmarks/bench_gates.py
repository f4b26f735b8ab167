"""Benchmark of the quality gates (ikou.pipeline.steps.gates.run_gates) and of the mapping step
(ikou.pipeline.config.mapping.apply_mapping) on synthetic resident rows.

Data are generated with a fixed seed (ikou.expectations.synthetic.good_table), written to a
temporary staging folder as Arrow IPC and never kept. ``run(quick)`` returns rows
``{benchmark, case, impl, value, unit}``:

- mapping: seconds for the mapping of N decoded legacy resident rows;
- gates, resident suite: the 73-expectation resident gate alone and the whole ``run_gates``
  call on the resident file, with the default engine (metrics in Arrow, results by GX);
- gate step: a municipality-shaped set of staged outputs (N residents, tax 0.64 N, 国保世帯
  0.09 N, 国保被保険者 0.19 N, 住登外 0.03 N; 7 validations, 152 expectations), the
  baseline (GX's pandas engine) and the new engine measured in the same run, each in its own
  process so its peak RSS is its own: total seconds, the split (load, validate, results, Data
  Docs) and peak RSS. Both must pass with every row validated, and their sanitized results
  must be equal, or the benchmark raises instead of reporting.

Each timing is the best of ``repeat`` runs.

    python benchmarks/bench_gates.py                 # 1,000,000 residents
    python benchmarks/bench_gates.py --quick         # 100,000 residents
    python benchmarks/bench_gates.py --residents 100000 1000000 --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import pyarrow as pa  # noqa: E402

from ikou.expectations.synthetic import atena_numbers, good_table  # noqa: E402
from ikou.pipeline.config.mapping import load_mapping  # noqa: E402
from ikou.pipeline.config.standard import load_standard  # noqa: E402
from ikou.pipeline.steps.gates import ENGINES, run_gates  # noqa: E402
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


def _write(path: Path, table: pa.Table) -> Path:
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table, max_chunksize=65_536)  # many record batches, as Beam stages them
    return path


def stage_municipality(folder: Path, residents: int, seed: int = SEED) -> dict[str, Path]:
    """Staged outputs shaped like a generated municipality (shares as in ikou generate)."""
    folder.mkdir(parents=True, exist_ok=True)
    juki = good_table(load_standard("juki"), residents, seed=seed)
    n_out = max(1, residents * 3 // 100)
    jutogai = pa.table({"atena_no": atena_numbers(n_out, seed + 1, start=10**8),
                        "_record": pa.array(range(2, n_out + 2), pa.int64())})
    pool = pa.concat_arrays([juki.column("atena_no").combine_chunks(),
                             jutogai.column("atena_no").combine_chunks()])
    tables = {
        "juki": juki, "jutogai": jutogai,
        "kojin_juminzei": good_table(load_standard("kojin_juminzei"), residents * 64 // 100,
                                     seed + 2, atena_pool=pool),
        "kokuho_setai": good_table(load_standard("kokuho_setai"), residents * 9 // 100,
                                   seed + 3, atena_pool=pool),
        "kokuho_kojin": good_table(load_standard("kokuho_kojin"), residents * 19 // 100,
                                   seed + 4, atena_pool=pool),
    }
    return {name: _write(folder / f"{name}.arrow", t) for name, t in tables.items()}


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss survives exec, so a child started by a
    bigger parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gate_step(staged: dict[str, Path], run_dir: Path, engine: str) -> dict:
    """One ``run_gates`` call (in this process): seconds, split, peak RSS, checked results."""
    rows = {}
    for name, path in staged.items():  # row counts from the file metadata, no data read
        if name != "jutogai":
            reader = pa.ipc.open_file(pa.memory_map(str(path)))
            rows[name] = sum(reader.get_batch(i).num_rows
                             for i in range(reader.num_record_batches))
    rss0 = _peak_rss_mb()
    report = run_gates(staged, run_dir, expected_rows=rows, engine=engine)
    if not report.passed:
        raise RuntimeError(f"gates ({engine}) failed on valid data:\n" + report.summary())
    results = {}
    for name, gate in report.gates.items():
        doc = json.loads(Path(gate.results_file).read_text("utf-8"))
        counts = {r["result"].get("element_count") for r in doc["results"]} - {None}
        if counts != {gate.rows} or len(doc["results"]) != gate.evaluated:
            raise RuntimeError(f"{engine}: {name} did not validate all {gate.rows} rows")
        doc.pop("meta")
        for r in doc["results"]:
            r["expectation_config"].pop("id", None)
        results[name] = doc
    return {"seconds": report.seconds, "timings": report.timings,
            "resident_gate": report.gates["juki"].seconds,
            "engines": sorted({g.engine for g in report.gates.values()}),
            "validations": len(report.gates),
            "expectations": sum(g.evaluated for g in report.gates.values()),
            "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": rss0, "results": results}


def _gate_step_in_child(staged: dict[str, Path], run_dir: Path, engine: str) -> dict:
    """``_gate_step`` in a fresh interpreter: its peak RSS is the gate step's (plus imports)."""
    code = ("import json, sys; from pathlib import Path; from benchmarks.bench_gates import "
            "_gate_step; a = json.loads(sys.argv[1]); print(json.dumps(_gate_step("
            "{k: Path(v) for k, v in a['staged'].items()}, Path(a['run_dir']), a['engine'])))")
    arg = json.dumps({"staged": {k: str(v) for k, v in staged.items()},
                      "run_dir": str(run_dir), "engine": engine})
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"gate step ({engine}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def gate_step_rows(residents: int, repeat: int = 1, baseline: bool = True) -> list[dict]:
    """Rows for the whole gate step at ``residents``: baseline and new engine, same data."""
    engines = ENGINES[::-1] if baseline else ENGINES[:1]  # baseline first, then the new one
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ikou-bench-gatestep-") as tmp:
        tmp = Path(tmp)
        staged = stage_municipality(tmp / "staging", residents)
        best: dict[str, dict] = {}
        for i in range(repeat):
            for eng in engines:
                got = _gate_step_in_child(staged, tmp / f"{eng}-{i}", eng)
                if eng not in best or got["seconds"] < best[eng]["seconds"]:
                    best[eng] = got
    if baseline and best["arrow"]["results"] != best["gx-pandas"]["results"]:
        raise RuntimeError("the arrow engine's results differ from GX pandas' results")
    case = f"gate step, {residents} residents"
    for eng in engines:
        b = best[eng]
        impl = f"{eng} ({'+'.join(b['engines'])})"
        if b["validations"] != 7 or b["expectations"] != 152:
            raise RuntimeError(f"{eng}: {b['validations']} validations, {b['expectations']}")
        rows.append({"benchmark": "gates", "case": case + " (7 validations, 152 expectations)",
                     "impl": impl, "value": round(b["seconds"], 3), "unit": "s"})
        for k, v in b["timings"].items():
            rows.append({"benchmark": "gates", "case": f"{case}: {k}", "impl": impl,
                         "value": round(v, 3), "unit": "s"})
        rows.append({"benchmark": "gates", "case": f"{case}: resident gate", "impl": impl,
                     "value": round(b["resident_gate"], 3), "unit": "s"})
        rows.append({"benchmark": "gates", "case": f"{case}: peak RSS (process)", "impl": impl,
                     "value": round(b["peak_rss_mb"]), "unit": "MB"})
        rows.append({"benchmark": "gates", "case": f"{case}: peak RSS before the call",
                     "impl": impl, "value": round(b["rss_before_mb"]), "unit": "MB"})
    if baseline:
        rows.append({"benchmark": "gates", "case": case + " speed-up", "impl": "arrow vs gx",
                     "value": round(best["gx-pandas"]["seconds"] / best["arrow"]["seconds"], 2),
                     "unit": "x"})
    return rows


def run(quick: bool = False, repeat: int | None = None, residents: list[int] | None = None,
        baseline: bool = True) -> list[dict]:
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
    impl = "gx-" + __import__("great_expectations").__version__ + " arrow"
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
    for residents_n in residents or [n]:
        rows.extend(gate_step_rows(residents_n, 1 if quick else repeat, baseline))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--residents", type=int, nargs="+",
                    help="gate step sizes (default: 100,000 quick, else 1,000,000)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="gate step with the new engine only (no GX pandas run)")
    ap.add_argument("--repeat", type=int)
    a = ap.parse_args()
    for row in run(a.quick, a.repeat, a.residents, not a.no_baseline):
        print(json.dumps(row, ensure_ascii=False))
