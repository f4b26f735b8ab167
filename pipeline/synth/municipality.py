"""Synthetic municipality generator (``ikou generate``): a legacy 住民記録 export and its truth.

:func:`generate_municipality` writes into ``out_dir``:

``juki.dat``
    CP932 fixed-length records of :data:`RECORD_LENGTH` bytes, each followed by ``"\\r\\n"``:
    one header (record type ``1``), one data record (type ``2``) per resident, one trailer
    (type ``9``) whose 合計件数 counts every data record written (corrupt and truncated ones too).
    Field offsets are in :data:`JUKI_KINDS` (the layout file is rendered from it).
``juki.layout.yaml``
    The layout (docs/architecture.md §1).
``gaiji.csv``
    The generated 外字 table (§2) with a ``fallback`` column: ~18 characters (some with IVS) get
    user-defined codes F040–F9FC and invented MJ numbers chosen by the seed.
``expected.jsonl``
    One JSON object per record in file order: ``record`` (1-based), ``kind``, ``offset`` and
    either ``"fate": "row"`` with ``values`` (every non-filler field decoded per §3: text,
    digits → strings; int → int; date → ``"YYYY-MM-DD"`` or null; wareki →
    ``{"date", "raw", "status"}``) or ``"fate": "quarantine"`` with ``reasons``
    (``[{"field": name or null, "code": ...}]``). Values are computed from the Python strings the
    generator encoded, never by decoding.
with ``sources=ALL_SOURCES`` also
    ``zei.dat`` (個人住民税), ``kokuho_setai.dat`` / ``kokuho_hihokensha.dat`` (国保),
    ``jutogai.dat`` (住登外), each with ``<name>.layout.yaml`` and ``<name>.expected.jsonl``,
    and ``truth.jsonl`` (which person each tax/国保 record belongs to): see
    :mod:`ikou.pipeline.synth.sources`. The 住民記録 files do not depend on ``sources``.
    ``source_corrupt_share`` makes that share of the tax and 国保 data records corrupt (one
    fault each: invalid CP932 bytes, non-digits, a bad packed nibble or sign, a bad zoned sign;
    see :mod:`ikou.pipeline.synth.sources`); their expected lines say ``"fate": "quarantine"``.

Data (deterministic for a seed: same arguments → byte-identical files):
    宛名番号 and 世帯番号 are 10 digits whose last digit is the mod-11 check digit of
    :mod:`ikou.pipeline.steps.checkdigit` (scheme selectable). Households have 1–6 members with exactly
    one 世帯主 (続柄 ``01``). Names use ``pipeline/data/synth`` word lists: some contain 外字
    (written as user-defined codes), some CP932 NEC/IBM extension characters (髙 﨑 濵 德 …,
    written as CPython encodes them or, for about half of the records, with the equivalent IBM
    extension code FA40–FC4B). 氏名 is 氏 + U+3000 + 名; 氏名カナ is half-width katakana
    ``ｼ ﾒｲ`` with ﾞ/ﾟ as separate characters. Addresses use full-width digits, sometimes a 方書
    (after U+3000) with ① or Ⅱ. 生年月日 is wareki (era digit + YYMMDD): mostly valid, about
    0.5 % era-transition days (明治45年7月30日, 大正元年7月30日, 昭和64年1月7日, 平成元年1月8日, …),
    1.5 % impossible (2月30日, 4月31日, 13月, 2月29日 in a common year, unknown era code 6–9),
    1.5 % unknown (000000, 999999, month or day 00), 1 % out of era (昭和64年1月8日, 平成31年5月1日,
    大正16年, 令和元年4月30日, 明治元年1月1日), 1 % blank. 住民となった年月日 is YYYYMMDD, about 1 %
    all zeros and 1 % blank (both null). 世帯人数 is right-aligned with spaces.

Corruption (``corrupt_share`` > 0): ``round(corrupt_share * residents)`` data records (at least
one) are corrupt; each has exactly one fault, and the kinds are dealt round-robin over randomly
chosen records, so their counts differ by at most one:

- ``invalid_bytes``: one double-byte character of the 都道府県/市 part of 住所 is replaced by a
  pair CPython's cp932 rejects (lead 85, 86, EB, EC or EF with trail 40–7E/80–FC) →
  ``address`` / ``INVALID_BYTES``.
- ``unmapped_gaiji``: the first character of 氏 in 氏名 becomes a user-defined code that has no row
  in the 外字 table → ``name_kanji`` / ``UNMAPPED_GAIJI``.
- ``not_digits``: one byte of 郵便番号 becomes one of ``O - I l *`` → ``postal_code`` /
  ``NOT_DIGITS``.
- ``cut_double_byte``: 住所 is lengthened with a 方書 until it fills the field, and the field's last
  byte is the lead byte of a double-byte character whose trail byte was cut off (the next field is
  intact) → ``address`` / ``CUT_DOUBLE_BYTE``.
- ``impossible_date``: 住民となった年月日 becomes a day that does not exist (YYYY0230, 0431, 0631,
  0931, 1131) → ``resident_since`` / ``IMPOSSIBLE_DATE``.
- ``truncated`` (always exactly one when ``corrupt_share`` > 0, counted in the total): the LAST
  resident's data record is written after the trailer, cut to 1..RECORD_LENGTH-1 bytes (the
  record-type byte is present) with no separator after it → ``null`` / ``TRUNCATED_RECORD``.
"""

