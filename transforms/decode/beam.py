"""The DoFns and composites every decoding pipeline shares (the job's composites in
:mod:`ikou.transforms.decode.sources` are built on them): ``PlanBlocksFn`` (input → blocks of
whole records), ``BlockDoFn`` (one block decoded per element, Metrics counters) and
``GatherAndWrite`` (the small per-block results gathered once, then the staged outputs written
from the blocks' part files).

The work lives in :mod:`ikou.transforms.decode.blocks` and :mod:`ikou.transforms.decode.outputs`
(plain functions, also used by ``ikou decode``). A block's quarantined records (raw bytes +
reasons) are written by the block itself as its quarantine part file, like its rows, so no
element ever carries one record.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from ikou.transforms import METRICS_NAMESPACE
from ikou.transforms.decode.blocks import BlockDecoder, file_size, plan_blocks
from ikou.transforms.decode.outputs import OUTPUT_BATCH_ROWS
from ikou.transforms.decode.protocols import LayoutLike
from ikou.transforms.pause import pause_point

__all__ = ["QUARANTINE", "RESULTS", "BlockDoFn", "GatherAndWrite", "PlanBlocksFn"]

RESULTS = "results"
QUARANTINE = "quarantine"  # kept for imports: quarantined records travel as part files
_NS = METRICS_NAMESPACE


class PlanBlocksFn(beam.DoFn):
    """(input index, path) -> ``Block``s; ``layouts`` is one layout for every input or a
    mapping input index -> layout."""

    def __init__(self, layouts: LayoutLike | dict[int, LayoutLike], block_size: int):
        self.layouts = layouts
        self.block_size = block_size
        self.files = Metrics.counter(_NS, "input_files")
        self.blocks = Metrics.counter(_NS, "blocks_planned")

    def process(self, element):
        index, path = element
        layout = self.layouts[index] if isinstance(self.layouts, dict) else self.layouts
        blocks = plan_blocks(index, path, file_size(path), layout, self.block_size)
        self.files.inc()
        self.blocks.inc(len(blocks))
        yield from blocks


class BlockDoFn(beam.DoFn):
    """Decodes one block per element with the decoder :meth:`decoder_for` picks; emits the
    block's :class:`BlockResult` (its quarantined records are in its quarantine part file)."""

    def __init__(self):
        self.records = Metrics.counter(_NS, "records_read")
        self.rows = Metrics.counter(_NS, "rows_written")
        self.quarantined = Metrics.counter(_NS, "records_quarantined")
        self.bytes = Metrics.counter(_NS, "bytes_read")
        self.blocks = Metrics.counter(_NS, "blocks_decoded")

    def decoder_for(self, block) -> BlockDecoder:
        raise NotImplementedError

    def process(self, block):
        result = self.decoder_for(block).decode(block)
        self.blocks.inc()
        self.records.inc(result.n_records)
        self.bytes.inc(result.bytes_read)
        self.rows.inc(sum(result.rows.values()))
        self.quarantined.inc(result.n_quarantined)
        pause_point("decode")
        yield result.without_quarantine()


class GatherAndWrite(beam.PTransform):
    """Gathers every (small) ``BlockResult``, then calls
    ``write(results, spec, staging_dir, sync_marker, batch_rows)`` once to write the staged
    outputs from the blocks' part files; its return value (the summary) is the single output
    element."""

    def __init__(self, write, spec, staging_dir: str, sync_marker: bytes,
                 batch_rows: int | None = None):
        super().__init__()
        self.write = write
        self.spec = spec
        self.staging_dir = staging_dir
        self.sync_marker = sync_marker
        self.batch_rows = batch_rows or OUTPUT_BATCH_ROWS

    def expand(self, decoded):
        results = decoded[RESULTS] | "GatherResults" >> beam.combiners.ToList()
        return results | "Write" >> beam.Map(
            self.write, self.spec, self.staging_dir, self.sync_marker, self.batch_rows)
