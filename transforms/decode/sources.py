"""A whole migration job in one Beam pipeline: several legacy sources, decoded and mapped per block.

::

    (input index, path) for every input of every source      # input indexes are global to the job
      | PlanJobBlocks(layouts by input)                        # blocks of whole records
      | Reshuffle
      | DecodeMapBlocks(steps, staging)                        # decode → map → part file
      | FinalizeJob(steps, staging, sync marker)               # merged outputs, quarantine, summary

One element is one block of one input; a :class:`SourceStep` says what happens to the rows of
its source: with a ``mapper`` (a target) the block's good decoded rows are mapped to the standard
layout inside the same DoFn and only the standard rows are written as the block's part file;
rows the mapper cannot convert go to quarantine with their raw bytes and reasons, exactly like
decoding errors, so every record still ends in exactly one place. Without a mapper (a reference
source, e.g. 住登外) the decoded rows are written as they are.

This module does not know how mapping works: ``mapper`` is any picklable callable
``mapper(table) -> (standard table, rejects)`` with a ``schema`` attribute, where ``rejects`` is
a list of ``(row index in table, [reason dicts])``: a
:class:`~ikou.transforms.decode.protocols.Mapper` (``ikou.pipeline.steps.mapping.MappingStep``
is one). Other per-block steps can wrap the mapper the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ikou.transforms import fileio
from ikou.transforms.decode.beam import (
    RESULTS,
    BlockDoFn,
    GatherAndWrite,
    PlanBlocksFn,
)
from ikou.transforms.decode.blocks import (
    DEFAULT_BLOCK_SIZE,
    Block,
    BlockBytes,
    BlockDecoder,
    BlockResult,
    row_schema,
)
from ikou.transforms.decode.outputs import (
    OUTPUT_BATCH_ROWS,
    QUARANTINE_FILE,
    SUMMARY_FILE,
    merge_parts,
    summarize,
    write_quarantine,
)
from ikou.transforms.decode.protocols import LayoutLike, Mapper
from ikou.transforms.pause import pause_point

__all__ = ["DecodeMapBlocks", "FinalizeJob", "MappingBlockDecoder", "PlanJobBlocks",
           "SourceStep", "finalize_job"]

ROW_KIND = "data"


@dataclass(frozen=True)
class SourceStep:
    """One legacy source of a job and what becomes of its rows."""

    name: str                     # the source's name in the job
    layout: LayoutLike            # ikou.pipeline.config.layout.Layout (one row kind: ``data``)
    gaiji: dict
    inputs: tuple[int, ...]       # the job's input indexes that belong to this source
    output: str                   # staged file, relative: "juki.arrow", "reference/jutogai.arrow"
    mapper: Mapper | None = None  # see the module docstring; None: decoded rows as they are
    role: str = "target"          # "target", "reference" or "decoded"
    gaiji_fallback: bool = False  # write the 外字 table's fallback characters
    #: (row kind, staged file) for every kind whose rows are written; default: ``data`` only,
    #: to ``output``. A source published as decoded writes each row kind of its layout.
    kind_outputs: tuple[tuple[str, str], ...] = ()

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        return self.kind_outputs or ((ROW_KIND, self.output),)

    def schema_of(self, kind: str) -> pa.Schema:
        if self.mapper is not None:
            return self.mapper.schema
        return row_schema(self.layout, kind)

    @property
    def schema(self) -> pa.Schema:
        return self.schema_of(ROW_KIND)


class MappingBlockDecoder(BlockDecoder):
    """A :class:`BlockDecoder` that maps each block's good rows before writing them."""

    def __init__(self, layout: LayoutLike, gaiji: dict | None, staging_dir: str | None,
                 mapper: Mapper | None, gaiji_fallback: bool = False):
        if mapper is not None and getattr(layout, "shape", "flat") != "flat":
            # a mapping reads the flat columns (one per item), whatever the layout's shape
            layout = dataclasses.replace(layout, shape="flat")  # type: ignore[type-var]  # a dataclass
        super().__init__(layout, gaiji, staging_dir, gaiji_fallback)
        self.mapper = mapper

    def _emit_rows(self, block: Block, buf: BlockBytes, starts: np.ndarray, kind: str,
                   batch: pa.RecordBatch, good: np.ndarray, res: BlockResult, put) -> None:
        if self.mapper is None or not len(good):
            super()._emit_rows(block, buf, starts, kind, batch, good, res, put)
            return
        legacy = self.with_lineage(block, kind, batch, res.source, starts, good)
        t0 = time.perf_counter()
        mapped, rejects = self.mapper(pa.Table.from_batches([legacy]))
        t1 = time.perf_counter()
        res.seconds["mapping"] = res.seconds.get("mapping", 0.0) + (t1 - t0)
        rl = self.layout.record_length
        for row, reasons in rejects:
            local = int(good[row])
            s = int(starts[local])
            # V / VB: the record's bytes with its RDW, from the block's geometry
            put(local, kind, None if self.variable else bytes(buf[s:s + rl]), list(reasons))
        res.rows[kind] = int(mapped.num_rows)
        if mapped.num_rows:
            res.parts[kind] = self.write_part(block, kind, mapped)
        res.seconds["write"] = res.seconds.get("write", 0.0) + (time.perf_counter() - t1)


# -- Beam ----------------------------------------------------------------------------------

