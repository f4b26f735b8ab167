"""The single-layout run: ``ikou run --layout L [--gaiji G] --out DIR INPUT...``.

The files of one layout are a one-source job (:func:`ikou.pipeline.config.job.job_for_layout`)
run by :func:`ikou.pipeline.run.job.run_job` like any other: decoded on Beam, every row kind
of the layout written as ``<layout>.arrow`` (``<layout>.<kind>.arrow`` for other kinds),
reconciled, and published atomically as ``DIR/current`` with ``quarantine.avro`` and
``manifest.json``. Without a mapping there are no gates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ikou.pipeline.config.gaiji import load_gaiji
from ikou.pipeline.config.job import job_for_layout
from ikou.pipeline.config.layout import Layout, load_layout
from ikou.pipeline.run.job import JobResult, run_job
from ikou.transforms.decode.blocks import DEFAULT_BLOCK_SIZE

__all__ = ["run_migration"]


def run_migration(layout: Layout | str | os.PathLike, gaiji: dict | str | os.PathLike | None,
                  inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  beam_args: Sequence[str] = (), block_size: int = DEFAULT_BLOCK_SIZE,
                  gaiji_fallback: bool = False, started: float | None = None,
                  report_lang: str = "ja") -> JobResult:
    """Decode, reconcile and publish the files of one layout; raises
    :class:`~ikou.pipeline.errors.ReconciliationError` (nothing published) or a
    :class:`~ikou.pipeline.errors.UserError`.

    ``layout`` / ``gaiji`` are loaded objects or file paths; ``gaiji_fallback`` writes the
    外字 table's fallback characters (its ``fallback`` column) instead of the primary ones.
    """
    if not isinstance(layout, Layout):
        layout = load_layout(layout)
    gaiji_path = None
    if gaiji is not None and not isinstance(gaiji, dict):
        gaiji_path, gaiji = gaiji, load_gaiji(gaiji)
    job = job_for_layout(layout, gaiji or {}, inputs, out_dir, gaiji_fallback, block_size,
                         gaiji_path)
    return run_job(job, out_dir, beam_args=beam_args, block_size=block_size, started=started,
                   report_lang=report_lang)
