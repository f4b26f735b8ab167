"""Text helpers of the synthetic municipality generator: word lists, CP932 pieces, 外字, kana.

Everything here works on Python strings and CPython's ``cp932`` codec only (never on
``ikou.kernels``), so the generator's expected values stay independent of the decoder.
The word-list format is described in ``pipeline/data/synth/README.md``.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ikou.pipeline.errors import UserError

__all__ = [
    "DATA_DIR",
    "SynthError",
    "Encoded",
    "GaijiRow",
    "WordList",
    "build_gaiji_table",
    "encode_cp932",
    "encode_pieces",
    "ibm_variant",
    "load_targets",
    "load_words",
    "parse_pieces",
    "read_tsv",
    "to_halfwidth_kana",
    "USER_DEFINED_CODES",
    "write_gaiji_csv",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "synth"


class SynthError(UserError):
    """Bad arguments or bad word-list data for the synthetic generator."""


#: Every CP932 user-defined (外字) code F040–F9FC, in order.
USER_DEFINED_CODES: tuple[int, ...] = tuple(
    (lead << 8) | trail
    for lead in range(0xF0, 0xFA)
    for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD))
)

_ESCAPE = re.compile(r"\{(g:)?(U\+[0-9A-Fa-f]{4,6}(?: U\+[0-9A-Fa-f]{4,6})*)\}")


def _codepoints(spec: str) -> str:
    return "".join(chr(int(tok[2:], 16)) for tok in spec.split())


def parse_pieces(text: str) -> tuple[tuple[str, bool], ...]:
    """Split word-list text into pieces ``(string, is_gaiji)`` resolving ``{U+..}`` escapes."""
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        if m.start() > pos:
            pieces.append((text[pos:m.start()], False))
        pieces.append((_codepoints(m.group(2)), bool(m.group(1))))
        pos = m.end()
    if pos < len(text):
        pieces.append((text[pos:], False))
    if "{" in "".join(p for p, g in pieces if not g):
        raise SynthError(f"malformed escape in word-list entry {text!r}")
    # merge neighbouring plain pieces
    merged: list[tuple[str, bool]] = []
    for piece in pieces:
        if merged and not piece[1] and not merged[-1][1]:
            merged[-1] = (merged[-1][0] + piece[0], False)
        else:
            merged.append(piece)
    return tuple(merged)


def encode_cp932(text: str) -> bytes:
    """CP932 bytes of ``text``; raises :class:`SynthError` unless CPython decodes them back to
    exactly ``text`` (e.g. U+2212 encodes but decodes as U+FF0D)."""
    try:
        data = text.encode("cp932")
    except UnicodeEncodeError as exc:
        raise SynthError(f"U+{ord(text[exc.start]):04X} is not a CP932 character") from None
    if data.decode("cp932") != text:
        raise SynthError(f"{text!r} does not round-trip through cp932")
    if _PUA.search(text):
        raise SynthError(f"{text!r} uses the user-defined area; write it as a {{g:...}} 外字")
    return data


_PUA = re.compile("[\ue000-\ue757]")  # what CPython's cp932 maps the user-defined area to


# NEC-selected IBM extensions (ED40–EEFC) → the same character's IBM extension code (FA40–FC4B).
def _nec_to_ibm() -> dict[bytes, bytes]:
    ibm: dict[str, bytes] = {}
    for lead in (0xFA, 0xFB, 0xFC):
        for trail in range(0x40, 0xFD):
            b = bytes((lead, trail))
            try:
                ibm.setdefault(b.decode("cp932"), b)
            except UnicodeDecodeError:
                continue
    out = {}
    for lead in (0xED, 0xEE):
        for trail in range(0x40, 0xFD):
            b = bytes((lead, trail))
            try:
                ch = b.decode("cp932")
            except UnicodeDecodeError:
                continue
            if ch in ibm:
                out[b] = ibm[ch]
    return out


_NEC_TO_IBM = _nec_to_ibm()


def ibm_variant(data: bytes) -> bytes:
    """``data`` with every NEC-selected IBM extension code replaced by its IBM extension code
    (both decode to the same character in CP932)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC:
            pair = data[i:i + 2]
            out += _NEC_TO_IBM.get(pair, pair)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class Encoded:
    """A string and its CP932 spellings (``variants[0]`` is CPython's encoding; a second variant
    uses IBM extension codes where the first uses NEC-selected ones)."""

    text: str
    variants: tuple[bytes, ...]


