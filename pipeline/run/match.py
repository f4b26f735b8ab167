"""``ikou match CONFIG.yaml``: record matching (名寄せ) alone, on Beam.

    ikou match CONFIG.yaml [--out DIR] [--truth truth.jsonl] [--match_shards N]
               [--match_slice_rows N] [Beam options]

The configuration (:mod:`ikou.pipeline.config.matching`) names the two inputs (Arrow IPC files,
``path:`` relative to the configuration's folder). The pipeline is
:class:`ikou.transforms.match.beam.MatchRecords` on Beam's FnApiRunner unless ``--runner`` names
another (the runner selection of ``ikou run``; ``--direct_running_mode=multi_processing
--direct_num_workers=2`` and every other Beam option pass through). The outputs are staged in
``DIR/.ikou-match-*`` and moved into ``DIR`` when complete, ``manifest.json`` last:
``links.arrow`` (both ids, method, decision, score, per-field levels and weights),
``review.arrow`` (the ``possible`` links), ``unmatched.arrow``, and the manifest (inputs and
outputs with sha256, counts, the model, timings, runner, versions, and — with ``--truth`` —
precision / recall / F1).

Truth files (JSON lines): either ``{"right_id": ..., "left_id": ... or null}``, or the
generator's ``truth.jsonl`` (``file``, ``record``, ``atena_no``): then the right table's id is
its lineage column ``_record`` and the lines of its ``_source`` file are used; lines with
``"quarantined": true`` (records the generator made corrupt: never decoded into a row) are
left out.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ikou.kernels._match_common import MatchConfigError
from ikou.pipeline.config.matching import MatchConfig, load_config, variant_map
from ikou.pipeline.errors import InputError
from ikou.pipeline.run.beam import run_pipeline
from ikou.pipeline.steps.manifest import (
    MANIFEST_FILE,
    build_manifest,
    describe_file,
    file_digest,
    write_manifest,
)
from ikou.transforms import arrowio
from ikou.transforms.match.beam import (
    DEFAULT_ROWS_PER_SLICE,
    DEFAULT_SHARDS,
    SUMMARY_FILE,
    MatchRecords,
)

__all__ = ["MatchRun", "accuracy", "format_accuracy", "format_counts", "load_truth", "run_match"]

OUTPUT_FILES = ("links.arrow", "review.arrow", "unmatched.arrow")


@dataclass
class MatchRun:
    out_dir: str
    counts: dict[str, Any]
    accuracy: dict[str, Any] | None
    manifest: dict[str, Any] = field(default_factory=dict)


# --- accuracy ------------------------------------------------------------------------------------


def load_truth(path: str | os.PathLike, right_source: str | None = None) -> dict:
    """``{right id: true left id or None}`` from a truth file (see the module docstring)."""
    truth: dict = {}
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"truth file not found: {path}") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise InputError(f"{path}:{n}: a truth line must be an object")
            if "right_id" in rec:
                truth[rec["right_id"]] = rec.get("left_id")
            elif {"file", "record", "atena_no"} <= rec.keys():
                if rec.get("quarantined"):
                    continue
                if right_source is None or rec["file"] == right_source:
                    truth[rec["record"]] = rec["atena_no"]
            else:
                raise InputError(f"{path}:{n}: a truth line needs right_id/left_id or "
                                 "file/record/atena_no")
    return truth


def accuracy(links: pa.Table, truth: dict, right_ids: Sequence, left_ids: Sequence) -> dict:
    """Precision, recall and F1 of ``match`` and of ``match + possible``.

    A link is correct when its left id is the right record's true left id; recall counts the
    right records (``right_ids``) whose true left id is among ``left_ids`` (the linkable ones).
    """
    known_left = set(left_ids)
    relevant = sum(1 for r in right_ids if truth.get(r) is not None and truth[r] in known_left)
    lid = links["left_id"].to_pylist()
    rid = links["right_id"].to_pylist()
    decision = links["decision"].combine_chunks().dictionary_decode().to_pylist()
    out = {"linkable_right_records": relevant}
    for name, keep in (("match", {"match"}), ("match+possible", {"match", "possible"})):
        sel = [i for i, d in enumerate(decision) if d in keep]
        correct = sum(1 for i in sel if truth.get(rid[i]) == lid[i] and lid[i] is not None)
        p = correct / len(sel) if sel else 0.0
        r = correct / relevant if relevant else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[name] = {"links": len(sel), "correct": correct, "precision": round(p, 4),
                     "recall": round(r, 4), "f1": round(f1, 4)}
    return out


def format_accuracy(acc: dict) -> str:
    return "\n".join(
        f"  {name:<15} precision {acc[name]['precision']:.4f}  recall {acc[name]['recall']:.4f}"
        f"  F1 {acc[name]['f1']:.4f}  ({acc[name]['correct']} of {acc[name]['links']} links "
        f"correct, {acc['linkable_right_records']} linkable)"
        for name in ("match", "match+possible"))


# --- running -------------------------------------------------------------------------------------


def _input_path(cfg: MatchConfig, side: str, base: Path) -> str:
    path = cfg.left_path if side == "left" else cfg.right_path
    if path is None:
        raise MatchConfigError(f"the configuration names no {side} path")
    full = base / path
    if not full.is_file():
        raise InputError(f"{side} input not found: {full}")
    return str(full.resolve())


def _read_column(path: str, column: str | None) -> list:
    table = arrowio.read_table(path)
    if column is None:
        return list(range(table.num_rows))
    return table.column(column).to_pylist()


def _right_source(path: str) -> str | None:
    table = arrowio.read_table(path)
    if "_source" not in table.column_names or table.num_rows == 0:
        return None
    values = table.column("_source").unique().to_pylist()
    return values[0] if len(values) == 1 else None


def run_match(config: str | os.PathLike, out_dir: str | os.PathLike | None = None,
              beam_args: Sequence[str] = (), truth: str | os.PathLike | None = None,
              shards: int | None = None, slice_rows: int | None = None) -> MatchRun:
    """Run the matching of ``config`` on Beam into ``out_dir``; see the module docstring."""
    t0 = time.perf_counter()
    cfg = load_config(config)
    base = Path(config).parent
    shards = DEFAULT_SHARDS if shards is None else shards
    slice_rows = DEFAULT_ROWS_PER_SLICE if slice_rows is None else slice_rows
    if shards < 1 or slice_rows < 1:
        raise InputError("--match_shards and --match_slice_rows must be positive")
    paths = {side: _input_path(cfg, side, base) for side in ("left", "right")}
    if truth is not None and not os.path.isfile(truth):
        raise InputError(f"truth file not found: {truth}")
    variants = variant_map(cfg)
    # planned (and columns checked) before anything is written; out_dir is set once staged
    match = MatchRecords(cfg, variants, paths["left"], paths["right"], "", shards, slice_rows)
    rows = {"left": match.n_left, "right": match.n_right}
    out = Path(out_dir if out_dir is not None else f"{cfg.name}-match").resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder is a file: {out}")
    out.mkdir(parents=True, exist_ok=True)
    timings = {"plan": time.perf_counter() - t0}
    staging = tempfile.mkdtemp(prefix=".ikou-match-", dir=out)
    try:
        t1 = time.perf_counter()
        match.out_dir = staging
        runner = run_pipeline(lambda p: p | "Match" >> match, beam_args, shards=shards,
                              slice_rows=slice_rows)
        timings["pipeline"] = time.perf_counter() - t1
        with open(os.path.join(staging, SUMMARY_FILE), encoding="utf-8") as fh:
            summary = json.load(fh)
        acc = None
        if truth is not None:
            links = arrowio.read_table(os.path.join(staging, "links.arrow"))
            table_truth = load_truth(truth, _right_source(paths["right"]))
            acc = accuracy(links, table_truth, _read_column(paths["right"], cfg.right_id),
                           _read_column(paths["left"], cfg.left_id))
        if (out / MANIFEST_FILE).exists():  # a previous run's manifest must not vouch for these
            (out / MANIFEST_FILE).unlink()
        outputs = []
        for name in OUTPUT_FILES:
            dest = out / name
            os.replace(os.path.join(staging, name), dest)
            outputs.append(describe_file(str(dest), name=name,
                                         rows=summary["files"][name[:-len(".arrow")]]["rows"]))
        timings["total"] = time.perf_counter() - t0
        inputs = [describe_file(path, side=side, path=path, rows=rows[side])
                  for side, path in paths.items()]
        cdigest, _ = file_digest(str(config))
        manifest = build_manifest("match", {
            "name": cfg.name,
            "config": {"path": str(Path(config).resolve()), "sha256": cdigest},
            "inputs": inputs,
            "outputs": outputs,
            "counts": summary["counts"],
            "model": summary["model"],
            "accuracy": acc,
        }, timings, runner)
        write_manifest(str(out), manifest)
        return MatchRun(str(out), summary["counts"], acc, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def format_counts(run: MatchRun) -> str:
    c = run.counts
    return (f"ikou match: {c['right_records']} right records against {c['left_records']} left: "
            f"{c['key_links']} linked by key, {c['match'] - c['key_links']} fuzzy matches, "
            f"{c['possible']} possible (review), {c['unmatched']} unmatched; "
            f"{c['candidate_pairs']} candidate pairs -> {run.out_dir}")
