"""What the normalisation and comparison kernels share: options, code-point tables, errors.

Both the compiled modules (``_normalize.pyx``, ``_compare.pyx``) and their pure-Python twins
(``_normalize_py.py``, ``_compare_py.py``) take the tables built here, so a behaviour is defined
once. Nothing here imports Beam or Great Expectations.

Normalisation is driven by one ``int32`` table over code points U+0000..U+2FFFF (``TABLE_SIZE``):
``table[cp]`` is the code point that replaces ``cp`` or ``DELETE`` (-1); code points at or above
``TABLE_SIZE`` are kept. Three context rules cannot be a per-character table and are applied by the
kernels' loop on the mapped code points:

* a voiced or semi-voiced sound mark (``ﾞ`` ``ﾟ`` ``゛`` ``゜`` U+3099 U+309A all map to
  ``MARK_VOICED`` / ``MARK_SEMI``) merges with the previous character when it has such a form
  (``ｶﾞ`` → ``ガ``, ``ウ゛`` → ``ヴ``); otherwise it is written as the spacing mark ``゛`` / ``゜``;
* with ``long_vowel="vowel"`` the prolonged sound mark ``ー`` becomes the vowel of the previous
  kana (``オーノ`` → ``オオノ``) and is dropped when there is none;
* with ``whitespace="collapse"`` runs of spaces become one ASCII space and leading/trailing spaces
  are dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "COMPARE_METHODS",
    "DELETE",
    "FINE_LEVEL_NAMES",
    "LEVEL_NULL",
    "MARK_SEMI",
    "MARK_VOICED",
    "MatchConfigError",
    "NormalizeOptions",
    "NormalizePlan",
    "TABLE_SIZE",
    "VariantTableError",
    "build_plan",
    "check_thresholds",
    "level_from_similarity",
    "load_variant_table",
]

TABLE_SIZE = 0x30000
DELETE = -1
MARK_VOICED = 0x3099  # combining voiced sound mark: the kernels' internal marker
MARK_SEMI = 0x309A
SPACING_VOICED = 0x309B  # ゛ written when a mark has nothing to merge with
SPACING_SEMI = 0x309C
LONG_VOWEL = 0x30FC  # ー
KANA_BASE = 0x3040  # the kana side tables cover U+3040..U+30FF
KANA_SIZE = 0xC0

WS_KEEP, WS_COLLAPSE, WS_REMOVE = 0, 1, 2
LV_KEEP, LV_DROP, LV_VOWEL = 0, 1, 2
_WHITESPACE = {"keep": WS_KEEP, "collapse": WS_COLLAPSE, "remove": WS_REMOVE}
_LONG_VOWEL = {"keep": LV_KEEP, "drop": LV_DROP, "vowel": LV_VOWEL}

# Comparison methods of the comparison kernel.
COMPARE_METHODS = ("exact", "jaro_winkler", "levenshtein", "date")
LEVEL_NULL = -1
# Date levels (``date`` method): higher is closer.
DATE_ELSE, DATE_ONE_DIGIT, DATE_SWAPPED, DATE_SAME = 0, 1, 2, 3
# Fine date levels (``date`` method with ``date_levels: fine``): higher is closer; a pair takes
# the highest level that applies.
(FINE_ELSE, FINE_WITHIN_YEAR, FINE_YEAR_MONTH, FINE_ONE_DIGIT, FINE_SWAPPED,
 FINE_SAME) = 0, 1, 2, 3, 4, 5
FINE_LEVEL_NAMES = ("else", "within_year", "year_month", "one_digit", "swapped", "same")


class MatchConfigError(ValueError):
    """Invalid normalisation or comparison options."""


class VariantTableError(MatchConfigError):
    """A kanji variant table (CSV) is invalid; the message names the file and line."""


# --- kana facts --------------------------------------------------------------------------------

# Half-width katakana U+FF61..U+FF9D → full width (U+FF9E/U+FF9F are the sound marks).
_HALF_KANA = (
    "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノ"
    "ハヒフヘホマミムメモヤユヨラリルレロワン"
)
_VOICED_PAIRS = (
    "かが きぎ くぐ けげ こご さざ しじ すず せぜ そぞ ただ ちぢ つづ てで とど はば ひび ふぶ へべ ほぼ "
    "うゔ ゝゞ カガ キギ クグ ケゲ コゴ サザ シジ スズ セゼ ソゾ タダ チヂ ツヅ テデ トド ハバ ヒビ フブ "
    "ヘベ ホボ ウヴ ワヷ ヰヸ ヱヹ ヲヺ ヽヾ"
).split()
_SEMI_PAIRS = "はぱ ひぴ ふぷ へぺ ほぽ ハパ ヒピ フプ ヘペ ホポ".split()
_SMALL = (
    "ぁあ ぃい ぅう ぇえ ぉお っつ ゃや ゅゆ ょよ ゎわ ゕか ゖけ ァア ィイ ゥウ ェエ ォオ ッツ ャヤ ュユ "
    "ョヨ ヮワ ヵカ ヶケ ㇰク ㇱシ ㇲス ㇳト ㇴヌ ㇵハ ㇶヒ ㇷフ ㇸヘ ㇹホ ㇺム ㇻラ ㇼリ ㇽル ㇾレ ㇿロ"
).split()
_VOWEL_ROWS = {
    "ア": "アカサタナハマヤラワガザダバパァヵャヮ",
    "イ": "イキシチニヒミリヰギジヂビピィ",
    "ウ": "ウクスツヌフムユルグズヅブプゥッュヴ",
    "エ": "エケセテネヘメレヱゲゼデベペェヶ",
    "オ": "オコソトノホモヨロヲゴゾドボポォョ",
}
_SPACES = "\t\n\v\f\r \u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_VARIATION_SELECTORS = list(range(0xFE00, 0xFE10))  # U+E0100.. lie beyond the table: drop_ivs
IVS_FIRST, IVS_LAST = 0xE0100, 0xE01EF


@dataclass(frozen=True)
class NormalizeOptions:
    """What normalisation folds. Every option is independent; the defaults suit name matching.

    width: full-width ASCII → ASCII and half-width katakana → full width (marks merged).
    kana: hiragana → katakana.
    voiced: "keep" (merge separate marks into the letter) or "fold" (ガ → カ, パ → ハ, marks dropped).
    small: small kana → normal size (ァ → ア, ッ → ツ).
    long_vowel: "keep", "drop" (ー removed) or "vowel" (ー → the previous kana's vowel).
    vu: ヴ → ブ (and ゔ → ぶ) after the other kana rules.
    whitespace: "keep", "collapse" (runs → one ASCII space, trimmed) or "remove".
    upper: ASCII letters to upper case.
    variants: fold kanji variants through the variant table given to :func:`build_plan`.
    drop_variation_selectors: delete IVS/SVS selectors (U+E0100.., U+FE00..).
    """

    width: bool = True
    kana: bool = True
    voiced: str = "keep"
    small: bool = False
    long_vowel: str = "keep"
    vu: bool = False
    whitespace: str = "collapse"
    upper: bool = False
    variants: bool = True
    drop_variation_selectors: bool = True

    def __post_init__(self):
        if self.voiced not in ("keep", "fold"):
            raise MatchConfigError(f"voiced must be 'keep' or 'fold', not {self.voiced!r}")
        if self.long_vowel not in _LONG_VOWEL:
            raise MatchConfigError(
                f"long_vowel must be one of {sorted(_LONG_VOWEL)}, not {self.long_vowel!r}"
            )
        if self.whitespace not in _WHITESPACE:
            raise MatchConfigError(
                f"whitespace must be one of {sorted(_WHITESPACE)}, not {self.whitespace!r}"
            )
        for name in ("width", "kana", "small", "vu", "upper", "variants", "drop_variation_selectors"):
            if not isinstance(getattr(self, name), bool):
                raise MatchConfigError(f"{name} must be true or false")

    @classmethod
    def from_mapping(cls, mapping) -> NormalizeOptions:
        """Options from a config mapping; unknown keys raise :class:`MatchConfigError`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(mapping) - known
        if unknown:
            raise MatchConfigError(
                f"unknown normalisation option(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**dict(mapping))


@dataclass(frozen=True)
class NormalizePlan:
    """The tables a normalisation kernel runs with (built once, shared by every call)."""

    table: np.ndarray  # int32[TABLE_SIZE]: replacement code point or DELETE
    voiced: np.ndarray  # int32[KANA_SIZE]: voiced form of U+3040+i, 0 if none
    semi: np.ndarray  # int32[KANA_SIZE]: semi-voiced form, 0 if none
    vowel: np.ndarray  # int32[KANA_SIZE]: vowel of U+3040+i, 0 if none
    whitespace: int
    long_vowel: int
    growth: float  # max UTF-8 bytes out per byte in (output buffer sizing)
    drop_ivs: bool = False  # delete U+E0100..U+E01EF (beyond the table)


def _kana_side_tables(opts: NormalizeOptions):
    voiced = np.zeros(KANA_SIZE, np.int32)
    semi = np.zeros(KANA_SIZE, np.int32)
    vowel = np.zeros(KANA_SIZE, np.int32)
    if opts.voiced == "keep":
        for pairs, out in ((_VOICED_PAIRS, voiced), (_SEMI_PAIRS, semi)):
            for base, composed in pairs:
                if opts.vu and composed in "ヴゔ":
                    composed = "ブ" if composed == "ヴ" else "ぶ"
                out[ord(base) - KANA_BASE] = ord(composed)
    for vow, row in _VOWEL_ROWS.items():
        for ch in row:
            vowel[ord(ch) - KANA_BASE] = ord(vow)
            hira = ord(ch) - 0x60
            if 0x3041 <= hira <= 0x3096:
                vowel[hira - KANA_BASE] = ord(vow) - 0x60
    return voiced, semi, vowel


def build_plan(opts: NormalizeOptions, variants: dict[int, int] | None = None) -> NormalizePlan:
    """Build the code-point tables for ``opts`` (and a variant map from :func:`load_variant_table`)."""
    table = np.arange(TABLE_SIZE, dtype=np.int32)

    def chain(cp: int, new: int) -> None:
        table[table == cp] = new  # later rules apply to what earlier rules produced

    if opts.variants and variants:
        for src, dst in variants.items():
            if src < TABLE_SIZE:
                table[src] = dst
    if opts.width:
        table[0xFF01:0xFF5F] = np.arange(0x21, 0x7F, dtype=np.int32)
        for i, ch in enumerate(_HALF_KANA):
            table[0xFF61 + i] = ord(ch)
        table[0xFF9E] = MARK_VOICED
        table[0xFF9F] = MARK_SEMI
    # Separate marks always become the internal markers; the loop merges or writes them.
    table[SPACING_VOICED] = MARK_VOICED
    table[SPACING_SEMI] = MARK_SEMI
    if opts.upper:
        table[(table >= 0x61) & (table <= 0x7A)] -= 0x20
    if opts.kana:
        hira = (table >= 0x3041) & (table <= 0x3096)
        table[hira] += 0x60
        table[table == 0x309D] = 0x30FD
        table[table == 0x309E] = 0x30FE
    if opts.small:
        for small, big in _SMALL:
            chain(ord(small), ord(big))
    if opts.voiced == "fold":
        for pairs in (_VOICED_PAIRS, _SEMI_PAIRS):
            for base, composed in pairs:
                chain(ord(composed), ord(base))
        chain(MARK_VOICED, DELETE)
        chain(MARK_SEMI, DELETE)
    if opts.vu:
        chain(ord("ヴ"), ord("ブ"))
        chain(ord("ゔ"), ord("ぶ"))
    if opts.long_vowel == "drop":
        chain(LONG_VOWEL, DELETE)
    if opts.whitespace != "keep":
        for ch in _SPACES:
            chain(ord(ch), 0x20 if opts.whitespace == "collapse" else DELETE)
    if opts.drop_variation_selectors:
        for cp in _VARIATION_SELECTORS:
            table[cp] = DELETE
    voiced, semi, vowel = _kana_side_tables(opts)
    growth = _max_growth(table)
    return NormalizePlan(
        table=table,
        voiced=voiced,
        semi=semi,
        vowel=vowel,
        whitespace=_WHITESPACE[opts.whitespace],
        long_vowel=_LONG_VOWEL[opts.long_vowel],
        growth=growth,
        drop_ivs=opts.drop_variation_selectors,
    )


def _utf8_len(cps: np.ndarray) -> np.ndarray:
    return np.select([cps < 0x80, cps < 0x800, cps < 0x10000], [1, 2, 3], 4)


def _max_growth(table: np.ndarray) -> float:
    src = np.arange(TABLE_SIZE, dtype=np.int32)
    mapped = table >= 0
    ratio = _utf8_len(table[mapped]) / _utf8_len(src[mapped])
    # Composed kana, spacing marks and vowels are 3 bytes and replace 3-byte input.
    return max(1.0, float(ratio.max()))


# --- variant tables -----------------------------------------------------------------------------


def _parse_char(text: str, where: str) -> int:
    text = text.strip()
    if text.upper().startswith("U+"):
        try:
            cp = int(text[2:], 16)
        except ValueError:
            raise VariantTableError(f"{where}: bad code point {text!r}") from None
        if not 0 < cp <= 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            raise VariantTableError(f"{where}: code point out of range: {text!r}")
        return cp
    if len(text) != 1:
        raise VariantTableError(
            f"{where}: expected one character or U+XXXX, got {len(text)} characters"
        )
    return ord(text)


def load_variant_table(*paths: str | Path) -> dict[int, int]:
    """Load kanji variant tables (CSV) into ``{variant code point: standard code point}``.

    Format: lines starting with ``#`` are comments; the first other line is the header
    ``variant,standard`` (extra columns such as ``note`` are ignored). Each cell is one character
    or ``U+XXXX``. Later files may add rows; a variant mapped twice to different characters, a
    row mapping a character to itself, or a cycle raises :class:`VariantTableError` (file:line).
    Chains (a → b, b → c) are resolved to a → c.
    """
    mapping: dict[int, int] = {}
    origin: dict[int, str] = {}
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VariantTableError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise VariantTableError(f"{path}: cannot read: {exc}") from None
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)]
        body = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not body:
            raise VariantTableError(f"{path}: no header line 'variant,standard'")
        header_line, header = body[0]
        columns = [c.strip() for c in next(csv.reader([header]))]
        if columns[:2] != ["variant", "standard"]:
            raise VariantTableError(
                f"{path}:{header_line}: header must start with 'variant,standard', got {header!r}"
            )
        for n, line in body[1:]:
            where = f"{path}:{n}"
            cells = next(csv.reader([line]))
            if len(cells) < 2:
                raise VariantTableError(f"{where}: expected at least 2 columns")
            src, dst = _parse_char(cells[0], where), _parse_char(cells[1], where)
            if src == dst:
                raise VariantTableError(f"{where}: maps U+{src:04X} to itself")
            if src in mapping and mapping[src] != dst:
                raise VariantTableError(
                    f"{where}: U+{src:04X} already maps to U+{mapping[src]:04X} ({origin[src]})"
                )
            mapping[src] = dst
            origin[src] = where
    resolved: dict[int, int] = {}
    for src in mapping:
        seen = [src]
        dst = mapping[src]
        while dst in mapping:
            if dst in seen:
                raise VariantTableError(f"{origin[src]}: variant cycle through U+{src:04X}")
            seen.append(dst)
            dst = mapping[dst]
        resolved[src] = dst
    return resolved


# --- comparison levels ---------------------------------------------------------------------------


def check_thresholds(thresholds) -> np.ndarray:
    """Thresholds as a float64 array, strictly descending, each in [0, 1]."""
    arr = np.asarray(list(thresholds), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise MatchConfigError("thresholds must be a non-empty list of numbers")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise MatchConfigError("thresholds must lie in [0, 1]")
    if np.any(np.diff(arr) >= 0):
        raise MatchConfigError("thresholds must be strictly descending")
    return arr


def level_from_similarity(sim: float, thresholds) -> int:
    """Level ``k - i`` for the first threshold ``thresholds[i]`` that ``sim`` reaches, else 0.

    With ``k`` thresholds the levels are ``k`` (closest) … ``1``, ``0`` (below all) and
    ``LEVEL_NULL`` (-1) when a value is missing (``sim`` is NaN).
    """
    if sim != sim:
        return LEVEL_NULL
    k = len(thresholds)
    for i in range(k):
        if sim >= thresholds[i]:
            return k - i
    return 0