from __future__ import annotations

import json
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import mul
from pathlib import Path

from ikou.pipeline.steps.checkdigit import Mod11Scheme
from ikou.pipeline.synth.sources import (
    HOUSEHOLD_CASES,
    SOURCE_CHOICES,
    Context,
    HouseholdOptions,
    JutogaiWriter,
    KokuhoWriter,
    SourceFiles,
    TaxWriter,
)
from ikou.pipeline.synth.text import (
    DATA_DIR,
    USER_DEFINED_CODES,
    Encoded,
    SynthError,
    build_gaiji_table,
    encode_cp932,
    encode_pieces,
    load_words,
    parse_pieces,
    read_tsv,
    write_gaiji_csv,
)

__all__ = [
    "ALL_SOURCES",
    "AS_OF",
    "CORRUPTION_KINDS",
    "ERAS",
    "DEFAULT_SOURCES",
    "GeneratedSet",
    "HOUSEHOLD_CASES",
    "HouseholdOptions",
    "SourceFiles",
    "INVALID_PAIRS",
    "JUKI_KINDS",
    "LG_CODE",
    "RECORD_LENGTH",
    "SynthError",
    "generate_municipality",
    "render_layout_yaml",
    "wareki_value",
]

RECORD_LENGTH = 320
SEPARATOR = b"\r\n"
LG_CODE = "999016"  # 団体コード of the invented municipality (prefecture code 99 does not exist)
PREFECTURE = "青葉県"
CITY = "若葉市"
AS_OF = date(2025, 4, 1)  # creation date of the export; no wall clock, for determinism
#: Sources written by default: the 住民記録 export only (phase-1 callers, large benchmarks).
DEFAULT_SOURCES = ("juki",)
#: Every source: 住民記録, 個人住民税, 国保 and 住登外 (pass ``sources=ALL_SOURCES`` for the demo).
ALL_SOURCES = SOURCE_CHOICES
CORRUPTION_KINDS = (
    "invalid_bytes", "unmapped_gaiji", "not_digits", "cut_double_byte", "impossible_date",
)
_REASONS = {
    "invalid_bytes": ("address", "INVALID_BYTES"),
    "unmapped_gaiji": ("name_kanji", "UNMAPPED_GAIJI"),
    "not_digits": ("postal_code", "NOT_DIGITS"),
    "cut_double_byte": ("address", "CUT_DOUBLE_BYTE"),
    "impossible_date": ("resident_since", "IMPOSSIBLE_DATE"),
    "truncated": (None, "TRUNCATED_RECORD"),
}

# (name, label, offset, length, type) per kind; offsets are 0-based bytes; byte 0 is the record type.
JUKI_KINDS: dict[str, tuple[str, tuple[tuple[str, str, int, int, str], ...]]] = {
    "header": ("1", (
        ("lg_code", "団体コード", 1, 6, "digits"),
        ("created", "作成年月日", 7, 8, "date"),
        ("file_id", "ファイル識別", 15, 12, "text"),
        ("pad", "", 27, 293, "filler"),
    )),
    "data": ("2", (
        ("atena_no", "宛名番号", 1, 10, "digits"),
        ("setai_no", "世帯番号", 11, 10, "digits"),
        ("name_kanji", "氏名", 21, 40, "text"),
        ("name_kana", "氏名カナ", 61, 40, "text"),
        ("sex", "性別", 101, 1, "digits"),
        ("birth", "生年月日", 102, 7, "wareki"),
        ("zokugara", "続柄", 109, 2, "digits"),
        ("postal_code", "郵便番号", 111, 7, "digits"),
        ("address", "住所", 118, 120, "text"),
        ("resident_since", "住民となった年月日", 238, 8, "date"),
        ("household_size", "世帯人数", 246, 3, "int"),
        ("pad", "", 249, 71, "filler"),
    )),
    "trailer": ("9", (
        ("record_count", "合計件数", 1, 8, "int"),
        ("pad", "", 9, 311, "filler"),
    )),
}
_F = {name: (off, length) for name, _l, off, length, _t in JUKI_KINDS["data"][1]}


def _check_kinds() -> None:
    for kind, (_code, fields) in JUKI_KINDS.items():
        pos = 1
        for name, _label, off, length, _type in fields:
            if off != pos:
                raise AssertionError(f"JUKI_KINDS {kind}.{name}: offset {off}, expected {pos}")
            pos += length
        if pos != RECORD_LENGTH:
            raise AssertionError(f"JUKI_KINDS {kind}: fields end at {pos}, not {RECORD_LENGTH}")


_check_kinds()

# --- wareki ----------------------------------------------------------------------------------
#: era code → (first day, last day or None, base year), docs/architecture.md §3.
ERAS: dict[int, tuple[date, date | None, int]] = {
    1: (date(1868, 1, 25), date(1912, 7, 30), 1868),
    2: (date(1912, 7, 30), date(1926, 12, 25), 1912),
    3: (date(1926, 12, 25), date(1989, 1, 7), 1926),
    4: (date(1989, 1, 8), date(2019, 4, 30), 1989),
    5: (date(2019, 5, 1), None, 2019),
}


