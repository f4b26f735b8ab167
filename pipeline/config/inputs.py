"""What makes a path usable as an input file (shared by jobs, single-layout runs and
``ikou decode``, which imports nothing else of the job specification)."""

from __future__ import annotations

import os
from pathlib import Path

from ikou.transforms import fileio

__all__ = ["COMPRESSED_SUFFIXES", "Url", "input_problem"]

#: Endings of compressed files: fixed-length records cannot be split at byte offsets inside a
#: compressed stream, and reading one as raw bytes would decode garbage, so they are refused.
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".xz", ".lzma", ".deflate",
                       ".zip", ".z", ".7z")


def input_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be an input (missing, not a file, compressed), or None."""
    if fileio.is_url(path):
        p = Url(path)
        if p.suffix.lower() in COMPRESSED_SUFFIXES:
            return (f"input is compressed ({p.suffix.lower()}): decompress it first (records "
                    f"are read at byte offsets): {p}")
        return None if fileio.match(str(p)) else f"input not found: {p}"
    p = Path(os.fspath(path))
    if not p.exists():
        return f"input not found: {p}"
    if not p.is_file():
        return f"input is not a file: {p}"
    if p.suffix.lower() in COMPRESSED_SUFFIXES:
        return (f"input is compressed ({p.suffix.lower()}): decompress it first (records are "
                f"read at byte offsets): {p}")
    return None


class Url(str):
    """A path on one of Beam's file systems (``s3://``, ``gs://``, ...), kept as written; it
    answers the few ``Path`` questions a job asks of its inputs and output folder."""

    def absolute(self) -> Url:
        return self

    def resolve(self) -> Url:
        return self

    @property
    def name(self) -> str:
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.name)[1]

    def __truediv__(self, other) -> Url:
        return Url(self.rstrip("/") + "/" + str(other))
