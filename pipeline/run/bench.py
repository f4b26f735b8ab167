"""``ikou bench``: how long a cutover (本番移行) takes, measured and projected.

Each measurement runs the whole job as a user runs it — ``ikou run JOB.yaml`` as its own process
(start-up, decode and mapping on Beam, reconciliation, record matching, the gates, the publish
and the report) — and reads the stage times from its ``manifest.json``; the process tree's peak
resident memory is sampled from ``/proc`` while it runs.

The projection fits, per stage, a fixed cost and a cost per record (least squares, both >= 0,
``seconds = fixed + per_record × records``) over the measured sizes, and predicts the wall time
of a municipality of ``project`` residents (records per resident as measured). Its error is
stated on the measured points, and — with three or more sizes — as the error of predicting the
largest measurement from the smaller ones alone (what a vendor does: measure small, promise big).

- ``bench_town(residents, ...)``: generated towns (fixed seed) of ``residents`` and smaller
  sizes (``residents / 16`` and ``/ 4`` by default);
- ``bench_job(job, ...)``: a user's job on real exports, plus generated towns of a fraction of
  its size to separate fixed from per-record costs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ikou.pipeline.synth.encodings import GENERATE_ENCODINGS

__all__ = ["BenchResult", "Measurement", "bench_job", "bench_town", "fit", "format_bench"]

SEED = 20261127
STAGES = ("startup", "prepare", "hash_inputs", "pipeline", "check", "matching", "gates",
          "publish", "exit")
#: what the generator writes: CP932 and, transcoded, the mainframe encodings
ENCODINGS = ("cp932", *GENERATE_ENCODINGS)


@dataclass
class Measurement:
    label: str
    residents: int | None
    records: int
    bytes: int
    wall: float  # the command's wall time
    stages: dict[str, float]  # seconds per stage (+ "exit": the command's wall time - total)
    peak_rss_mb: float
    gates_passed: bool


@dataclass
class BenchResult:
    measurements: list[Measurement]
    model: dict[str, dict[str, float]]  # stage -> {"fixed", "per_record"}; "total" too
    records_per_resident: float | None
    project: int | None
    projection: dict[str, float] | None  # stage -> seconds for `project` residents
    errors: list[dict[str, float]]  # per measured point: measured, fitted, error %
    holdout: dict[str, float] | None  # the largest predicted from the smaller ones
    machine: dict[str, Any] = field(default_factory=dict)
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            p = int(entry)
            children.setdefault(int(fields[1]), []).append(p)
            rss[p] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def measure(job: Path, label: str, residents: int | None, workers: int = 1,
            beam_args: Sequence[str] = ()) -> Measurement:
    """Run ``ikou run job --out <tmp>`` as a process; its stage times and peak memory."""
    args = list(beam_args)
    if workers > 1:
        args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    with tempfile.TemporaryDirectory(prefix="ikou-bench-out-") as out:
        cmd = [sys.executable, "-m", "ikou.pipeline.cli", "run", str(job), "--out", out,
               "--gates", "warn", "--no-progress", *args]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.1)
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"ikou run {job} failed (exit {proc.returncode}): "
                               f"{(stderr + stdout)[-2000:]}")
        m = json.loads((Path(out) / "current" / "manifest.json").read_text(encoding="utf-8"))
    st = m["stages"]
    stages = {k: v["seconds"] for k, v in st["stages"].items()}
    stages["exit"] = max(0.0, wall - st["total"])
    return Measurement(label, residents, m["records"], m["throughput"]["bytes"], wall, stages,
                       round(peak / 1024, 1), bool((m.get("gates") or {}).get("passed", True)))


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares ``y = fixed + per × x`` with both costs kept >= 0 (noise on a busy
    machine can tilt a free fit below zero); one size: all of it per record."""
    n = len(xs)
    if n == 1 or len(set(xs)) == 1:
        return 0.0, (sum(ys) / sum(xs) if sum(xs) else 0.0)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    per = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    fixed = my - per * mx
    if per < 0:  # no measurable cost per record: all fixed
        return my, 0.0
    if fixed < 0:  # no measurable fixed cost: a line through the origin
        return 0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    return fixed, per