def wareki_value(raw: str) -> dict:
    """Reference reading of a wareki field (§3) as ``{"date", "raw", "status"}``.

    An independent re-statement of the rules for the generator's expected values; ``raw`` must be
    all spaces or all ASCII digits (the generator never writes anything else there).
    """
    if raw.strip(" ") == "":
        return {"date": None, "raw": raw, "status": "blank"}
    if not (raw.isascii() and raw.isdigit()) or len(raw) not in (7, 8):
        raise SynthError("a generated wareki value must be 7 or 8 digits")
    era, ymd = int(raw[:-6]), raw[-6:]
    yy, mm, dd = int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])
    if ymd in ("000000", "999999") or mm == 0 or dd == 0:
        return {"date": None, "raw": raw, "status": "unknown"}
    if era not in ERAS:
        return {"date": None, "raw": raw, "status": "impossible"}
    first, last, base = ERAS[era]
    try:
        d = date(base + yy - 1, mm, dd)
    except ValueError:
        return {"date": None, "raw": raw, "status": "impossible"}
    if d < first or (last is not None and d > last):
        return {"date": None, "raw": raw, "status": "out_of_era"}
    return {"date": d.isoformat(), "raw": raw, "status": "valid"}


#: Cached twin for the generator's hot loops (callers must not mutate the returned dict).
_wareki_cached = lru_cache(maxsize=1 << 16)(wareki_value)


def to_wareki(d: date) -> str:
    """``d`` as era digit + YYMMDD, in the later era on a transition day."""
    for era in (5, 4, 3, 2, 1):
        first, _last, base = ERAS[era]
        if d >= first:
            return f"{era}{d.year - base + 1:02d}{d.month:02d}{d.day:02d}"
    raise SynthError("dates before 明治 cannot be written in wareki")


_TRANSITION_DAYS = ("1450730", "2010730", "2151225", "3011225", "3640107", "4010108",
                    "4310430", "5010501")
_OUT_OF_ERA = ("3640108", "4310501", "2160301", "5010430", "1010101", "3700401", "4350815")
_UNKNOWN_FIXED = ("000000", "999999")


def _special_birth(rng: random.Random, category: str) -> str:
    if category == "transition":
        return rng.choice(_TRANSITION_DAYS)
    if category == "out_of_era":
        return rng.choice(_OUT_OF_ERA)
    if category == "blank":
        return " " * 7
    if category == "unknown":
        r = rng.randrange(4)
        era = str(rng.randint(3, 4))
        if r == 0:
            return era + rng.choice(_UNKNOWN_FIXED)
        yy = f"{rng.randint(1, 30):02d}"
        if r == 1:
            return f"{era}{yy}0000"
        if r == 2:
            return f"{era}{yy}00{rng.randint(1, 28):02d}"
        return f"{era}{yy}{rng.randint(1, 12):02d}00"
    if category == "impossible":
        r = rng.randrange(4)
        if r == 0:
            return f"{rng.randint(3, 4)}{rng.randint(1, 30):02d}{rng.choice(('0230', '0231', '0431', '0631', '0931', '1131', '0132'))}"
        if r == 1:
            return f"{rng.randint(3, 4)}{rng.randint(1, 30):02d}13{rng.randint(1, 28):02d}"
        if r == 2:  # 2月29日 in a common year: 昭和 years whose Gregorian year is not a leap year
            yy = rng.choice([y for y in range(2, 64) if (1925 + y) % 4 != 0])
            return f"3{yy:02d}0229"
        return f"{rng.randint(6, 9)}{rng.randint(1, 30):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    raise SynthError(f"unknown birth category {category!r}")


# category, cumulative weight (per 1000)
_BIRTH_CATEGORIES = (("valid", 945), ("transition", 950), ("impossible", 965), ("unknown", 980),
                     ("out_of_era", 990), ("blank", 1000))

# --- public API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedSet:
    """Paths and counts of one generated municipality."""

    export: Path
    layout: Path
    gaiji: Path
    expected: Path | None
    residents: int = 0
    records: int = 0  # all records in the file (header + data + trailer)
    data_records: int = 0
    quarantined: int = 0  # data records expected in quarantine
    corruptions: dict[str, int] = field(default_factory=dict)
    #: every export written, by name: juki, zei, kokuho_setai, kokuho_hihokensha, jutogai
    #: (each with its own ``quarantined`` count and ``corruptions``)
    sources: dict[str, SourceFiles] = field(default_factory=dict)
    truth: Path | None = None  # truth.jsonl (with tax or 国保 sources)

    @property
    def quarantined_by_source(self) -> dict[str, int]:
        """Data records expected in quarantine, per export (every export, 0 when clean)."""
        return {name: f.quarantined for name, f in self.sources.items()}


