"""Regenerate the encoding tables in ``kernels/tables/`` (not needed at run time).

IBM host code pages (930, 939, 1390, 1399 and their single-byte halves 290 and 1027) are read
from ICU's converters through the ``uconv`` command (ICU 72 here; ICU's mapping data is under the
Unicode licence, see kernels/tables/README.md). Fujitsu JEF, Hitachi KEIS and NEC JIPS tables are
derived from jef4j's CC0 mapping files (``src/test/resources/*_mapping.json`` of
github.com/hidekatsu-izuno/jef4j), as TSV with one row per mapping (``kind code unicode options
...``, see kernels/tables/README.md), in the folder given with ``--jef4j``.

    python tools/build_encoding_tables.py --jef4j JEF4J_TSV_FOLDER

Table file format (UTF-8 text, ``#`` comment lines): one mapping a line,
``S HH XXXX`` (single byte) or ``D HHHH XXXX[,XXXX…] [+N]`` (double byte; ``+N``: the next N
codes, trail byte + 1 each, map to the next N code points), and ``U HHHH reason`` for a code the
source lists but cannot map (decoded as an error, never a substitute).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "kernels" / "tables"
IBM = {  # our name -> ICU converter
    "ibm930": "ibm-930_P120-1999",
    "ibm939": "ibm-939_P120-1999",
    "ibm1390": "ibm-1390_P110-2003",
    "ibm1399": "ibm-1399_P110-2003",
}
BAD = ("\ufffd", "\x1a")  # substitution characters: never a mapping


def _uconv(conv: str, data: bytes) -> str:
    r = subprocess.run(["uconv", "-f", conv, "-t", "utf-8", "--from-callback", "escape-unicode"],
                       input=data, capture_output=True, check=True)
    return r.stdout.decode("utf-8")


def icu_single(conv: str) -> dict[int, str]:
    out = {}
    for b in range(256):
        if b in (0x0E, 0x0F):
            continue
        s = _uconv(conv, bytes([b]))
        if s.startswith("%X") or s in BAD or len(s) != 1:
            continue
        out[b] = s
    return out


def icu_double(conv: str) -> dict[int, str]:
    codes = [lead << 8 | trail for lead in range(0x40, 0xFF) for trail in range(0x40, 0xFF)]
    data = b"".join(b"\x0e" + c.to_bytes(2, "big") + b"\x0f\x25" for c in codes)
    parts = _uconv(conv, data).split("\n")
    assert len(parts) == len(codes) + 1 and parts[-1] == "", (conv, len(parts))
    out = {}
    for code, s in zip(codes, parts, strict=False):
        if "%X" in s or not s or any(c in BAD for c in s):
            continue
        out[code] = s
    return out


def _hex(s: str) -> str:
    return ",".join(f"{ord(c):04X}" for c in s)


def write_table(name: str, header: list[str], single: dict[int, str] | None,
                double: dict[int, str] | None, unmappable: dict[int, str] | None = None) -> None:
    lines = [f"# {h}" for h in header]
    for b, s in sorted((single or {}).items()):
        lines.append(f"S {b:02X} {_hex(s)}")
    items = sorted((double or {}).items())
    i = 0
    while i < len(items):
        code, s = items[i]
        n = 0
        if len(s) == 1:
            while (i + n + 1 < len(items) and items[i + n + 1][0] == code + n + 1
                   and len(items[i + n + 1][1]) == 1
                   and ord(items[i + n + 1][1]) == ord(s) + n + 1):
                n += 1
        lines.append(f"D {code:04X} {_hex(s)}" + (f" +{n}" if n else ""))
        i += n + 1
    for code, why in sorted((unmappable or {}).items()):
        lines.append(f"U {code:04X} {why}")
    (OUT / f"{name}.tbl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_ibm() -> None:
    version = subprocess.run(["uconv", "--version"], capture_output=True, text=True).stdout.strip()
    halves = {}
    for name, conv in IBM.items():
        single, double = icu_single(conv), icu_double(conv)
        halves[name] = single
        write_table(name, [f"{name}: from ICU converter {conv} ({version}) via uconv; "
                           "Unicode licence (ICU data)",
                           "regenerate: python tools/build_encoding_tables.py"], single, double)
    for name, base in (("cp290", "ibm930"), ("cp1027", "ibm939")):
        write_table(name, [f"{name}: the single-byte half of {base} (ICU {IBM[base]}, {version})",
                           "0E/0F are the controls SO/SI here (U+000E/U+000F)",
                           "regenerate: python tools/build_encoding_tables.py"],
                    {**halves[base], 0x0E: "\x0e", 0x0F: "\x0f"}, None)


# -- jef4j ---------------------------------------------------------------------------------------
def _read_tsv(path: Path):
    rows = collections.defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        p = line.split("\t")
        opts = set(filter(None, p[3].split(","))) if len(p) > 3 else set()
        if "encode_only" in opts:
            continue
        s = "".join(chr(int(u[2:], 16)) for u in p[2].split())
        rows[int(p[1], 16)].append((s, opts))
    return rows


def jef4j_table(path: Path) -> tuple[dict[int, str], dict[int, str]]:
    """Decoding rows of one jef4j file: (code -> string, code -> why it cannot be mapped)."""
    good, bad = {}, {}
    for code, rows in _read_tsv(path).items():
        main = [r for r in rows if "cjk_ci" not in r[1]] or rows
        if any("unmappable" in o for _, o in main):
            bad[code] = "unmappable (jef4j placeholder row)"
            continue
        if any("substitution" in o for _, o in main):
            bad[code] = "substitution (jef4j marks the character as a stand-in)"
            continue
        values = sorted({s for s, _ in main})
        if len(values) > 1:
            bad[code] = "conflicting rows (" + " / ".join(_hex(v) for v in values) + ")"
            continue
        good[code] = values[0]
    return good, bad


JEF4J = {  # our table -> (jef4j file, kind)
    "jef": ("fujitsu_jef.tsv", "D"),
    "jef-ebcdic": ("fujitsu_ebcdic.tsv", "S"),
    "jef-ebcdik": ("fujitsu_ebcdik.tsv", "S"),
    "keis78": ("hitachi_keis78.tsv", "D"),
    "keis83": ("hitachi_keis83.tsv", "D"),
    "keis-ebcdic": ("hitachi_ebcdic.tsv", "S"),
    "keis-ebcdik": ("hitachi_ebcdik.tsv", "S"),
    "jips-j": ("nec_jips.tsv", "D"),
    "jips-e": ("nec_jips_e.tsv", "D"),
    "jips-ebcdik": ("nec_ebcdik.tsv", "S"),
}


def build_jef4j(src: Path) -> None:
    for name, (fname, kind) in JEF4J.items():
        good, bad = jef4j_table(src / fname)
        header = [f"{name}: derived from jef4j {fname} (github.com/hidekatsu-izuno/jef4j, "
                  "commit 0e4e9fd7320e0b2098451c5d246fa46b7e2dce4b); mapping data CC0",
                  "decoding rows only (encode_only dropped; cjk_ci alternatives dropped where a "
                  "main row exists); U rows are codes reported as errors",
                  "regenerate: python tools/build_encoding_tables.py --jef4j PATH"]
        if kind == "S":
            bad_s = {b: w for b, w in bad.items()}
            write_table(name, header, good, None, {b: w for b, w in bad_s.items()})
        else:
            write_table(name, header, None, good, bad)


def build_jis8_ebcdik(src: Path) -> None:
    rows = {}
    for line in (src / "nec_jis8_ebcdik.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b = line.split("\t")[:2]
        rows[int(a, 16)] = chr(int(b, 16))
    write_table("jis8-ebcdik", ["jis8-ebcdik: NEC's JIS8 -> EBCDIK byte table (the 'character' of "
                                "each row is the EBCDIK byte value), from jef4j "
                                "nec_jis8_ebcdik.tsv (CC0)",
                                "regenerate: python tools/build_encoding_tables.py --jef4j PATH"],
                rows, None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jef4j", type=Path, help="folder with jef4j's TSV files")
    ap.add_argument("--skip-icu", action="store_true")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    if not args.skip_icu:
        build_ibm()
    if args.jef4j:
        build_jef4j(args.jef4j)
        build_jis8_ebcdik(args.jef4j)
    return 0


if __name__ == "__main__":
    sys.exit(main())