def _model(ms: Sequence[Measurement]) -> dict[str, dict[str, float]]:
    xs = [m.records for m in ms]
    model = {}
    for stage in STAGES:
        a, b = fit(xs, [m.stages.get(stage, 0.0) for m in ms])
        model[stage] = {"fixed": a, "per_record": b}
    # the whole run = the sum of its stages, so the projected stages add up to the total
    model["total"] = {k: sum(model[s][k] for s in STAGES) for k in ("fixed", "per_record")}
    return model


def _predict(model, records: float) -> float:
    return model["total"]["fixed"] + model["total"]["per_record"] * records


def _result(ms: list[Measurement], project: int | None, rpr: float | None,
            workers: int) -> BenchResult:
    from ikou.pipeline.steps.manifest import machine

    ms = sorted(ms, key=lambda m: m.records)
    model = _model(ms)
    errors = [{"label": m.label, "records": m.records, "measured": m.wall,
               "fitted": _predict(model, m.records),
               "error_pct": 100 * (_predict(model, m.records) - m.wall) / m.wall} for m in ms]
    holdout = None
    smaller = [m.records for m in ms[:-1]]
    if len(ms) >= 3 and max(smaller) >= 2 * min(smaller):  # the smaller sizes span a range
        small = _model(ms[:-1])
        big = ms[-1]
        pred = _predict(small, big.records)
        holdout = {"label": big.label, "records": big.records, "measured": big.wall,
                   "predicted": pred, "error_pct": 100 * (pred - big.wall) / big.wall}
    projection = None
    if project:
        records = project * rpr if rpr else project
        projection = {k: v["fixed"] + v["per_record"] * records
                      for k, v in model.items() if k != "total"}
        projection["total"] = _predict(model, records)
        projection["records"] = records
    return BenchResult(ms, model, rpr, project, projection, errors, holdout, machine(),
                       workers)


def _generate(folder: Path, residents: int, encoding: str) -> Path:
    from ikou.pipeline.config.job import write_demo_job
    from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality

    if encoding not in ENCODINGS:
        raise ValueError(encoding)
    gen = generate_municipality(folder, residents, SEED, sources=ALL_SOURCES,
                                write_expected=False, key_error_share=0.05)
    job = write_demo_job(folder, gen.sources)
    if encoding != "cp932":  # the same town in a mainframe encoding (EBCDIC numbers, its 外字)
        from ikou.pipeline.synth.encodings import transcode_town

        transcode_town(folder, encoding)
    return job