@dataclass
class _Person:
    """One resident (kept small: ``__slots__``)."""

    __slots__ = ("atena", "setai", "surname", "given", "sex", "birth", "birth_raw", "zokugara",
                 "since", "household_size", "address", "postal", "surname_idx", "given_idx")
    atena: str
    setai: str
    surname: Encoded
    given: Encoded
    sex: str
    birth: date
    birth_raw: str
    zokugara: str
    since: str
    household_size: int
    address: Encoded
    postal: str
    surname_idx: int
    given_idx: int


#: 続柄 codes the household generator writes (all must be rows of data/synth/zokugara.tsv).
_ZOKUGARA_USED = ("01", "02", "03", "04", "05", "11", "12", "13", "21", "22", "31", "32", "33",
                  "34", "41", "51", "52")
_FW_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
_KANJI_NUM = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九")


def _fw(n: int) -> str:
    return str(n).translate(_FW_DIGITS)


class _Vocabulary:
    """Word lists encoded against one 外字 table."""

    def __init__(self, gaiji_codes: dict[str, int], data_dir: Path = DATA_DIR):
        self.surnames = load_words("surnames.tsv", data_dir)
        self.male = load_words("given_male.tsv", data_dir)
        self.female = load_words("given_female.tsv", data_dir)
        self.sur_enc = [encode_pieces(p, gaiji_codes) for p in self.surnames.pieces]
        self.male_enc = [encode_pieces(p, gaiji_codes) for p in self.male.pieces]
        self.female_enc = [encode_pieces(p, gaiji_codes) for p in self.female.pieces]
        self.towns = []
        for row in read_tsv(data_dir / "towns.tsv"):
            postal = row["postal"]
            if len(postal) != 7 or not postal.isdigit():
                raise SynthError(f"towns.tsv: postal code {postal!r} must be 7 digits")
            self.towns.append((postal, encode_pieces(parse_pieces(row["town"]), gaiji_codes),
                               int(row["chome"]), row["style"]))
        self.buildings = [row["name"] for row in read_tsv(data_dir / "buildings.tsv")]
        for b in self.buildings:
            encode_cp932(b)
        self.city = encode_cp932(PREFECTURE + CITY)
        self.zokugara = {row["code"]: row["label"] for row in read_tsv(data_dir / "zokugara.tsv")}
        missing = sorted(set(_ZOKUGARA_USED) - set(self.zokugara))
        if missing:
            raise SynthError(f"zokugara.tsv lacks the code(s) {', '.join(missing)}")


def _address(rng: random.Random, vocab: _Vocabulary) -> tuple[str, Encoded]:
    postal, town, chome_max, style = vocab.towns[rng.randrange(len(vocab.towns))]
    banchi, go = rng.randint(1, 40), rng.randint(1, 25)
    if chome_max and style == "digits":
        rest = f"{_fw(rng.randint(1, chome_max))}丁目{_fw(banchi)}番{_fw(go)}号"
    elif chome_max:
        rest = f"{_KANJI_NUM[rng.randint(1, chome_max)]}丁目{_fw(banchi)}番地{_fw(go)}"
    else:
        rest = f"{_fw(banchi * 10 + rng.randint(0, 9))}番地{_fw(go)}" if rng.random() < 0.5 else f"{_fw(banchi * 10 + rng.randint(0, 9))}番地"
    if rng.random() < 0.25:
        building = vocab.buildings[rng.randrange(len(vocab.buildings))]
        room = rng.randint(1, 4) * 100 + rng.randint(1, 12)
        rest += "\u3000" + building + ("－" + _fw(room) if rng.random() < 0.4 else _fw(room) + "号室")
    rest_b = encode_cp932(rest)
    prefix = PREFECTURE + CITY
    text = prefix + town.text + rest
    variants = tuple(vocab.city + v + rest_b for v in town.variants)
    return postal, Encoded(text, variants)


class _Sequence:
    """10-digit numbers (9-digit body + check digit) issued in order with random gaps of 1–3."""

    def __init__(self, start: int, rnd, scheme: Mod11Scheme):
        self.value = start
        self.rnd = rnd
        self.scheme = scheme
        self.weights = tuple(scheme.weights[i % len(scheme.weights)] for i in range(9))[::-1]
        self.reject = scheme.remainder_one == "reject"

    def next(self) -> str:
        while True:
            self.value += 1 + int(self.rnd() * 3)
            body = f"{self.value:09d}"
            r = sum(map(mul, map(int, body), self.weights)) % 11
            if r == 1 and self.reject:
                continue
            return body + ("0" if r <= 1 else str(11 - r))


