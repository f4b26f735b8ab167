"""Variable-length copies of fixed-length files: RDWs (V) and blocks behind BDWs (VB).

``to_variable(data, layout, "VB", trim=True)`` turns the fixed records of ``data`` (the file's
bytes, read with ``layout``) into a V or VB file: every record behind a 4-byte RDW, VB records
gathered into blocks of at most ``block_size`` bytes behind a 4-byte BDW. With ``trim`` the
trailing spaces of each record are dropped so lengths vary, but never inside a field that holds
data (the cut moves to that field's end: a field is either whole or absent, fillers aside).
``variable_layout_yaml`` writes the matching layout. Used by ``ikou generate --record-format``,
the tests and ``benchmarks/bench_records.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["convert_export", "to_variable", "variable_layout_text"]


def _word(length: int, little: bool) -> bytes:
    word = struct.pack(">HH", length, 0)
    return word[::-1] if little else word


def _cut_points(layout) -> dict[bytes | None, tuple[list[tuple[int, int]], int]]:
    """Per record-type code: the (offset, end) of every data field and the record-type end."""
    rt_end = sum(layout.record_type) if layout.record_type else 1
    out = {}
    for kind in layout.kinds.values():
        spans = sorted((f.offset, f.end) for f in kind.fields if f.type != "filler")
        out[kind.code] = (spans, rt_end)
    return out


def _trimmed_length(rec: bytes, spans: list[tuple[int, int]], minimum: int,
                    pad: bytes = b" ") -> int:
    n = max(len(rec.rstrip(pad)), minimum, 1)
    for off, end in spans:
        if off < n < end:
            return end
    return n


def to_variable(data: bytes, layout, record_format: str = "V", *, trim: bool = False,
                byte_order: str = "big", includes_header: bool = True,
                block_size: int = 32760, bdw_byte_order: str = "big",
                bdw_includes_header: bool = True) -> bytes:
    """The records of the fixed-length ``data`` as a V / VB file (see the module docstring)."""
    if record_format not in ("V", "VB"):
        raise ValueError(f"record_format must be V or VB, got {record_format!r}")
    rl, stride = layout.record_length, layout.stride
    little = byte_order == "little"
    cuts = _cut_points(layout)
    pad = b" " if layout.encoding == "cp932" else b"\x40"  # EBCDIC space
    rt = layout.record_type
    records = []
    for start in range(0, len(data) - rl + 1, stride):
        rec = data[start:start + rl]
        if trim:
            code = None if rt is None else rec[rt[0]:rt[0] + rt[1]]
            spans, minimum = cuts.get(code, cuts.get(None, ([], 1)))
            rec = rec[:_trimmed_length(rec, spans, minimum, pad)]
        records.append(_word(len(rec) + (4 if includes_header else 0), little) + rec)
    if record_format == "V":
        return b"".join(records)
    out, block, used = [], [], 4
    blittle = bdw_byte_order == "little"

    def close():
        if block:
            out.append(_word(used if bdw_includes_header else used - 4, blittle))
            out.extend(block)

    for r in records:
        if used + len(r) > block_size and block:
            close()
            block, used = [], 4
        block.append(r)
        used += len(r)
    close()
    return b"".join(out)


def variable_layout_text(layout_text: str, record_format: str, *, byte_order: str = "big",
                         includes_header: bool = True) -> str:
    """A fixed-length layout's YAML text as the V / VB layout of :func:`to_variable`'s file."""
    lines = []
    for line in layout_text.splitlines():
        if line.startswith("record_separator:"):
            continue
        lines.append(line)
        if line.startswith("record_length:"):
            lines.append(f"record_format: {record_format}")
            if byte_order != "big" or not includes_header:
                lines.append(f"rdw: {{byte_order: {byte_order}, includes_header: "
                             f"{'true' if includes_header else 'false'}}}")
    return "\n".join(lines) + "\n"


def convert_export(data_path: str | Path, layout_path: str | Path, record_format: str,
                   trim: bool = True) -> None:
    """Rewrite a generated export and its layout in place as V / VB (trailing spaces
    trimmed)."""
    from ikou.pipeline.config.layout import load_layout

    layout = load_layout(layout_path)
    data_path, layout_path = Path(data_path), Path(layout_path)
    data = data_path.read_bytes()
    data_path.write_bytes(to_variable(data, layout, record_format, trim=trim))
    layout_path.write_text(variable_layout_text(layout_path.read_text(encoding="utf-8"),
                                                record_format), encoding="utf-8")
