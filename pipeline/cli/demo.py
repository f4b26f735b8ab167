"""``ikou demo``: generate a synthetic municipality (住民記録, 個人住民税, 国保, 住登外), run its
job (three standard files, gated and published), print a short summary.

The summary shows counts, reasons, throughput and where the outputs are: never
a decoded value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ikou.pipeline.cli.report import format_job_summary
from ikou.pipeline.cli.report import rel_path as _rel

__all__ = ["run_demo"]


#: Share of tax and 国保 records whose 宛名番号 the demo's generator drops or mistypes (record
#: matching resolves them before the gates).
DEMO_KEY_ERROR_SHARE = 0.05
#: Share of tax and 国保 records the demo's generator makes corrupt (bad bytes, non-digits, bad
#: packed / zoned signs): they land in quarantine.avro while the rest still passes the gates.
DEMO_SOURCE_CORRUPT_SHARE = 0.003
#: Share of corrupt 住民記録 records (bad bytes, unmapped 外字, non-digits, a cut double-byte
#: character, an impossible date, a truncated last record): quarantined; the tax and 国保 records
#: of those residents then have no resident to link to and go to review, not to the gates.
DEMO_CORRUPT_SHARE = 0.002


def run_demo(workdir: str, residents: int = 10000, seed: int = 20260401,
             corrupt_share: float = DEMO_CORRUPT_SHARE, beam_args: Sequence[str] = (),
             echo: Callable[[str], None] | None = None,
             key_error_share: float = DEMO_KEY_ERROR_SHARE, gates: str = "fail",
             source_corrupt_share: float = DEMO_SOURCE_CORRUPT_SHARE, encoding: str = "cp932",
             report_lang: str = "ja", progress=None):
    """Generate every source into ``<workdir>/input`` (with mapping files and ``job.yaml``),
    run the job into ``<workdir>/out``; returns the ``JobResult``."""
    from ikou.pipeline.config.job import write_demo_job
    from ikou.pipeline.run.job import run_job
    from ikou.pipeline.synth.municipality import (
        ALL_SOURCES,
        HOUSEHOLD_CASES,
        generate_municipality,
    )

    workdir = os.path.abspath(workdir)
    input_dir = os.path.join(workdir, "input")
    out_dir = os.path.join(workdir, "out")
    gen = generate_municipality(input_dir, residents, seed, corrupt_share=corrupt_share,
                                sources=ALL_SOURCES, key_error_share=key_error_share,
                                source_corrupt_share=source_corrupt_share,
                                household=HOUSEHOLD_CASES)
    job = write_demo_job(input_dir, gen.sources)
    if encoding != "cp932":
        from ikou.pipeline.synth.encodings import transcode_town

        transcode_town(input_dir, encoding)
    if echo:
        echo(f"ikou demo: {residents:,} residents generated (seed {seed}, corrupt share "
             f"{corrupt_share}, source corrupt share {source_corrupt_share}, key error share "
             f"{key_error_share}) in {_rel(input_dir)}; job {_rel(str(job))}")
        made = {n: q for n, q in gen.quarantined_by_source.items() if q}
        if made:
            echo("  generated corrupt records (expected in quarantine): "
                 + ", ".join(f"{n} {q:,}" for n, q in made.items()))
    result = run_job(job, out_dir, gates, beam_args, truth=gen.truth, report_lang=report_lang,
                     progress=progress)
    if echo:
        echo(format_job_summary(result))
    return result