def _households(rng: random.Random, vocab: _Vocabulary, residents: int, scheme: Mod11Scheme):
    """Yield :class:`_Person` objects household by household, ``residents`` in all."""
    rnd = rng.random

    def ri(a: int, b: int) -> int:  # uniform integer in [a, b]
        return a + int(rnd() * (b - a + 1))

    atena_seq = _Sequence(ri(10_000_000, 20_000_000), rnd, scheme)
    setai_seq = _Sequence(ri(50_000_000, 60_000_000), rnd, scheme)
    sur_cum = vocab.surnames.cum_weights
    male_cum, female_cum = vocab.male.cum_weights, vocab.female.cum_weights
    sur_total, male_total, female_total = sur_cum[-1], male_cum[-1], female_cum[-1]
    n_male = len(male_cum)
    size_cum = (35, 63, 80, 93, 98, 100)
    sur_enc, male_enc, female_enc = vocab.sur_enc, vocab.male_enc, vocab.female_enc
    remaining = residents
    epoch = date(1970, 1, 1).toordinal()
    as_of_ord = AS_OF.toordinal()
    min_birth = date(1868, 1, 26).toordinal()
    fromordinal = date.fromordinal
    while remaining > 0:
        size = min(bisect_right(size_cum, rnd() * 100) + 1, remaining)
        remaining -= size
        setai = setai_seq.next()
        postal, address = _address(rng, vocab)
        family = bisect_right(sur_cum, rnd() * sur_total)
        head_age = ri(18 if size == 1 else 22, 95)
        head_sex = "1" if rnd() < (0.7 if size > 1 else 0.5) else "2"
        move_in = ri(max(epoch, as_of_ord - (head_age - 18) * 365), as_of_ord)
        members = [("01", head_sex, head_age, family)]
        if size >= 2 and rnd() < 0.85:
            common_law = rnd() < 0.05
            code = ("04" if common_law else "02") if head_sex == "1" else ("05" if common_law else "03")
            sp_family = bisect_right(sur_cum, rnd() * sur_total) if common_law else family
            sp_age = min(99, max(18, head_age + ri(-6, 6)))
            members.append((code, "2" if head_sex == "1" else "1", sp_age, sp_family))
        while len(members) < size:
            r = rnd()
            sex = "1" if rnd() < 0.5 else "2"
            if r < 0.70 and head_age >= 20:
                members.append(("11", sex, ri(max(0, head_age - 45), head_age - 18), family))
            elif r < 0.80 and head_age < 65:
                members.append(("21" if sex == "1" else "22", sex,
                                min(105, head_age + ri(20, 35)), family))
            elif r < 0.86:
                code = ("31" if sex == "1" else "32") if rnd() < 0.5 else ("33" if sex == "1" else "34")
                members.append((code, sex, max(0, head_age + ri(-8, 8)), family))
            elif r < 0.92 and head_age >= 55:
                members.append(("41", sex, ri(0, head_age - 40), family))
            elif r < 0.95 and head_age >= 45:
                members.append(("12" if sex == "2" else "13", sex, ri(20, head_age - 20), family))
            else:
                members.append(("51" if rnd() < 0.3 else "52", sex, ri(18, 90),
                                bisect_right(sur_cum, rnd() * sur_total)))
        for code, sex, age, fam in members:
            birth_ord = max(as_of_ord - int(age * 365.2425) - int(rnd() * 365), min_birth)
            birth = fromordinal(birth_ord)
            u = rnd() * 1000
            if u < 945:
                raw = to_wareki(birth)
            else:
                category = next(c for c, w in _BIRTH_CATEGORIES if u < w)
                raw = _special_birth(rng, category)
                if wareki_value(raw)["status"] != {"transition": "valid"}.get(category, category):
                    raise AssertionError(f"birth category {category} produced another status")
            s = rnd()
            if s < 0.01:
                since = "00000000"
            elif s < 0.02:
                since = " " * 8
            else:
                since = fromordinal(max(move_in, birth_ord)).strftime("%Y%m%d")
            if sex == "1":
                g = bisect_right(male_cum, rnd() * male_total)
                given = male_enc[g]
            else:
                g = bisect_right(female_cum, rnd() * female_total)
                given = female_enc[g]
                g += n_male
            yield _Person(
                atena=atena_seq.next(), setai=setai, surname=sur_enc[fam],
                given=given, sex=sex, birth=birth, birth_raw=raw, zokugara=code, since=since,
                household_size=size, address=address, postal=postal, surname_idx=fam,
                given_idx=g,
            )


def _since_value(since: str):
    if since.strip() == "" or since == "00000000":
        return None
    return f"{since[:4]}-{since[4:6]}-{since[6:]}"


