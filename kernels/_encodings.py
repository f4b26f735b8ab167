"""Encodings other than CP932: what both decoding kernels share (tables, shift codes, spaces).

An encoding is named by a string: a base name (``ibm930``, ``jef``, ``cp037`` …) optionally
followed by options, ``jef;single=ebcdik;space=4040+A1A1``. :func:`canonical_encoding` checks a
name (or a ``{name: …, option: …}`` mapping) and returns the canonical string; :func:`get_encoding`
returns the :class:`Encoding` with its decoding tables, built once per process from CPython's
codecs (cp037, cp273, cp500, cp1140) or from the committed tables in ``tables/`` (IBM host code
pages built from ICU; Fujitsu JEF, Hitachi KEIS, NEC JIPS derived from jef4j's CC0 tables).

Nothing here ever substitutes: a code a table cannot map is an error for the kernels to report.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

__all__ = [
    "ENCODINGS",
    "Encoding",
    "EncodingError",
    "canonical_encoding",
    "get_encoding",
    "is_pua",
]

TABLES = Path(__file__).resolve().parent / "tables"


class EncodingError(ValueError):
    """An encoding name or option is invalid."""


def _hexitems(value: Any, what: str, widths: tuple[int, ...]) -> tuple[str, ...]:
    """"0A42" / ["28", "38"] / "4040+A1A1" → upper-case hex items of the allowed widths."""
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = str(value).replace("+", " ").replace(",", " ").split()
    if not items:
        raise EncodingError(f"{what}: no code given")
    for it in items:
        if len(it) not in widths or any(c not in "0123456789abcdefABCDEF" for c in it):
            raise EncodingError(f"{what}: {it!r} must be {' or '.join(map(str, widths))} hex digits")
    return tuple(it.upper() for it in items)


def _seq(code: int, ndigits: int) -> bytes:
    return code.to_bytes(ndigits // 2, "big")


# base name -> (family, defaults)
# family: "sbcs" (single-byte only), "mixed" (single/double with shift sequences)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "cp037": {"family": "sbcs", "codec": "cp037"},
    "cp273": {"family": "sbcs", "codec": "cp273"},
    "cp500": {"family": "sbcs", "codec": "cp500"},
    "cp1140": {"family": "sbcs", "codec": "cp1140"},
    "cp290": {"family": "sbcs", "table": "cp290"},
    "cp1027": {"family": "sbcs", "table": "cp1027"},
    "ibm930": {"family": "mixed", "table": "ibm930", "shift_in": "0E", "shift_out": "0F",
               "space": "4040", "user": ((0x6941, 0x7FFE),)},
    "ibm939": {"family": "mixed", "table": "ibm939", "shift_in": "0E", "shift_out": "0F",
               "space": "4040", "user": ((0x6941, 0x7FFE),)},
    "ibm1390": {"family": "mixed", "table": "ibm1390", "shift_in": "0E", "shift_out": "0F",
                "space": "4040", "user": ((0x6941, 0x89BD),)},
    "ibm1399": {"family": "mixed", "table": "ibm1399", "shift_in": "0E", "shift_out": "0F",
                "space": "4040", "user": ((0x6941, 0x89BD),)},
    "jef": {"family": "mixed", "table": "jef", "single": "ebcdic",
            "singles": {"ebcdic": "jef-ebcdic", "ebcdik": "jef-ebcdik"},
            "shift_in": "28+38", "shift_out": "29", "space": "4040+A1A1",
            "user": ((0x80A1, 0xA0FE),)},
    "keis78": {"family": "mixed", "table": "keis78", "single": "ebcdic",
               "singles": {"ebcdic": "keis-ebcdic", "ebcdik": "keis-ebcdik"},
               "shift_in": "0A42", "shift_out": "0A41", "space": "4040+A1A1",
               "user": ((0x81A1, 0xA0FE),)},
    "keis83": {"family": "mixed", "table": "keis83", "single": "ebcdic",
               "singles": {"ebcdic": "keis-ebcdic", "ebcdik": "keis-ebcdik"},
               "shift_in": "0A42", "shift_out": "0A41", "space": "4040+A1A1",
               "user": ((0x81A1, 0xA0FE),)},
    "jips-j": {"family": "mixed", "table": "jips-j", "single": "ebcdik",
               "singles": {"ebcdik": "jips-ebcdik"},
               "shift_in": "1A70", "shift_out": "1A71", "space": "2121",
               "user": ((0x7421, 0x7E7E), (0xE0A1, 0xFEFE))},
    "jips-e": {"family": "mixed", "table": "jips-e", "single": "ebcdik",
               "singles": {"ebcdik": "jips-ebcdik"},
               "shift_in": "3F75", "shift_out": "3F76", "space": "4F4F",
               "user": "jips-e"},
}
ENCODINGS = ("cp932", *_DEFAULTS)
_OPTIONS = ("single", "shift_in", "shift_out", "space")
EBCDIC_FAMILY = frozenset(_DEFAULTS)  # every one of these writes digits as F0-F9


def canonical_encoding(value: Any) -> str:
    """Check an encoding (a name, ``name;opt=v;…``, or a mapping) and return its canonical string."""
    if isinstance(value, dict):
        d = dict(value)
        name = d.pop("name", None)
        opts = d
    elif isinstance(value, str):
        name, *rest = value.strip().split(";")
        opts = {}
        for item in rest:
            if "=" not in item:
                raise EncodingError(f"encoding option {item!r} must be key=value")
            k, v = item.split("=", 1)
            opts[k.strip()] = v.strip()
    else:
        raise EncodingError(f"encoding must be a name, got {value!r}")
    if not isinstance(name, str):
        raise EncodingError(f"encoding needs a name, got {value!r}")
    name = name.strip().lower().replace("_", "-")
    name = {"windows-31j": "cp932", "ms932": "cp932", "shift-jis": "cp932", "sjis": "cp932",
            "ibm-930": "ibm930", "ibm-939": "ibm939", "ibm-1390": "ibm1390",
            "ibm-1399": "ibm1399", "cp930": "ibm930", "cp939": "ibm939", "jipsj": "jips-j",
            "jipse": "jips-e", "jips": "jips-j"}.get(name, name)
    if name not in ENCODINGS:
        raise EncodingError(f"encoding {name!r} is not supported (supported: {', '.join(ENCODINGS)})")
    if name == "cp932" or _DEFAULTS[name]["family"] == "sbcs":
        if opts:
            raise EncodingError(f"encoding {name} takes no options (got {', '.join(sorted(opts))})")
        return name
    d = _DEFAULTS[name]
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise EncodingError(f"unknown encoding option(s) {', '.join(unknown)} for {name} "
                            f"(allowed: {', '.join(_OPTIONS)})")
    parts = [name]
    for k in _OPTIONS:
        if k not in opts or opts[k] is None:
            continue
        v = opts[k]
        if k == "single":
            v = str(v).lower()
            if v not in d.get("singles", {}):
                raise EncodingError(f"{name}: single must be one of "
                                    f"{', '.join(d.get('singles', {})) or 'nothing'}, got {v!r}")
            if v == d["single"]:
                continue
        else:
            widths = (4,) if k == "space" else (2, 4)
            items = _hexitems(v, f"{name}: {k}", widths)
            if len(items) > 4:
                raise EncodingError(f"{name}: {k}: at most 4 codes")
            v = "+".join(items)
            if v == d[k]:
                continue
        parts.append(f"{k}={v}")
    return ";".join(parts)


def is_pua(s: str) -> bool:
    return any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000 for c in s)


def _read_table(name: str) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    single, double, unmappable = {}, {}, {}
    for line in (TABLES / f"{name}.tbl").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        kind, code, rest = line.split(" ", 2)
        c = int(code, 16)
        if kind == "U":
            unmappable[c] = rest
            continue
        value, _, run = rest.partition(" ")
        s = "".join(chr(int(x, 16)) for x in value.split(","))
        if kind == "S":
            single[c] = s
        else:
            n = int(run[1:]) if run else 0
            for k in range(n + 1):
                double[c + k] = chr(ord(s) + k) if k else s
    return single, double, unmappable


class Encoding:
    """Decoding tables of one (canonical) encoding.

    ``single[b]``: string, or ``None`` for an unassigned byte; ``double[code]``: string for a
    valid double-byte code (user-defined area excluded); ``unmappable[code]``: why a listed code
    cannot be decoded; ``user(code)``: True in the user-defined (外字) area; ``shift_in`` /
    ``shift_out``: byte sequences; ``spaces``: double-byte codes read as U+3000.
    """

    def __init__(self, canonical: str):
        self.name = canonical
        base, *rest = canonical.split(";")
        self.base = base
        d = dict(_DEFAULTS[base])
        for item in rest:
            k, v = item.split("=", 1)
            d[k] = v
        self.family = d["family"]
        self.shift_in: tuple[bytes, ...] = ()
        self.shift_out: tuple[bytes, ...] = ()
        self.spaces: tuple[int, ...] = ()
        self.double: dict[int, str] = {}
        self.unmappable: dict[int, str] = {}
        self._user: tuple[tuple[int, int], ...] | frozenset = ()
        if "codec" in d:
            self.single = [bytes([b]).decode(d["codec"]) for b in range(256)]
            self.unmappable_single: dict[int, str] = {}
            return
        if self.family == "sbcs":
            single, _, bad = _read_table(d["table"])
            self.single = [single.get(b) for b in range(256)]
            self.unmappable_single = bad
            return
        own_single, double, bad_d = _read_table(d["table"])
        if "singles" in d:
            single, _, bad_s = _read_table(d["singles"][d["single"]])
        else:
            single, bad_s = own_single, {}
        self.unmappable_single = bad_s
        self.single = [single.get(b) for b in range(256)]
        self.shift_in = tuple(_seq(c, len(x)) for x in d["shift_in"].split("+")
                              for c in [int(x, 16)])
        self.shift_out = tuple(_seq(c, len(x)) for x in d["shift_out"].split("+")
                               for c in [int(x, 16)])
        for seq in self.shift_in + self.shift_out:  # shift bytes are never characters
            if len(seq) == 1:
                self.single[seq[0]] = None
        self.spaces = tuple(int(x, 16) for x in d["space"].split("+"))
        if d["user"] == "jips-e":
            ebk = _jis8_ebcdik()
            self._user = frozenset(
                ebk[lead] << 8 | ebk[trail]
                for lo, hi in ((0x7421, 0x7E7E), (0xE0A1, 0xFEFE))
                for lead in range(lo >> 8, (hi >> 8) + 1)
                for trail in range(lo & 0xFF, (hi & 0xFF) + 1))
        else:
            self._user = d["user"]
        dbl = {}
        for code, s in double.items():
            if self.user(code):
                continue
            if is_pua(s):
                bad_d.setdefault(code, "maps to a private-use code point")
                continue
            if s == "\u3000" and code not in self.spaces and code in (0x4040, 0xA1A1, 0x4F4F, 0x2121):
                continue  # a full-width space code not chosen for this encoding
            dbl[code] = s
        for code in self.spaces:
            dbl[code] = "\u3000"
        for code in bad_d:
            dbl.pop(code, None)
        self.double = dbl
        self.unmappable = bad_d
        for b, s in enumerate(self.single):
            if s is not None and is_pua(s):
                self.single[b] = None
                self.unmappable_single.setdefault(b, "maps to a private-use code point")

    @property
    def mixed(self) -> bool:
        return self.family == "mixed"

    def user(self, code: int) -> bool:
        if isinstance(self._user, frozenset):
            return code in self._user
        lead, trail = code >> 8, code & 0xFF
        for lo, hi in self._user:
            if self.base.startswith("ibm"):
                if lo <= code <= hi and 0x41 <= trail <= 0xFE:
                    return True
            elif lo >> 8 <= lead <= hi >> 8 and (lo & 0xFF) <= trail <= (hi & 0xFF):
                return True
        return False

    def __repr__(self) -> str:
        return f"Encoding({self.name!r})"


def _jis8_ebcdik() -> list[int]:
    """NEC's JIS8 → EBCDIK byte table (jef4j), as committed in tables/jis8-ebcdik.tbl."""
    single, _, _ = _read_table("jis8-ebcdik")
    return [ord(single[b]) for b in range(256)]


_CACHE: dict[str, Encoding] = {}
_LOCK = threading.RLock()


def get_encoding(name: str) -> Encoding:
    """The :class:`Encoding` of a canonical name (built once per process, thread-safe)."""
    e = _CACHE.get(name)
    if e is None:
        with _LOCK:
            e = _CACHE.get(name)
            if e is None:
                e = _CACHE[name] = Encoding(canonical_encoding(name))
    return e
