"""Progress on the terminal for long commands (tqdm): the current stage, MB and records done,
MB/s and the time left of the decode stage, then the later stages with their elapsed time.

Nothing personal is shown: stage names, byte and record counts only. :func:`progress_wanted`
says whether to show it at all: only when standard error is a terminal and ``--no-progress``
was not given, so CI logs and redirected output stay clean.

The decode stage's progress is read from the staging folder: every decoded block writes its
part files ``parts/<input>-<block>-<kind>.arrow`` (or a quarantine part), whether the block ran
in this process or in one of Beam's workers, and the blocks are planned by pure arithmetic
(:func:`ikou.transforms.decode.blocks.plan_blocks`), so a block seen there is known by its bytes
and records. A thread polls the folder a few times a second.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["NullProgress", "RunProgress", "StageProgress", "progress_wanted"]

_PART = re.compile(r"^(\d{5})-(\d{7})[-.]")


def progress_wanted(disabled: bool = False, stream: TextIO | None = None) -> bool:
    """Show progress? Not with ``--no-progress``, not when the stream is not a terminal."""
    stream = sys.stderr if stream is None else stream
    if disabled or os.environ.get("IKOU_NO_PROGRESS", "") not in ("", "0"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    """The terminal's width (a terminal that reports none, e.g. a fresh pty: 100)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 100
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 100


class NullProgress:
    """No progress at all (the default of library calls)."""

    def start_pipeline(self, *args, **kwargs) -> None:
        pass

    def stage(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class StageProgress(NullProgress):
    """One line: the current stage and its elapsed time (for steps without a byte count)."""

    def __init__(self, command: str, stream: TextIO | None = None):
        from tqdm import tqdm

        self.command = command
        stream = stream or sys.stderr
        self.bar = tqdm(total=None, desc=command, unit="", file=stream,
                        bar_format="{desc} {elapsed}", leave=False, ncols=_columns(stream))

    def stage(self, name: str) -> None:
        self.bar.set_description_str(f"{self.command}: {name}")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class RunProgress(NullProgress):
    """A job run: bytes and records of the decoded blocks, then the later stages."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.25):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_pipeline(self, staging: str | os.PathLike, blocks: dict[tuple[int, int],
                       tuple[int, int]], total_bytes: int, total_records: int) -> None:
        """Follow the decode stage: ``blocks`` maps (input, block) → (bytes, records)."""
        from tqdm import tqdm

        self.bar = tqdm(total=total_bytes, desc="decode + map", unit="B", unit_scale=True,
                        unit_divisor=1000, file=self.stream, ncols=_columns(self.stream),
                        leave=False,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                   "[{rate_fmt}, {remaining} left] {postfix}")
        self._records_total = total_records
        self._parts = Path(staging) / "parts"
        self._blocks = blocks
        self._seen: set[tuple[int, int]] = set()
        self._records = 0
        self._thread = threading.Thread(target=self._poll, name="ikou-progress", daemon=True)
        self._thread.start()

    def _update(self) -> None:
        try:
            names = os.listdir(self._parts)
        except OSError:
            return
        done = 0
        for name in names:
            m = _PART.match(name)
            if not m:
                continue
            key = (int(m.group(1)), int(m.group(2)))
            if key in self._seen or key not in self._blocks:
                continue
            self._seen.add(key)
            b, r = self._blocks[key]
            done += b
            self._records += r
        if done:
            self.bar.set_postfix_str(f"{self._records:,}/{self._records_total:,} records",
                                     refresh=False)
            self.bar.update(done)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._update()

    def _stop_polling(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._update()  # the blocks finished since the last poll
            self.bar.refresh()

    def stage(self, name: str) -> None:
        """The decode stage is over (or never ran): show ``name`` with its elapsed time."""
        self._stop_polling()
        from tqdm import tqdm

        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(total=None, desc=name, file=self.stream, leave=False,
                        ncols=_columns(self.stream), bar_format="{desc} {elapsed}")
        self.bar.refresh()

    def close(self) -> None:
        self._stop_polling()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def planned_blocks(steps: Sequence, inputs: Sequence[str], block_size: int
                   ) -> tuple[dict[tuple[int, int], tuple[int, int]], int, int]:
    """(input, block) → (bytes, records) of every block a job will decode, and the totals."""
    from ikou.transforms.decode.blocks import plan_blocks

    layout_of = {i: s.layout for s in steps for i in s.inputs}
    blocks: dict[tuple[int, int], tuple[int, int]] = {}
    for i, path in enumerate(inputs):
        for b in plan_blocks(i, path, os.path.getsize(path), layout_of[i], block_size):
            blocks[(b.input_index, b.block_index)] = (b.length, b.n_records + (1 if b.tail
                                                                               else 0))
    return (blocks, sum(b for b, _ in blocks.values()), sum(r for _, r in blocks.values()))