def render_layout_yaml(name: str, label: str, kinds, record_length: int) -> str:
    """Render a layout (docs/architecture.md §1) from ``{kind: (code, fields)}`` where each field
    is ``(name, label, offset, length, type)`` or ``(..., type, {option: value})``."""
    lines = [
        f"name: {name}",
        f"label: {label}",
        "encoding: cp932",
        f"record_length: {record_length}",
        'record_separator: "\\r\\n"',
        "record_type: {offset: 0, length: 1}",
        "kinds:",
    ]
    for kind, (code, fields) in kinds.items():
        lines.append(f"  {kind}:")
        lines.append(f'    code: "{code}"')
        if kind == "trailer":
            lines.append("    count_field: record_count")
        lines.append("    fields:")
        for fdef in fields:
            fname, flabel, off, length, ftype = fdef[:5]
            parts = [f"name: {fname}"]
            if flabel:
                parts.append(f"label: {flabel}")
            parts += [f"offset: {off}", f"length: {length}", f"type: {ftype}"]
            for k, v in (fdef[5] if len(fdef) > 5 else {}).items():
                parts.append(f"{k}: {json.dumps(v)}")
            lines.append("      - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def _invalid_pairs() -> tuple[bytes, ...]:
    pairs = []
    for lead in (0x85, 0x86, 0xEB, 0xEC, 0xEF):
        for trail in (0x40, 0x5A, 0x7E, 0x80, 0x9F, 0xFC):
            b = bytes((lead, trail))
            try:
                b.decode("cp932")
            except UnicodeDecodeError:
                pairs.append(b)
    if not pairs:
        raise AssertionError("no invalid CP932 pair found")
    return tuple(pairs)


#: Byte pairs CPython's cp932 codec rejects (verified when the module is imported).
INVALID_PAIRS = _invalid_pairs()


def _validate_sources(sources, key_error_share, source_corrupt_share=0.0) -> tuple[str, ...]:
    if isinstance(sources, str) or not all(isinstance(x, str) for x in sources):
        raise SynthError("sources must be a sequence of source names")
    unknown = [x for x in sources if x not in SOURCE_CHOICES]
    if unknown or "juki" not in sources:
        raise SynthError(
            f"sources must include 'juki' and be a subset of {', '.join(SOURCE_CHOICES)}"
        )
    if isinstance(key_error_share, bool) or not isinstance(key_error_share, (int, float)) or not (
        0.0 <= key_error_share <= 1.0
    ):
        raise SynthError(f"key_error_share must be a number between 0 and 1, got {key_error_share!r}")
    if isinstance(source_corrupt_share, bool) or not isinstance(
        source_corrupt_share, (int, float)
    ) or not (0.0 <= source_corrupt_share <= 1.0):
        raise SynthError("source_corrupt_share must be a number between 0 and 1, got "
                         f"{source_corrupt_share!r}")
    chosen = set(sources)
    if chosen & {"tax", "kokuho"}:
        chosen.add("jutogai")
    return tuple(x for x in SOURCE_CHOICES if x in chosen)


def _validate_args(residents, seed, corrupt_share, corrupt_kinds) -> None:
    if isinstance(residents, bool) or not isinstance(residents, int) or residents < 1:
        raise SynthError(f"residents must be a positive integer, got {residents!r}")
    if residents > 99_999_999:
        raise SynthError("residents must be at most 99,999,999 (合計件数 has 8 digits)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(corrupt_share, bool) or not isinstance(corrupt_share, (int, float)) or not (
        0.0 <= corrupt_share <= 1.0
    ):
        raise SynthError(f"corrupt_share must be a number between 0 and 1, got {corrupt_share!r}")
    unknown = [k for k in corrupt_kinds if k not in CORRUPTION_KINDS]
    if unknown or not corrupt_kinds:
        raise SynthError(
            f"corrupt_kinds must be a non-empty subset of {', '.join(CORRUPTION_KINDS)}"
        )


def _rng(seed: int, stream: str) -> random.Random:
    """An independent random stream per purpose, so adding a stream never shifts another."""
    return random.Random(f"ikou-synth:{seed}:{stream}")


def _corrupt(rec: bytearray, kind: str, person: _Person, rng: random.Random,
             unmapped: tuple[int, ...]) -> None:
    if kind == "invalid_bytes":
        off = _F["address"][0] + 2 * rng.randrange(len(PREFECTURE + CITY))
        rec[off:off + 2] = rng.choice(INVALID_PAIRS)
    elif kind == "unmapped_gaiji":
        off = _F["name_kanji"][0]
        lead = rec[off]
        if not (0x81 <= lead <= 0x9F or 0xE0 <= lead <= 0xFC):
            raise AssertionError("the first character of a surname must be double-byte")
        rec[off:off + 2] = rng.choice(unmapped).to_bytes(2, "big")
    elif kind == "not_digits":
        off = _F["postal_code"][0] + rng.randrange(7)
        rec[off] = rng.choice(b"O-Il*")
    elif kind == "cut_double_byte":
        off, length = _F["address"]
        data = bytearray(person.address.variants[0])
        if (length - 1 - len(data)) % 2:
            data += b" "
        filler = encode_cp932("\u3000若葉台東側別棟ハイツ青葉第二号館北側奥")
        i = 0
        while len(data) < length - 1:
            data += filler[i:i + 2]
            i = (i + 2) % len(filler)
        data += filler[i:i + 1]  # the lead byte only: the trail byte was cut off
        if len(data) != length:
            raise AssertionError("cut double-byte field has the wrong length")
        rec[off:off + length] = data
    elif kind == "impossible_date":
        off = _F["resident_since"][0]
        day = f"{rng.randint(1990, 2024)}{rng.choice(('0230', '0431', '0631', '0931', '1131'))}"
        rec[off:off + 8] = day.encode("ascii")
    else:
        raise SynthError(f"unknown corruption kind {kind!r}")


def _data_values(p: _Person) -> dict:
    return {
        "atena_no": p.atena,
        "setai_no": p.setai,
        "name_kanji": p.surname.text + "\u3000" + p.given.text,
        "name_kana": None,  # filled by the caller (kana is per-record)
        "sex": p.sex,
        "birth": _wareki_cached(p.birth_raw),
        "zokugara": p.zokugara,
        "postal_code": p.postal,
        "address": p.address.text,
        "resident_since": _since_value(p.since),
        "household_size": p.household_size,
    }


def generate_municipality(
    out_dir,
    residents: int,
    seed: int,
    corrupt_share: float = 0.0,
    *,
    corrupt_kinds: tuple[str, ...] = CORRUPTION_KINDS,
    check_scheme: Mod11Scheme | None = None,
    write_expected: bool = True,
    sources=DEFAULT_SOURCES,
    key_error_share: float = 0.0,
    source_corrupt_share: float = 0.0,
    household: HouseholdOptions | None = None,
) -> GeneratedSet:
    """Write a synthetic municipality's legacy 住民記録 export, layout, 外字 table and expected
    values into ``out_dir`` (created if missing; existing files are replaced).

    ``corrupt_share``: share (0–1) of data records made corrupt (see the module docstring);
    ``corrupt_kinds``: which in-place corruptions to deal (the truncated last record is always
    added when ``corrupt_share`` > 0); ``check_scheme``: the 宛名番号/世帯番号 check-digit scheme;
    ``write_expected=False`` skips ``expected.jsonl`` and the other sources' expected files
    (for large benchmark inputs); ``sources``: which exports to write (``juki`` always; ``tax``,
    ``kokuho`` and ``jutogai`` are described in :mod:`ikou.pipeline.synth.sources`; ``jutogai``
    and ``truth.jsonl`` come with ``tax`` or ``kokuho``); ``key_error_share``: share of tax and
    国保 records with a missing or mistyped 宛名番号 (default 0: every key valid);
    ``source_corrupt_share``: share of tax and 国保 data records made corrupt (default 0; no
    effect without those sources); ``household``: how the tax file departs from the
    households (住登外 relatives and namesakes at a household's address, moves, maiden
    surnames, birth-date typos, unspaced names, blank 郵便番号, no 宛名番号:
    :class:`~ikou.pipeline.synth.sources.HouseholdOptions`, default off; ``HOUSEHOLD_CASES``
    turns them all on, as ``ikou generate --households`` and the demo do). The 住民記録 files are
    byte-identical whatever ``sources``, ``key_error_share``, ``source_corrupt_share`` and
    ``household`` are.
    """
    if household is not None and not isinstance(household, HouseholdOptions):
        raise SynthError("household must be a HouseholdOptions")
    _validate_args(residents, seed, corrupt_share, tuple(corrupt_kinds))
    chosen_sources = _validate_sources(sources, key_error_share, source_corrupt_share)
    if check_scheme is not None and not isinstance(check_scheme, Mod11Scheme):
        raise SynthError("check_scheme must be an ikou.pipeline.steps.checkdigit.Mod11Scheme")
    scheme = check_scheme or Mod11Scheme()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"cannot create output folder {out}: {exc.strerror}") from None
    try:
        return _write_all(out, residents, seed, corrupt_share, tuple(corrupt_kinds), scheme,
                          write_expected, chosen_sources, key_error_share,
                          source_corrupt_share, household)
    except OSError as exc:
        raise SynthError(f"cannot write the generated files into {out}: "
                         f"{exc.strerror or exc}") from None


