"""The synthetic municipality in a mainframe encoding (``ikou generate --encoding …``).

The town is generated in CP932 as always (same seed, same people), then each export is
transcoded field by field into the target encoding: text through the encoding's tables with its
shift codes (a field grows by what its shift codes need: each layout's offsets are recomputed,
the same for every record), numbers as EBCDIC digits, packed / zoned / bytes fields copied. The
town's 外字 move to the encoding's user-defined area with their own 外字 table (``code`` +
``encoding`` columns); a character the encoding has no code for becomes a 外字 too, as a
migration would do. Decoded, the transcoded town gives the same columns as the CP932 one.
Records that do not decode in CP932 (the generator's deliberate corruptions) are written with
an invalid code of the target encoding, so they are quarantined in both.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from ikou.kernels import get_encoding
from ikou.pipeline.config.gaiji import is_user_defined, load_gaiji_table
from ikou.pipeline.config.layout import ENCODED_TYPES, load_layout

__all__ = ["GENERATE_ENCODINGS", "transcode_town"]

GENERATE_ENCODINGS = ("ibm930", "ibm939", "ibm1390", "jef", "keis83", "jips-e")
_LEADS = set(range(0x81, 0xA0)) | set(range(0xE0, 0xFD))


class _Encoder:
    def __init__(self, name: str, gaiji: dict[int, str]):
        self.enc = enc = get_encoding(name)
        self.name = name
        self.single = {}
        for b, s in enumerate(enc.single):
            if s is not None and s not in self.single and b not in (0x0E, 0x0F):
                self.single[s] = b
        self.double: dict[str, int] = {}
        for c in sorted(enc.double):
            self.double.setdefault(enc.double[c], c)
        self.double["\u3000"] = enc.spaces[0]
        self.free = iter(c for c in range(65536) if enc.user(c))
        self.cp932_gaiji: dict[int, int] = {}  # CP932 user code -> target user code
        self.rows: list[tuple[int, str, str]] = []  # target code, unicode, note
        self.extra: dict[str, int] = {}
        for code in sorted(gaiji):
            t = next(self.free)
            self.cp932_gaiji[code] = t
        self.gaiji_text = gaiji
        self.si = enc.shift_in[0] if enc.mixed else b""
        self.so = enc.shift_out[0] if enc.mixed else b""
        self.invalid = next(c for c in range(0x4140, 0xFFFF)
                            if c not in enc.double and not enc.user(c) and c not in enc.unmappable
                            and (c >> 8) not in (0x0E, 0x0F) and (c & 0xFF) not in (0x0E, 0x0F))
        self.unmapped = next(self.free)  # a user code with no row: UNMAPPED_GAIJI

    def char_code(self, ch: str) -> int:
        code = self.double.get(ch)
        if code is None:
            code = self.extra.get(ch)
            if code is None:
                code = self.extra[ch] = next(self.free)
        return code

    def text(self, raw: bytes) -> bytes:
        """CP932 bytes of one text field → the target encoding (starts and ends single-byte)."""
        out, dbl, i, n = bytearray(), False, 0, len(raw)

        def put_double(code: int) -> None:
            nonlocal dbl
            if not dbl:
                out.extend(self.si)
                dbl = True
            out.extend(code.to_bytes(2, "big"))

        while i < n:
            c = raw[i]
            if c in _LEADS:
                if i + 1 >= n:  # cut: keep it cut
                    put_double(self.invalid)
                    out.pop()
                    dbl = True
                    i += 1
                    break
                code = c << 8 | raw[i + 1]
                i += 2
                if is_user_defined(code):
                    put_double(self.cp932_gaiji.get(code, self.unmapped))
                    continue
                try:
                    s = bytes([c, raw[i - 1]]).decode("cp932")
                except UnicodeDecodeError:
                    put_double(self.invalid)
                    continue
            else:
                try:
                    s = bytes([c]).decode("cp932")
                except UnicodeDecodeError:
                    put_double(self.invalid)
                    i += 1
                    continue
                i += 1
            b = self.single.get(s)
            if b is not None and s not in ("\u3000",):
                if dbl:
                    out.extend(self.so)
                    dbl = False
                out.append(b)
            else:
                put_double(self.char_code(s))
        if dbl and out and len(out) >= 1:
            out.extend(self.so)
        return bytes(out)

    def digits(self, raw: bytes) -> bytes:
        """ASCII number / date bytes → EBCDIC (00 / FF kept; a byte with no code → 3F)."""
        return bytes(self._digit(b) for b in raw)

    def _digit(self, b: int) -> int:
        if b in (0x00, 0xFF):
            return b
        s = chr(b) if b < 0x80 else None
        return self.single.get(s, 0x3F) if s is not None else 0x3F


def _fields(layout):
    for kind in layout.kinds.values():
        yield from ((kind, f) for f in kind.fields)


def transcode_town(folder: str | Path, encoding: str) -> dict[str, int]:
    """Rewrite the generated town in ``folder`` (its job's sources, layouts, 外字 table) in
    ``encoding``; returns the records written per source."""
    folder = Path(folder)
    job = yaml.safe_load((folder / "job.yaml").read_text(encoding="utf-8"))
    gaiji_table = load_gaiji_table(folder / job["gaiji"]) if job.get("gaiji") else None
    gaiji = dict(gaiji_table.mapping) if gaiji_table else {}
    enc = _Encoder(encoding, gaiji)
    counts = {}
    for src in job["sources"]:
        layout_path = folder / src["layout"]
        layout = load_layout(layout_path)
        stride = layout.stride
        inputs = [folder / p for p in src["inputs"]]
        # pass 1: each record's fields transcoded; the longest of each text field
        per_file = []
        grow: dict[tuple[str, str], int] = {}
        for path in inputs:
            data = path.read_bytes()
            recs = []
            for start in range(0, len(data) - layout.record_length + 1, stride):
                rec = data[start:start + layout.record_length]
                kind_name = layout.kind_for_code(
                    rec[layout.record_type[0]:sum(layout.record_type)]) if layout.record_type else "data"
                kind_name = kind_name or "data"
                kind = layout.kinds[kind_name]
                parts = {}
                for f in kind.fields:
                    raw = rec[f.offset:f.end]
                    if f.type == "text":
                        b = enc.text(raw)
                        grow[(kind_name, f.name)] = max(grow.get((kind_name, f.name), f.length), len(b))
                    elif f.type in ENCODED_TYPES:
                        b = enc.digits(raw)
                    elif f.type == "filler":
                        b = bytes([enc.single[" "]]) * f.length
                    else:
                        b = raw
                    parts[f.name] = b
                recs.append((kind_name, rec, parts))
            per_file.append((path, recs, data[len(data) - (len(data) % stride):] if stride else b""))
        # the new layout: fields moved by what the fields before them grew
        doc = yaml.safe_load(layout_path.read_text(encoding="utf-8"))
        doc["encoding"] = encoding
        kinds_doc = doc["kinds"] if "kinds" in doc else {"data": {"fields": doc["fields"]}}
        new_len = layout.record_length
        moves: dict[str, dict[str, tuple[int, int]]] = {}
        for kind_name, kdoc in kinds_doc.items():
            shift = 0
            moves[kind_name] = {}
            for fdoc in sorted(kdoc["fields"], key=lambda d: d["offset"]):
                length = grow.get((kind_name, fdoc["name"]), fdoc["length"])
                fdoc["offset"] += shift
                shift += length - fdoc["length"]
                fdoc["length"] = length
                moves[kind_name][fdoc["name"]] = (fdoc["offset"], length)
            new_len = max(new_len, layout.record_length + shift)
        doc["record_length"] = new_len
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)
        layout_path.write_text(text, encoding="utf-8")
        sp = bytes([enc.single[" "]])
        pad_text = {}
        for kind_name, kdoc in kinds_doc.items():
            for fdoc in kdoc["fields"]:
                pad_text[(kind_name, fdoc["name"])] = fdoc["type"]
        n = 0
        for path, recs, tail in per_file:
            out = io.BytesIO()
            for kind_name, rec, parts in recs:
                new = bytearray(sp * new_len)
                if layout.record_type:
                    o, ln = layout.record_type
                    new[o:o + ln] = enc.digits(rec[o:o + ln])
                for name, b in parts.items():
                    off, ln = moves[kind_name][name]
                    ftype = pad_text[(kind_name, name)]
                    new[off:off + ln] = (b + (sp * ln if ftype == "text" else b""))[:ln] \
                        if ftype == "text" else b
                out.write(bytes(new) + layout.separator)
                n += 1
            if tail:  # a truncated last record: its record type in the target encoding
                tail = bytearray(tail)
                if layout.record_type and len(tail) >= sum(layout.record_type):
                    o, ln = layout.record_type
                    tail[o:o + ln] = enc.digits(bytes(tail[o:o + ln]))
                out.write(bytes(tail))
            path.write_bytes(out.getvalue())
        counts[src["name"]] = n
    # the 外字 table in the target encoding
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "encoding", "unicode", "mj", "note", "fallback"])
    for code, target in sorted(enc.cp932_gaiji.items(), key=lambda kv: kv[1]):
        w.writerow([f"{target:04X}", encoding, _u(gaiji[code]),
                    gaiji_table.mj.get(code, "") if gaiji_table else "",
                    f"CP932 {code:04X}", _u(gaiji_table.fallback[code])
                    if gaiji_table and code in gaiji_table.fallback else ""])
    for ch, target in sorted(enc.extra.items(), key=lambda kv: kv[1]):
        w.writerow([f"{target:04X}", encoding, _u(ch), "", f"no {encoding} code", ""])
    (folder / (job.get("gaiji") or "gaiji.csv")).write_text(buf.getvalue(), encoding="utf-8")
    return counts


def _u(s: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in s)
