"""What makes a path usable as an input file (shared by jobs, single-layout runs and
``ikou decode``, which imports nothing else of the job specification)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["COMPRESSED_SUFFIXES", "input_problem"]

#: Endings of compressed files: fixed-length records cannot be split at byte offsets inside a
#: compressed stream, and reading one as raw bytes would decode garbage, so they are refused.
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".xz", ".lzma", ".deflate",
                       ".zip", ".z", ".7z")


def input_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be an input (missing, not a file, compressed), or None."""
    p = Path(os.fspath(path))
    if not p.exists():
        return f"input not found: {p}"
    if not p.is_file():
        return f"input is not a file: {p}"
    if p.suffix.lower() in COMPRESSED_SUFFIXES:
        return (f"input is compressed ({p.suffix.lower()}): decompress it first (records are "
                f"read at byte offsets): {p}")
    return None