def _write_all(out: Path, residents: int, seed: int, corrupt_share: float, kinds: tuple,
               scheme: Mod11Scheme, write_expected: bool, chosen_sources: tuple,
               key_error_share: float, source_corrupt_share: float = 0.0,
               household: HouseholdOptions | None = None) -> GeneratedSet:
    table = build_gaiji_table(_rng(seed, "gaiji"))
    gaiji_codes = {row.text: row.code for row in table}
    mapped = set(gaiji_codes.values())
    unmapped = tuple(c for c in USER_DEFINED_CODES if c not in mapped)
    vocab = _Vocabulary(gaiji_codes)

    n_corrupt = 0
    if corrupt_share > 0:
        n_corrupt = min(residents, max(1, round(corrupt_share * residents)))
    crng = _rng(seed, "corrupt")
    chosen = crng.sample(range(residents - 1), n_corrupt - 1) if n_corrupt > 1 else []
    corrupt_at = {idx: kinds[i % len(kinds)] for i, idx in enumerate(chosen)}
    counts = {k: 0 for k in kinds} if n_corrupt else {}
    for k in corrupt_at.values():
        counts[k] += 1
    if n_corrupt:
        counts["truncated"] = 1

    stride = RECORD_LENGTH + len(SEPARATOR)
    export = out / "juki.dat"
    layout = out / "juki.layout.yaml"
    gaiji = out / "gaiji.csv"
    expected = out / "expected.jsonl" if write_expected else None
    write_gaiji_csv(gaiji, table)
    layout.write_bytes(
        render_layout_yaml("juki", "住民記録 (legacy, synthetic)", JUKI_KINDS, RECORD_LENGTH)
        .encode("utf-8")
    )

    rng = _rng(seed, "juki")
    vrng = _rng(seed, "variants")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    filler = b" " * _F["pad"][1] if "pad" in _F else b""
    sep = SEPARATOR
    given_readings = vocab.male.readings + vocab.female.readings
    sur_kana_b = [encode_cp932(k) for k in vocab.surnames.readings]
    given_kana_b = [encode_cp932(k) for k in given_readings]
    ctx = None
    writers: list = []
    if len(chosen_sources) > 1:
        ctx = Context(out, vocab, table, scheme, key_error_share, write_expected, seed,
                      lambda stream: _rng(seed, stream), source_corrupt_share)
        jutogai_w = JutogaiWriter(ctx)
        kokuho_w = KokuhoWriter(ctx, jutogai_w) if "kokuho" in chosen_sources else None
        tax_w = (TaxWriter(ctx, jutogai_w, residents, household) if "tax" in chosen_sources
                 else None)
        writers = [w for w in (tax_w, kokuho_w) if w is not None]
    exp_f = expected.open("w", encoding="utf-8", newline="\n") if expected else None
    try:
        with export.open("wb", buffering=1 << 20) as f:
            header_values = {"lg_code": LG_CODE, "created": AS_OF.isoformat(),
                             "file_id": f"JK{seed % 10**10:010d}"}
            head = (b"1" + LG_CODE.encode() + AS_OF.strftime("%Y%m%d").encode()
                    + header_values["file_id"].encode().ljust(12)).ljust(RECORD_LENGTH)
            f.write(head + sep)
            if exp_f:
                exp_f.write(dumps({"record": 1, "kind": "header", "offset": 0, "fate": "row",
                                   "values": header_values}) + "\n")
            record_no = 1
            truncated: tuple[bytes, dict] | None = None
            for i, p in enumerate(_households(rng, vocab, residents, scheme)):
                variant = 1 if vrng.random() < 0.5 else 0
                sur = p.surname.variants[min(variant, len(p.surname.variants) - 1)]
                giv = p.given.variants[min(variant, len(p.given.variants) - 1)]
                addr = p.address.variants[min(variant, len(p.address.variants) - 1)]
                name_b = sur + b"\x81\x40" + giv
                kana_b = sur_kana_b[p.surname_idx] + b" " + given_kana_b[p.given_idx]
                if len(name_b) > 40 or len(kana_b) > 40 or len(addr) > 120:
                    raise AssertionError("a generated value does not fit its field")
                rec = b"".join((
                    b"2", p.atena.encode(), p.setai.encode(), name_b.ljust(40), kana_b.ljust(40),
                    p.sex.encode(), p.birth_raw.encode(), p.zokugara.encode(), p.postal.encode(),
                    addr.ljust(120), p.since.encode(), str(p.household_size).rjust(3).encode(),
                    filler,
                ))
                is_last = i == residents - 1
                kind = corrupt_at.get(i)
                if kind is not None:
                    buf = bytearray(rec)
                    _corrupt(buf, kind, p, crng, unmapped)
                    rec = bytes(buf)
                for w in writers:
                    w.add(p, residents + 2 if is_last and n_corrupt else record_no + 1)
                if is_last and n_corrupt:
                    cut = crng.randint(1, RECORD_LENGTH - 1)
                    truncated = (rec[:cut], {"fate": "quarantine",
                                             "reasons": [{"field": None, "code": "TRUNCATED_RECORD"}]})
                    continue
                record_no += 1
                f.write(rec + sep)
                if exp_f:
                    entry = {"record": record_no, "kind": "data", "offset": (record_no - 1) * stride}
                    if kind is not None:
                        fname, code = _REASONS[kind]
                        entry["fate"] = "quarantine"
                        entry["reasons"] = [{"field": fname, "code": code}]
                    else:
                        values = _data_values(p)
                        values["name_kana"] = (vocab.surnames.readings[p.surname_idx] + " "
                                               + given_readings[p.given_idx])
                        entry["fate"] = "row"
                        entry["values"] = values
                    exp_f.write(dumps(entry) + "\n")
            record_no += 1
            trailer = (b"9" + str(residents).zfill(8).encode()).ljust(RECORD_LENGTH)
            f.write(trailer + sep)
            if exp_f:
                exp_f.write(dumps({"record": record_no, "kind": "trailer",
                                   "offset": (record_no - 1) * stride, "fate": "row",
                                   "values": {"record_count": residents}}) + "\n")
            if truncated is not None:
                record_no += 1
                f.write(truncated[0])
                if exp_f:
                    exp_f.write(dumps({"record": record_no, "kind": "data",
                                       "offset": (record_no - 1) * stride, **truncated[1]}) + "\n")
        written = {"juki": SourceFiles("juki", export, layout, expected, record_no, residents,
                                       n_corrupt, dict(counts))}
        if ctx is not None:
            if kokuho_w is not None:
                written["kokuho_setai"], written["kokuho_hihokensha"] = kokuho_w.close()
            if tax_w is not None:
                written["zei"] = tax_w.close()
            written["jutogai"] = jutogai_w.close()
    finally:
        if exp_f:
            exp_f.close()
        if ctx is not None:
            ctx.close()
            for w in (*writers, jutogai_w):
                w.abort()
    return GeneratedSet(
        export=export, layout=layout, gaiji=gaiji, expected=expected, residents=residents,
        records=record_no, data_records=residents, quarantined=n_corrupt, corruptions=counts,
        sources=written, truth=ctx.truth_path if ctx is not None else None,
    )