class PlanJobBlocks(beam.PTransform):
    """(input index, path) -> ``Block``s, each input with its own source's layout."""

    def __init__(self, steps: Sequence[SourceStep], block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.layouts = {i: s.layout for s in steps for i in s.inputs}
        self.block_size = block_size

    def expand(self, inputs):
        return inputs | "Split" >> beam.ParDo(PlanBlocksFn(self.layouts, self.block_size))


class _DecodeMapFn(BlockDoFn):
    def __init__(self, steps: Sequence[SourceStep], staging_dir: str):
        super().__init__()
        self.steps = list(steps)
        self.staging_dir = staging_dir
        self.decoders: dict[int, BlockDecoder] = {}

    def setup(self):
        for step in self.steps:
            dec = MappingBlockDecoder(step.layout, step.gaiji, self.staging_dir, step.mapper,
                                      step.gaiji_fallback)
            for i in step.inputs:
                self.decoders[i] = dec

    def decoder_for(self, block):
        return self.decoders[block.input_index]


class DecodeMapBlocks(beam.PTransform):
    """``Block`` -> ``BlockResult`` (``results``); the block's rows (mapped for a target) and
    its quarantined records are written as part files under the staging folder."""

    def __init__(self, steps: Sequence[SourceStep], staging_dir: str):
        super().__init__()
        self.steps = list(steps)
        self.staging_dir = staging_dir

    def expand(self, blocks):
        out = blocks | "DecodeMap" >> beam.ParDo(_DecodeMapFn(self.steps, self.staging_dir))
        return {RESULTS: out}


def _finalize(results, steps, staging_dir, sync_marker, batch_rows):
    return finalize_job(steps, results, None, staging_dir, sync_marker, batch_rows)


class FinalizeJob(GatherAndWrite):
    """Gathers everything and writes the staged outputs; output: the job summary dict."""

    def __init__(self, steps: Sequence[SourceStep], staging_dir: str, sync_marker: bytes,
                 batch_rows: int | None = None):
        super().__init__(_finalize, list(steps), staging_dir, sync_marker, batch_rows)


# -- finalizing ------------------------------------------------------------------------------

def _sum_into(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def finalize_job(steps: Sequence[SourceStep], results: Iterable[BlockResult],
                 quarantined: Iterable[dict] | None, staging_dir: str, sync_marker: bytes,
                 batch_rows: int = OUTPUT_BATCH_ROWS) -> dict[str, Any]:
    """Merge each source's parts into its output, write one ``quarantine.avro`` for the whole
    job (sorted by (input, record)) and return (and store as ``summary.json``) the summary:
    ``sources`` (per source: :func:`~ikou.transforms.decode.outputs.summarize` plus its outputs, the
    quarantine counted as the records of that source) and job totals.  The quarantined
    records come from the results' quarantine parts unless ``quarantined`` (dicts) is given."""
    ordered = sorted(results, key=lambda r: r.sort_key)
    qpath = FileSystems.join(staging_dir, QUARANTINE_FILE)
    t0 = time.perf_counter()
    q_by_input: dict[int, int] = {}
    if quarantined is None:
        n_quarantined = write_quarantine(ordered, qpath, sync_marker)
        for r in ordered:
            q_by_input[r.input_index] = q_by_input.get(r.input_index, 0) + r.n_quarantined
    else:
        quarantined = list(quarantined)
        n_quarantined = write_quarantine(quarantined, qpath, sync_marker)
        for q in quarantined:
            q_by_input[q["input"]] = q_by_input.get(q["input"], 0) + 1
    job: dict[str, Any] = {"sources": {}, "outputs": {}, "seconds": {}}
    for step in steps:
        inputs = set(step.inputs)
        rs = [r for r in ordered if r.input_index in inputs]
        s = summarize(step.layout, rs)
        s["outputs"] = {}
        for kind, name in step.outputs:
            path = FileSystems.join(staging_dir, name)
            if not fileio.is_url(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            parts = [r.parts[kind] for r in rs if kind in r.parts]
            rows = merge_parts(parts, step.schema_of(kind), path, batch_rows)
            pause_point("merge")
            out = {"path": path, "kind": kind, "rows": rows, "source": step.name,
                   "role": step.role}
            s["outputs"][name] = out
            job["outputs"][name] = out
        s["outputs"][QUARANTINE_FILE] = {"path": qpath, "kind": None,
                                         "rows": sum(q_by_input.get(i, 0) for i in inputs)}
        s["role"] = step.role
        s["output"] = step.output
        job["sources"][step.name] = s
        _sum_into(job["seconds"], s["seconds"])
    job["outputs"][QUARANTINE_FILE] = {"path": qpath, "kind": None, "rows": n_quarantined,
                                       "source": None, "role": "quarantine"}
    srcs = job["sources"].values()
    for key in ("records", "bytes_read", "data_records", "rows_written", "quarantined",
                "data_quarantined"):
        job[key] = sum(s[key] for s in srcs)
    for key in ("records_by_kind", "quarantined_by_code", "quarantined_by_kind",
                "tolerated_by_code", "gaiji"):
        total: dict[str, int] = {}
        for s in srcs:
            _sum_into(total, s[key])
        job[key] = dict(sorted(total.items()))
    job["seconds"]["finalize"] = time.perf_counter() - t0
    with FileSystems.create(FileSystems.join(staging_dir, SUMMARY_FILE),
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(json.dumps(job, ensure_ascii=False, indent=1, sort_keys=True).encode())
    return job