def default_sizes(residents: int) -> list[int]:
    """The sizes measured for a town of ``residents``: it and two smaller ones."""
    return sorted({max(500, residents // 16), max(1000, residents // 4), residents})


def bench_town(residents: int, sizes: Sequence[int] | None = None, encoding: str = "cp932",
               workers: int = 1, project: int | None = None, beam_args: Sequence[str] = (),
               step: Callable[[str], None] | None = None) -> BenchResult:
    """Measure generated towns of ``sizes`` residents (default :func:`default_sizes`)."""
    ms = []
    for n in sorted(set(sizes or default_sizes(residents))):
        folder = Path(tempfile.mkdtemp(prefix="ikou-bench-town-"))
        try:
            if step:
                step(f"generate {n:,}")
            job = _generate(folder, n, encoding)
            if step:
                step(f"run {n:,}")
            ms.append(measure(job, f"{n:,}", n, workers, beam_args))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    rpr = sum(m.records for m in ms) / sum(m.residents for m in ms)
    return _result(ms, project, rpr, workers)


def bench_job(job: str | os.PathLike, workers: int = 1, project: int | None = None,
              beam_args: Sequence[str] = (), calibrate: Sequence[float] = (1 / 16, 1 / 4),
              step: Callable[[str], None] | None = None) -> BenchResult:
    """Measure a user's job, and generated towns of ``calibrate`` × its records (so the fixed
    and per-record costs can be told apart); project from all of them."""
    from ikou.pipeline.config.job import load_job

    spec = load_job(job)
    if step:
        step("run job")
    main = measure(Path(job), str(spec.name)[:11], None, workers, beam_args)
    juki = next((t for t in spec.targets if t.name == "juki"), None)
    ms = [main]
    for share in calibrate:
        folder = Path(tempfile.mkdtemp(prefix="ikou-bench-town-"))
        try:
            # about 1.94 legacy records a resident in the generated town
            n = max(500, int(main.records * share / 1.94))
            if step:
                step(f"generate {n:,}")
            town = _generate(folder, n, "cp932")
            if step:
                step(f"run {n:,}")
            ms.append(measure(town, f"town {n:,}", n, workers, beam_args))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    result = _result(ms, None, None, workers)
    if project:
        # residents → records with the job's own mix (its 住民記録 records are its residents)
        records = project * main.records / _juki_records(Path(job)) if juki else project
        result.project = project
        result.records_per_resident = records / project
        result.projection = {k: v["fixed"] + v["per_record"] * records
                             for k, v in result.model.items() if k != "total"}
        result.projection["total"] = _predict(result.model, records)
        result.projection["records"] = records
    return result


def _juki_records(job: Path) -> int:
    """Data records of the job's 住民記録 source (= residents), from its run's summary."""
    from ikou.pipeline.config.job import load_job

    spec = load_job(job)
    juki = next(t for t in spec.targets if t.name == "juki")
    layout = spec.sources[juki.source].layout
    stride = layout.record_length + len(layout.separator or b"")
    size = sum(os.path.getsize(p) for s, p in spec.inputs if s == juki.source)
    n = max(1, size // stride)
    return n - (1 if "header" in layout.kinds else 0) - (1 if "trailer" in layout.kinds else 0)


def format_bench(r: BenchResult) -> str:
    """The stage table of every measurement, the model and its error, the projection."""
    ms = r.measurements
    w = 12
    head = "residents" if all(m.residents for m in ms) else "run"
    lines = [f"seconds \\ {head}".ljust(16) + "".join(m.label[:w - 1].rjust(w) for m in ms)
             + ("   projected" if r.projection else "")]
    for stage in STAGES:
        lines.append(stage.ljust(16) + "".join(f"{m.stages.get(stage, 0):{w}.2f}" for m in ms)
                     + (f"{r.projection[stage]:{w}.1f}" if r.projection else ""))
    lines.append("wall".ljust(16) + "".join(f"{m.wall:{w}.2f}" for m in ms)
                 + (f"{r.projection['total']:{w}.1f}" if r.projection else ""))
    lines.append("records".ljust(16) + "".join(f"{m.records:{w},}" for m in ms)
                 + (f"{int(r.projection['records']):{w},}" if r.projection else ""))
    lines.append("MB".ljust(16) + "".join(f"{m.bytes / 1e6:{w}.1f}" for m in ms))
    lines.append("records/s".ljust(16) + "".join(f"{m.records / m.wall:{w},.0f}" for m in ms))
    lines.append("MB/s".ljust(16) + "".join(f"{m.bytes / 1e6 / m.wall:{w}.2f}" for m in ms))
    lines.append("peak RSS MB".ljust(16) + "".join(f"{m.peak_rss_mb:{w},.0f}" for m in ms))
    t = r.model["total"]
    lines.append(f"model: wall = {t['fixed']:.2f} s + {t['per_record'] * 1e6:.2f} s per "
                 f"million records (the sum of each stage's least-squares fit over "
                 f"{len(ms)} sizes)")
    lines.append("model error on the measured points: " + ", ".join(
        f"{e['label']} {e['error_pct']:+.1f} %" for e in r.errors))
    if r.holdout:
        h = r.holdout
        lines.append(f"largest predicted from the smaller sizes: {h['predicted']:.1f} s vs "
                     f"{h['measured']:.1f} s measured ({h['error_pct']:+.1f} %)")
    if r.projection:
        lines.append(f"projection for {r.project:,} residents "
                     f"({int(r.projection['records']):,} records): "
                     f"{r.projection['total']:.1f} s ({r.projection['total'] / 60:.1f} min) "
                     f"on this machine ({r.machine.get('cpus')} CPUs, {r.workers} worker"
                     f"{'s' if r.workers > 1 else ''})")
    if not all(m.gates_passed for m in ms):
        lines.append("note: some gates failed in a measured run (run with --gates warn)")
    return "\n".join(lines)