def encode_pieces(pieces, gaiji_codes: dict[str, int]) -> Encoded:
    """Encode word pieces, writing 外字 pieces as their user-defined codes."""
    text = []
    data = bytearray()
    for piece, is_gaiji in pieces:
        text.append(piece)
        if is_gaiji:
            if piece not in gaiji_codes:
                raise SynthError(f"{piece!r} is not in the 外字 table")
            data += gaiji_codes[piece].to_bytes(2, "big")
        else:
            data += encode_cp932(piece)
    first = bytes(data)
    alt = ibm_variant(first)
    return Encoded("".join(text), (first,) if alt == first else (first, alt))


# --- half-width katakana ---------------------------------------------------------------------
def _build_halfwidth() -> dict[str, str]:
    table: dict[str, str] = {}
    for cp in range(0xFF61, 0xFFA0):
        hw = chr(cp)
        fw = unicodedata.normalize("NFKC", hw)
        if len(fw) == 1 and fw not in table:
            table[fw] = hw
    table["\u3099"] = "\uff9e"  # combining voiced mark → ﾞ
    table["\u309a"] = "\uff9f"  # combining semi-voiced mark → ﾟ
    table["\u309b"] = "\uff9e"
    table["\u309c"] = "\uff9f"
    table["\u3000"] = " "
    return table


_HALFWIDTH = _build_halfwidth()


def to_halfwidth_kana(text: str) -> str:
    """Full-width katakana → half-width katakana (ガ → ｶﾞ, パ → ﾊﾟ, ー → ｰ)."""
    out = []
    for ch in unicodedata.normalize("NFD", text):
        hw = _HALFWIDTH.get(ch)
        if hw is None:
            if ch.isascii():
                out.append(ch)
                continue
            raise SynthError(f"U+{ord(ch):04X} has no half-width katakana form")
        out.append(hw)
    return "".join(out)


# --- word lists ------------------------------------------------------------------------------
def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a tab-separated word list (``#`` comment lines, first other line = header)."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            raise SynthError(f"{path}:{lineno}: {len(cells)} columns, the header has {len(header)}")
        rows.append(dict(zip(header, cells, strict=True)))
    if header is None:
        raise SynthError(f"{path}: no header")
    return rows


@dataclass(frozen=True)
class WordList:
    """Words (pieces + reading) with cumulative weights for weighted choice.

    ``readings`` are half-width katakana, ``readings_fw`` the full-width readings of the file."""

    pieces: tuple[tuple[tuple[str, bool], ...], ...]
    readings: tuple[str, ...]
    cum_weights: tuple[int, ...]
    readings_fw: tuple[str, ...] = ()


def load_words(name: str, data_dir: Path = DATA_DIR) -> WordList:
    rows = read_tsv(data_dir / name)
    pieces, readings, fw, cum, total = [], [], [], [], 0
    for row in rows:
        pieces.append(parse_pieces(row["kanji"]))
        readings.append(to_halfwidth_kana(row["reading"]))
        fw.append(row["reading"])
        encode_cp932(row["reading"])
        total += int(row["weight"])
        cum.append(total)
    return WordList(tuple(pieces), tuple(readings), tuple(cum), tuple(fw))


# --- 外字 table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaijiRow:
    code: int
    text: str
    fallback: str
    mj: str
    note: str


def load_targets(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    return read_tsv(data_dir / "gaiji_targets.tsv")


def build_gaiji_table(rng: random.Random, data_dir: Path = DATA_DIR) -> list[GaijiRow]:
    """Assign user-defined codes (and invented MJ numbers) to the target characters."""
    targets = load_targets(data_dir)
    codes = sorted(rng.sample(USER_DEFINED_CODES, len(targets)))
    order = list(range(len(targets)))
    rng.shuffle(order)
    mj_numbers = sorted(rng.sample(range(1, 58863), len(targets)))
    rows = []
    for code, idx, mj in zip(codes, order, mj_numbers, strict=True):
        t = targets[idx]
        rows.append(GaijiRow(
            code=code,
            text=_codepoints(t["unicode"]),
            fallback=_codepoints(t["fallback"]),
            mj="" if t["mj"] == "-" else f"MJ{mj:06d}",
            note=t["note"],
        ))
    return rows


def _cp_spec(text: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in text)


def write_gaiji_csv(path: Path, rows: list[GaijiRow]) -> None:
    """Write the table in the format of docs/architecture.md §2 (plus a ``fallback`` column)."""
    lines = ["sjis,unicode,mj,note,fallback"]
    for r in rows:
        if "," in r.note or '"' in r.note:
            raise SynthError(f"note {r.note!r} must not contain commas or quotes")
        lines.append(f"{r.code:04X},{_cp_spec(r.text)},{r.mj},{r.note},{_cp_spec(r.fallback)}")
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
