"""More legacy sources of the synthetic municipality: tax, 国保 and 住登外 exports.

Written by :func:`ikou.pipeline.synth.municipality.generate_municipality` next to ``juki.dat`` when asked
(``sources=``). Every file is CP932, fixed length, ``"\\r\\n"`` after each record, header
(``1``) / data (``2``) / trailer (``9``, 合計件数 = data records), with its layout
``<name>.layout.yaml`` and expected values ``<name>.expected.jsonl`` (same format as
``expected.jsonl``; ``zoned``/``packed`` values are decimal strings such as ``"-1200"`` or
``"0.060"``, i.e. ``str(Decimal)`` of the decoded decimal128). The records are clean unless
asked otherwise: the optional key errors and source corruption below.

``zei.dat`` — 個人住民税 (one record per taxpayer, 相当年度 = :data:`NENDO`)
    Residents aged 18+ (most of them) and 住登外 people who moved away after 1 January
    (住民区分 2). Money: 総所得金額等 packed signed (C/D), 課税標準額 packed unsigned (F),
    所得割額 zoned signed, 均等割額 zoned unsigned, 所得割税率 zoned unsigned scale 3
    (``0060`` = 0.060), 年税額 packed signed.
``kokuho_setai.dat`` / ``kokuho_hihokensha.dat`` — 国民健康保険 資格情報 (世帯 / 個人)
    Some households (more of the older ones); members under 75 are insured. 資格取得日 and
    資格喪失日 are wareki (喪失日 blank while insured). 擬制世帯主 = 1 when the 世帯主 is not
    insured. A few households have a student insured here under 住所地特例 who lives elsewhere
    (a 住登外 person). 一部負担割合 is zoned unsigned scale 1 (``03`` = 0.3).
``jutogai.dat`` — 住登外 (people taxed or insured here who do not live here)
    Their own 宛名番号 (same numbering and check digit as residents, a separate range),
    登録事由 ``01`` moved away (taxed here), ``03`` 住所地特例.
``truth.jsonl`` — which person each tax/国保 data record belongs to
    ``{"file", "record", "atena_no" (the true key), "population" ("juki" | "jutogai"),
    "target_file", "target_record" (the person's record in juki.dat / jutogai.dat),
    "key" ("valid" | "missing" | "mistyped"), "spelling" ("same" | "variant")}``. For a 国保
    世帯 record the person is its 世帯主. The target may be a corrupt (quarantined) or the truncated
    住民記録 record: other subsystems still hold those people (see ``expected.jsonl``). A record
    made corrupt by ``source_corrupt_share`` has ``"quarantined": true`` as a last key (absent
    otherwise).

Spelling as other subsystems write it: these files have no 外字 table, so a 外字 is written as its
``fallback`` character (𠮷 → 吉, 辻+IVS → 辻); with some probability extension characters are
standardised (髙 → 高, 﨑 → 崎, 邊/邉 → 辺, 齋 → 斎, 濵/濱 → 浜, …) or the other way round (高 → 髙,
崎 → 﨑); kana may lose 濁点/半濁点 (ｲｲﾂﾞｶ → ｲｲﾂｶ) or small kana (ｼｮｳ → ｼﾖｳ); 国保 writes kana in
full width. Addresses in the tax file omit the prefecture. Birth dates in these files are the
person's true date (valid wareki) even where 住民記録 holds an impossible or unknown one.

Households (``household=HouseholdOptions(...)``, default all 0; ``HOUSEHOLD_CASES`` turns every
case on, as ``ikou generate --households`` and the demo do): 住登外 relatives taxed at a household's address
with its surname (``jutogai.dat`` people with that address; half of them namesakes of the
世帯主), taxpayers who moved within the town since 1 January (old address and 郵便番号), maiden
surnames, mistyped birth dates (day/month swapped, one digit, a few days), names without the
U+3000 between 氏 and 名, blank 郵便番号, and tax records without any 宛名番号
(``tax_keys=False``; their truth says ``"key": "missing"``). These use their own random stream
(``tax-households``); with every share 0 the files are byte-identical to the plain ones.

Key errors (``key_error_share``, default 0: every key valid): that share of tax and 国保 data
records get a missing 宛名番号 (blank → null; 40 %) or a mistyped one (60 %: one digit replaced,
or two different adjacent digits swapped); ``truth.jsonl`` keeps the true key.

Source corruption (``source_corrupt_share``, default 0: no corrupt record): each data record of
``zei.dat``, ``kokuho_setai.dat`` and ``kokuho_hihokensha.dat`` is corrupt with that probability
(an independent random stream per file, ``corrupt-<name>``, so the other records, the 住民記録
file and ``jutogai.dat`` are byte-identical whatever the share is). A corrupt record has exactly
one fault; the kinds a file can take (:data:`SOURCE_CORRUPTION_FIELDS`) are dealt round-robin
over its corrupt records in file order. Its ``<name>.expected.jsonl`` line says
``"fate": "quarantine"`` with ``"reasons": [{"field", "code"}]`` (exactly the one error the
decoder reports), the trailer's 合計件数 counts it, and its ``truth.jsonl`` line gains
``"quarantined": true`` (matching never sees it: it is not a standard row, so it is neither
linkable nor a link in precision / recall). The kinds:

- ``invalid_bytes``: one double-byte character of the name (氏名 / 世帯主氏名) becomes a pair
  CPython's cp932 rejects whose trail byte is a plain ASCII character (lead 85, 86, EB, EC or
  EF; trail 40–7E), so decoding resumes cleanly after it → ``INVALID_BYTES``.
- ``not_digits``: one byte of 通知書番号 (tax), 郵便番号 (国保 世帯) or 国保記号番号 (被保険者)
  becomes one of ``O - I l *`` → ``NOT_DIGITS``.
- ``packed_digit``: one digit nibble of a packed field (総所得金額等, 年間保険税額) becomes A–F
  → ``NOT_DIGITS``.
- ``packed_sign``: the sign nibble of a packed field becomes an invalid one: 課税標準額 (unsigned)
  gets ``D`` (negative in an unsigned field) or 0–9/A/B/E, 年間保険税額 (signed) 0–9/A/B/E
  (never 0 when that would make the field all 0x00, which decodes as LOW-VALUE) →
  ``INVALID_SIGN``.
- ``zoned_sign``: the last byte of an unsigned zoned field (均等割額, 一部負担割合) becomes the
  negative overpunch of its digit (``}`` ``J``–``R``) or one of ``* / ?`` → ``INVALID_SIGN``.

``jutogai.dat`` is never corrupted: a quarantined 住登外 person would leave their tax / 国保
records without a reference key (as a corrupt 住民記録 record does with ``corrupt_share``).

Zoned convention (ASCII overpunch, the last byte carries the sign): unsigned fields are plain
ASCII digits; signed fields always overpunch: positive ``{ A B C D E F G H I`` for 0–9,
negative ``} J K L M N O P Q R`` for 0–9. Packed: two digits per byte, the last nibble is the
sign: ``C`` positive, ``D`` negative (signed fields), ``F`` (unsigned fields).
"""

from __future__ import annotations

import json
import random
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from ikou.pipeline.synth.text import Encoded, SynthError, encode_cp932, ibm_variant

__all__ = [
    "HOUSEHOLD_CASES",
    "HouseholdOptions",
    "KOKUHO_HIHOKENSHA_KINDS",
    "KOKUHO_SETAI_KINDS",
    "JUTOGAI_KINDS",
    "NENDO",
    "SOURCE_CHOICES",
    "SOURCE_CORRUPTION_FIELDS",
    "SourceFiles",
    "TAX_KINDS",
    "packed_bytes",
    "zoned_bytes",
]

#: Values of ``generate_municipality(sources=...)``; "jutogai" is added with "tax" or "kokuho".
SOURCE_CHOICES = ("juki", "tax", "kokuho", "jutogai")
NENDO = 2025  # 相当年度 of the tax file

ZONED_POSITIVE = "{ABCDEFGHI"
ZONED_NEGATIVE = "}JKLMNOPQR"


def zoned_bytes(value: int, length: int, signed: bool) -> bytes:
    """ASCII zoned decimal (see the module docstring for the overpunch convention)."""
    if value < 0 and not signed:
        raise SynthError("a negative value cannot be written to an unsigned zoned field")
    digits = str(abs(value)).zfill(length)
    if len(digits) > length:
        raise SynthError(f"value does not fit a zoned field of {length} digits")
    if signed:
        last = (ZONED_NEGATIVE if value < 0 else ZONED_POSITIVE)[int(digits[-1])]
        digits = digits[:-1] + last
    return digits.encode("ascii")


def packed_bytes(value: int, length: int, signed: bool) -> bytes:
    """Packed decimal of ``length`` bytes (2·length − 1 digits and a sign nibble)."""
    if value < 0 and not signed:
        raise SynthError("a negative value cannot be written to an unsigned packed field")
    digits = str(abs(value)).zfill(2 * length - 1)
    if len(digits) > 2 * length - 1:
        raise SynthError(f"value does not fit a packed field of {length} bytes")
    sign = ("D" if value < 0 else "C") if signed else "F"
    return bytes.fromhex(digits + sign)


def decimal_text(value: int, scale: int) -> str:
    """The decoded decimal128 value as ``str(Decimal)``."""
    if scale == 0:
        return str(value)  # the same text as str(Decimal(value)), faster
    return str(Decimal(value).scaleb(-scale))


# --- layouts ---------------------------------------------------------------------------------
def _header(length: int, extra=()):
    fields = [("lg_code", "団体コード", 1, 6, "digits"), ("created", "作成年月日", 7, 8, "date"),
              ("file_id", "ファイル識別", 15, 12, "text"), *extra]
    end = fields[-1][2] + fields[-1][3]
    return ("1", (*fields, ("pad", "", end, length - end, "filler")))


def _trailer(length: int):
    return ("9", (("record_count", "合計件数", 1, 8, "int"), ("pad", "", 9, length - 9, "filler")))


def _data(length: int, fields):
    out, pos = [], 1
    for f in fields:
        name, label, flen, ftype = f[:4]
        out.append((name, label, pos, flen, ftype, *f[4:]))
        pos += flen
    if pos > length:
        raise AssertionError(f"data fields end at {pos}, beyond {length}")
    if pos < length:
        out.append(("pad", "", pos, length - pos, "filler"))
    return ("2", tuple(out))


TAX_LENGTH = 240
TAX_KINDS = {
    "header": _header(TAX_LENGTH, (("nendo", "相当年度", 27, 4, "digits"),)),
    "data": _data(TAX_LENGTH, (
        ("atena_no", "宛名番号", 10, "digits"),
        ("nendo", "相当年度", 4, "digits"),
        ("tsuchisho_no", "通知書番号", 8, "digits"),
        ("jumin_kubun", "住民区分", 1, "digits"),
        ("name_kana", "氏名カナ", 30, "text"),
        ("name_kanji", "氏名", 30, "text"),
        ("birth", "生年月日", 7, "wareki"),
        ("sex", "性別", 1, "digits"),
        ("kazei_kubun", "課税区分", 1, "digits"),
        ("total_income", "総所得金額等", 6, "packed", {"signed": True, "scale": 0}),
        ("taxable_income", "課税標準額", 6, "packed", {"signed": False, "scale": 0}),
        ("shotokuwari", "所得割額", 9, "zoned", {"signed": True, "scale": 0}),
        ("kintowari", "均等割額", 6, "zoned", {"signed": False, "scale": 0}),
        ("shotokuwari_rate", "所得割税率", 4, "zoned", {"signed": False, "scale": 3}),
        ("annual_tax", "年税額", 5, "packed", {"signed": True, "scale": 0}),
        ("postal_code", "郵便番号", 7, "digits"),
        ("address", "住所", 80, "text"),
    )),
    "trailer": _trailer(TAX_LENGTH),
}

KOKUHO_LENGTH = 160
KOKUHO_SETAI_KINDS = {
    "header": _header(KOKUHO_LENGTH),
    "data": _data(KOKUHO_LENGTH, (
        ("kokuho_no", "国保記号番号", 8, "digits"),
        ("setai_no", "世帯番号", 10, "digits"),
        ("head_atena_no", "世帯主宛名番号", 10, "digits"),
        ("head_name_kanji", "世帯主氏名", 30, "text"),
        ("head_name_kana", "世帯主氏名カナ", 30, "text"),
        ("gisei", "擬制世帯主区分", 1, "digits"),
        ("shutoku", "資格取得年月日", 7, "wareki"),
        ("soshitsu", "資格喪失年月日", 7, "wareki"),
        ("insured_count", "被保険者数", 2, "int"),
        ("shotoku_kubun", "所得区分", 1, "digits"),
        ("hokenzei", "年間保険税額", 5, "packed", {"signed": True, "scale": 0}),
        ("postal_code", "郵便番号", 7, "digits"),
    )),
    "trailer": _trailer(KOKUHO_LENGTH),
}
KOKUHO_HIHOKENSHA_KINDS = {
    "header": _header(KOKUHO_LENGTH),
    "data": _data(KOKUHO_LENGTH, (
        ("atena_no", "宛名番号", 10, "digits"),
        ("kokuho_no", "国保記号番号", 8, "digits"),
        ("name_kanji", "氏名", 30, "text"),
        ("name_kana", "氏名カナ", 40, "text"),
        ("birth", "生年月日", 7, "wareki"),
        ("sex", "性別", 1, "digits"),
        ("zokugara", "続柄", 2, "digits"),
        ("shutoku", "資格取得年月日", 7, "wareki"),
        ("soshitsu", "資格喪失年月日", 7, "wareki"),
        ("tokurei", "住所地特例区分", 1, "digits"),
        ("futan", "一部負担割合", 2, "zoned", {"signed": False, "scale": 1}),
    )),
    "trailer": _trailer(KOKUHO_LENGTH),
}

JUTOGAI_LENGTH = 260
JUTOGAI_KINDS = {
    "header": _header(JUTOGAI_LENGTH),
    "data": _data(JUTOGAI_LENGTH, (
        ("atena_no", "宛名番号", 10, "digits"),
        ("name_kanji", "氏名", 40, "text"),
        ("name_kana", "氏名カナ", 40, "text"),
        ("sex", "性別", 1, "digits"),
        ("birth", "生年月日", 7, "wareki"),
        ("postal_code", "郵便番号", 7, "digits"),
        ("address", "住所", 120, "text"),
        ("registered", "住登外登録年月日", 8, "date"),
        ("reason", "登録事由", 2, "digits"),
    )),
    "trailer": _trailer(JUTOGAI_LENGTH),
}


#: Per corruptible export: corruption kind → the data field it breaks (module docstring).
#: The kinds of a file are dealt in this order.
SOURCE_CORRUPTION_FIELDS: dict[str, dict[str, str]] = {
    "zei": {"invalid_bytes": "name_kanji", "not_digits": "tsuchisho_no",
            "packed_digit": "total_income", "packed_sign": "taxable_income",
            "zoned_sign": "kintowari"},
    "kokuho_setai": {"invalid_bytes": "head_name_kanji", "not_digits": "postal_code",
                     "packed_digit": "hokenzei", "packed_sign": "hokenzei"},
    "kokuho_hihokensha": {"invalid_bytes": "name_kanji", "not_digits": "kokuho_no",
                          "zoned_sign": "futan"},
}
_SOURCE_CORRUPTION_CODES = {"invalid_bytes": "INVALID_BYTES", "not_digits": "NOT_DIGITS",
                            "packed_digit": "NOT_DIGITS", "packed_sign": "INVALID_SIGN",
                            "zoned_sign": "INVALID_SIGN"}


@dataclass(frozen=True)
class SourceFiles:
    """One generated legacy export. ``quarantined``: its data records the decoder must put in
    quarantine; ``corruptions``: how many of each corruption kind (empty when clean)."""

    name: str
    export: Path
    layout: Path
    expected: Path | None
    records: int
    data_records: int
    quarantined: int = 0
    corruptions: dict[str, int] = field(default_factory=dict)


def _is_lead(b: int) -> bool:
    return 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC


def _safe_invalid_pairs() -> tuple[bytes, ...]:
    """Pairs CPython's cp932 rejects whose trail byte alone is a printable ASCII character."""
    pairs = tuple(bytes((lead, trail)) for lead in (0x85, 0x86, 0xEB, 0xEC, 0xEF)
                  for trail in (0x40, 0x4B, 0x5A, 0x66, 0x7E))
    for pair in pairs:
        try:
            pair.decode("cp932")
        except UnicodeDecodeError:
            continue
        raise AssertionError(f"{pair.hex()} is valid CP932")
    return pairs


_INVALID_PAIRS = _safe_invalid_pairs()


class _Corruptor:
    """Makes chosen data records of one export corrupt (module docstring, source corruption)."""

    def __init__(self, name: str, share: float, rng: random.Random, fields: dict):
        self.name = name
        self.share = share
        self.rng = rng
        self.kinds = tuple(SOURCE_CORRUPTION_FIELDS[name].items())
        self.fields = fields  # name → (offset, length, type, options)
        self.counts = {k: 0 for k, _f in self.kinds}
        self.n = 0

    def maybe(self, rec: bytes) -> tuple[bytes, list] | None:
        """``(corrupt record, reasons)`` for a record chosen to be corrupt, else None."""
        rng = self.rng
        if rng.random() >= self.share:
            return None
        kind, fname = self.kinds[self.n % len(self.kinds)]
        self.n += 1
        self.counts[kind] += 1
        off, length, _ftype, opts = self.fields[fname]
        buf = bytearray(rec)
        raw = rec[off:off + length]
        if kind == "invalid_bytes":
            starts, i = [], 0
            while i < length:
                if _is_lead(raw[i]) and i + 1 < length:
                    starts.append(i)
                    i += 2
                else:
                    i += 1
            if not starts:
                raise AssertionError(f"{self.name}.{fname}: no double-byte character to break")
            at = off + rng.choice(starts)
            buf[at:at + 2] = rng.choice(_INVALID_PAIRS)
        elif kind == "not_digits":
            if not raw.isdigit():
                raise AssertionError(f"{self.name}.{fname}: not a written digits value")
            buf[off + rng.randrange(length)] = rng.choice(b"O-Il*")
        elif kind == "packed_digit":
            nibble = rng.randrange(2 * length - 1)  # any digit nibble, never the sign
            at = off + nibble // 2
            bad = rng.randint(0xA, 0xF)
            buf[at] = (bad << 4 | buf[at] & 0x0F) if nibble % 2 == 0 else (buf[at] & 0xF0 | bad)
        elif kind == "packed_sign":
            choices = [*range(10), 0xA, 0xB, 0xE] + ([] if opts["signed"] else [0xD] * 6)
            at = off + length - 1
            if not any(raw[:-1]) and buf[at] & 0xF0 == 0:
                choices.remove(0)  # all 0x00 would be LOW-VALUE (null), not a bad sign
            buf[at] = buf[at] & 0xF0 | rng.choice(choices)
        elif kind == "zoned_sign":
            if opts["signed"]:
                raise AssertionError(f"{self.name}.{fname}: zoned_sign needs an unsigned field")
            at = off + length - 1
            digit = buf[at] - 0x30
            buf[at] = rng.choice((ZONED_NEGATIVE[digit].encode()[0], *b"*/?"))
        else:  # pragma: no cover - the table above is fixed
            raise AssertionError(kind)
        return bytes(buf), [{"field": fname, "code": _SOURCE_CORRUPTION_CODES[kind]}]


def _text_bytes(value) -> bytes:
    # Strings reaching here are built from validated word lists, kana and ASCII only.
    return value.variants[0] if isinstance(value, Encoded) else value.encode("cp932")


def _text_value(value) -> str:
    return (value.text if isinstance(value, Encoded) else value).rstrip(" \u3000")


def _codec(ftype: str, length: int, opts: dict, wareki_value):
    """(encoder, expected-value function or None for the value itself) of one field type."""
    blank = b" " * length
    if ftype == "text":
        return (lambda v: _text_bytes(v).ljust(length)), _text_value
    if ftype == "digits":
        return (lambda v: blank if v is None else v.encode("ascii")), None
    if ftype == "int":
        return (lambda v: str(v).rjust(length).encode("ascii")), None
    if ftype == "date":
        return ((lambda v: blank if v is None else f"{v.year:04d}{v.month:02d}{v.day:02d}".encode()),
                (lambda v: None if v is None else v.isoformat()))
    if ftype == "wareki":
        return (lambda v: v.encode("ascii")), wareki_value
    signed, scale = opts["signed"], opts["scale"]
    if ftype == "zoned":
        return (lambda v: zoned_bytes(v, length, signed)), (lambda v: decimal_text(v, scale))
    if ftype == "packed":
        return (lambda v: packed_bytes(v, length, signed)), (lambda v: decimal_text(v, scale))
    raise AssertionError(f"type {ftype} is not written by the generator")


class RecordFile:
    """A fixed-length export written record by record, with its layout and expected values.

    Values by field type: text → ``str`` or :class:`Encoded`; digits → ``str`` or ``None``
    (blank); int → ``int``; date → ``date`` or ``None`` (blank); wareki → the raw string;
    zoned / packed → the unscaled ``int``.
    """

    def __init__(self, out: Path, name: str, label: str, record_length: int, kinds: dict,
                 write_expected: bool, wareki_value, render_layout, corrupt=None):
        """``corrupt``: ``(share, random stream)`` to make data records corrupt (the export
        must be one of :data:`SOURCE_CORRUPTION_FIELDS`), or None."""
        self.name = name
        self.record_length = record_length
        self.kinds = kinds
        self.wareki_value = wareki_value
        self.export = out / f"{name}.dat"
        self.layout = out / f"{name}.layout.yaml"
        self.expected = out / f"{name}.expected.jsonl" if write_expected else None
        self.layout.write_bytes(render_layout(name, label, kinds, record_length).encode("utf-8"))
        self._f = self.export.open("wb", buffering=1 << 20)
        self._e = self.expected.open("w", encoding="utf-8", newline="\n") if self.expected else None
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.records = 0
        self.data_records = 0
        self._plans = {kind: (code.encode("ascii"), self._compile(fields))
                       for kind, (code, fields) in kinds.items()}
        self._corruptor = None
        if corrupt is not None and corrupt[0] > 0:
            fields = {f[0]: (f[2], f[3], f[4], f[5] if len(f) > 5 else {})
                      for f in kinds["data"][1]}
            self._corruptor = _Corruptor(name, corrupt[0], corrupt[1], fields)
        #: whether the last record written was made corrupt (and goes to quarantine)
        self.last_corrupt = False

    def write(self, kind: str, values: dict) -> int:
        """Write one record; returns its 1-based record number."""
        code, plan = self._plans[kind]
        parts = [code]
        expected = {} if self._e else None
        for name, enc, exp in plan:
            if name is None:
                parts.append(enc)
                continue
            value = values[name]
            parts.append(enc(value))
            if expected is not None:
                expected[name] = value if exp is None else exp(value)
        rec = b"".join(parts)
        if len(rec) != self.record_length:
            raise AssertionError(f"{self.name}: a {kind} value does not fit its field")
        corrupt = None
        if kind == "data" and self._corruptor is not None:
            corrupt = self._corruptor.maybe(rec)
            if corrupt is not None:
                rec = corrupt[0]
        self.last_corrupt = corrupt is not None
        self._f.write(rec + b"\r\n")
        self.records += 1
        if kind == "data":
            self.data_records += 1
        if expected is not None:
            entry = {"record": self.records, "kind": kind,
                     "offset": (self.records - 1) * (self.record_length + 2)}
            if corrupt is None:
                entry["fate"] = "row"
                entry["values"] = expected
            else:
                entry["fate"] = "quarantine"
                entry["reasons"] = corrupt[1]
            self._e.write(self._dumps(entry) + "\n")
        return self.records

    def _compile(self, fields) -> list:
        """Per field: (name, encoder → exactly ``length`` bytes, expected-value function)."""
        plan = []
        for fdef in fields:
            name, _label, _off, length, ftype = fdef[:5]
            opts = fdef[5] if len(fdef) > 5 else {}
            if ftype == "filler":
                plan.append((None, b" " * length, None))
            else:
                plan.append((name, *_codec(ftype, length, opts, self.wareki_value)))
        return plan

    def close(self) -> SourceFiles:
        self._f.close()
        if self._e:
            self._e.close()
        c = self._corruptor
        return SourceFiles(self.name, self.export, self.layout, self.expected, self.records,
                           self.data_records, c.n if c else 0,
                           {k: n for k, n in c.counts.items() if n} if c else {})

    def abort(self) -> None:
        self._f.close()
        if self._e:
            self._e.close()


# --- spelling as other subsystems write it -------------------------------------------------
_TO_STANDARD = str.maketrans({
    "髙": "高", "\ufa11": "崎", "邊": "辺", "邉": "辺", "齋": "斎", "齊": "斎", "濵": "浜",
    "濱": "浜", "德": "徳", "栁": "柳", "瀨": "瀬", "\ufa10": "塚", "\ufa19": "神", "\ufa1b": "福",
    "\uf9dc": "隆", "\ufa12": "晴", "嶋": "島", "實": "実",
})
_TO_EXTENDED = str.maketrans({"高": "髙", "崎": "\ufa11"})
_SMALL_HW = str.maketrans("ｧｨｩｪｫｯｬｭｮ", "ｱｲｳｴｵﾂﾔﾕﾖ")
_SMALL_FW = str.maketrans("ァィゥェォッャュョ", "アイウエオツヤユヨ")


@dataclass(frozen=True)
class HouseholdOptions:
    """How the tax file departs from the 住民記録 households (shares 0–1). The defaults (all 0,
    keys written) give the plain file; :data:`HOUSEHOLD_CASES` (what ``ikou generate --households`` and the
    demo use) turns every case on.

    ``relative_share``: per household, the chance of a 住登外 relative taxed here at the
    household's address and 郵便番号 with its surname (a ``jutogai.dat`` person: no resident
    record); ``namesake_share`` of those relatives have the 世帯主's given name and sex too
    (a namesake, born 20–35 years apart). ``move_share``: taxpayers who moved within the town
    since 1 January (the tax record has the old address and 郵便番号). ``marriage_share``:
    taxpayers whose tax record has another surname (a maiden name: married since the
    assessment) — mostly spouses, with the old address. ``typo_share``: birth dates typed
    wrongly (day and month swapped, one digit off, a few days off). ``unspaced_share``: names
    written with no space between 氏 and 名 (half of them with an ASCII space in the kanji name
    instead). ``blank_postal_share``: 郵便番号 left blank. ``tax_keys=False``: no tax record
    carries a 宛名番号 (matching must go by the other fields)."""

    relative_share: float = 0.0
    namesake_share: float = 0.5
    move_share: float = 0.0
    marriage_share: float = 0.0
    typo_share: float = 0.0
    unspaced_share: float = 0.0
    blank_postal_share: float = 0.0
    tax_keys: bool = True

    def __post_init__(self):
        for name in ("relative_share", "namesake_share", "move_share", "marriage_share",
                     "typo_share", "unspaced_share", "blank_postal_share"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise SynthError(f"{name} must be a number between 0 and 1, got {v!r}")
        if not isinstance(self.tax_keys, bool):
            raise SynthError("tax_keys must be true or false")


#: Every household case on, at shares like the ones seen in real tax/resident pairs (what
#: ``ikou generate --households`` and ``ikou demo`` write; the share options override each).
HOUSEHOLD_CASES = HouseholdOptions(relative_share=0.05, namesake_share=0.5, move_share=0.03,
                                   marriage_share=0.01, typo_share=0.03, unspaced_share=0.1,
                                   blank_postal_share=0.02)


def _valid_day(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def birth_typo(birth: date, rng: random.Random) -> date:
    """A wrongly typed birth date (never the same day): day and month swapped, one digit of
    YYYYMMDD replaced, or 1–5 days off, whichever gives a real date."""
    for _ in range(20):
        r = rng.random()
        if r < 0.35:
            cand = _valid_day(birth.year, birth.day, birth.month)
        elif r < 0.8:
            digits = list(birth.strftime("%Y%m%d"))
            i = rng.choice((3, 5, 6, 7))  # last year digit, month, day
            digits[i] = rng.choice([c for c in "0123456789" if c != digits[i]])
            text = "".join(digits)
            cand = _valid_day(int(text[:4]), int(text[4:6]), int(text[6:]))
        else:
            cand = date.fromordinal(birth.toordinal() + rng.choice((-5, -3, -2, -1, 1, 2, 4)))
        if cand is not None and cand != birth and date(1868, 10, 23) < cand < date(2019, 4, 30):
            return cand
    return date.fromordinal(birth.toordinal() + 1)


def _enc(text: str) -> Encoded:
    data = encode_cp932(text)
    alt = ibm_variant(data)
    return Encoded(text, (data,) if alt == data else (data, alt))


class Spellings:
    """Per word: how a subsystem without the 外字 table writes it, and a variant spelling."""

    def __init__(self, pieces_list, fallback: dict[str, str]):
        self.base: list[Encoded] = []
        self.variant: list[Encoded | None] = []
        self.standardising: list[bool] = []
        for pieces in pieces_list:
            text = "".join(fallback[p] if g else p for p, g in pieces)
            self.base.append(_enc(text))
            std = text.translate(_TO_STANDARD)
            ext = text.translate(_TO_EXTENDED)
            if std != text:
                self.variant.append(_enc(std))
                self.standardising.append(True)
            elif ext != text:
                self.variant.append(_enc(ext))
                self.standardising.append(False)
            else:
                self.variant.append(None)
                self.standardising.append(False)

    def pick(self, idx: int, rnd) -> Encoded:
        v = self.variant[idx]
        if v is not None and rnd() < (0.4 if self.standardising[idx] else 0.05):
            return v
        return self.base[idx]


def _join_name(sur: Encoded, given: Encoded, sep: str = "\u3000") -> Encoded:
    return Encoded(sur.text + sep + given.text,
                   (sur.variants[0] + encode_cp932(sep) + given.variants[0],))


def kana_variant_hw(kana: str, rnd) -> str:
    r = rnd()
    if r < 0.08:
        return kana.replace("ﾞ", "").replace("ﾟ", "")
    if r < 0.13:
        return kana.translate(_SMALL_HW)
    return kana


def kana_variant_fw(kana: str, rnd) -> str:
    r = rnd()
    if r < 0.08:
        decomposed = unicodedata.normalize("NFD", kana)
        return unicodedata.normalize("NFC", decomposed.replace("\u3099", "").replace("\u309a", ""))
    if r < 0.13:
        return kana.translate(_SMALL_FW)
    return kana


def mistype_key(atena: str, rng: random.Random, share: float) -> tuple[str | None, str]:
    """(written key or None, "valid" | "missing" | "mistyped")."""
    if share <= 0 or rng.random() >= share:
        return atena, "valid"
    if rng.random() < 0.4:
        return None, "missing"
    digits = list(atena)
    i = rng.randrange(len(digits) - 1)
    if rng.random() < 0.4 and digits[i] != digits[i + 1]:
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    else:
        j = rng.randrange(len(digits))
        digits[j] = rng.choice([d for d in "0123456789" if d != digits[j]])
    return "".join(digits), "mistyped"


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --- writers fed by the resident stream ------------------------------------------------------
_OTHER_CITIES = (("紅葉県", "朝日市", "271"), ("白浜県", "港北市", "652"), ("東山県", "中川町", "389"),
                 ("北原県", "松風市", "071"))


@dataclass
class _Outsider:
    """A 住登外 person."""

    __slots__ = ("atena", "record", "surname_idx", "given_idx", "sex", "birth", "postal",
                 "address")
    atena: str
    record: int
    surname_idx: int
    given_idx: int
    sex: str
    birth: date
    postal: str
    address: Encoded


class Context:
    """What the source writers share: output folder, word lists, spellings, truth file."""

    def __init__(self, out: Path, vocab, gaiji_rows, scheme, key_error_share: float,
                 write_expected: bool, seed: int, rng_for, source_corrupt_share: float = 0.0):
        from ikou.pipeline.synth import municipality as synth

        self.synth = synth
        self.out = out
        self.vocab = vocab
        self.scheme = scheme
        self.key_error_share = key_error_share
        self.source_corrupt_share = source_corrupt_share
        self.write_expected = write_expected
        self.seed = seed
        self.rng_for = rng_for
        fallback = {row.text: row.fallback for row in gaiji_rows}
        self.gaiji_fallback = sorted(fallback.items(), key=lambda kv: -len(kv[0]))
        self.sur = Spellings(vocab.surnames.pieces, fallback)
        self.given = Spellings(vocab.male.pieces + vocab.female.pieces, fallback)
        self.sur_hw = vocab.surnames.readings
        self.given_hw = vocab.male.readings + vocab.female.readings
        self.sur_fw = vocab.surnames.readings_fw
        self.given_fw = vocab.male.readings_fw + vocab.female.readings_fw
        self.n_male = len(vocab.male.readings)
        self.truth_path = out / "truth.jsonl"
        self._truth = self.truth_path.open("w", encoding="utf-8", newline="\n")
        self._addr_cache: tuple[str, Encoded] | None = None

    def record_file(self, name: str, label: str, length: int, kinds: dict) -> RecordFile:
        corrupt = None
        if name in SOURCE_CORRUPTION_FIELDS and self.source_corrupt_share > 0:
            corrupt = (self.source_corrupt_share, self.rng_for(f"corrupt-{name}"))
        return RecordFile(self.out, name, label, length, kinds, self.write_expected,
                          self.synth._wareki_cached, self.synth.render_layout_yaml, corrupt)

    def header(self, f: RecordFile, prefix: str, **extra) -> None:
        f.write("header", {"lg_code": self.synth.LG_CODE, "created": self.synth.AS_OF,
                           "file_id": f"{prefix}{self.seed % 10**8:08d}", **extra})

    def truth(self, file: str, record: int, atena: str, population: str, target_record: int,
              key: str, same_spelling: bool, quarantined: bool = False) -> None:
        # all values are ASCII identifiers and digits: formatted directly (json.dumps is slow)
        flag = ',"quarantined":true' if quarantined else ""
        self._truth.write(
            f'{{"file":"{file}","record":{record},"atena_no":"{atena}",'
            f'"population":"{population}","target_file":"{population}.dat",'
            f'"target_record":{target_record},"key":"{key}",'
            f'"spelling":"{"same" if same_spelling else "variant"}"{flag}}}\n')

    def without_gaiji(self, address: Encoded) -> str:
        """The address text as a subsystem without the 外字 table writes it."""
        text = address.text
        for gaiji_text, fb in self.gaiji_fallback:
            if gaiji_text in text:
                text = text.replace(gaiji_text, fb)
        return text

    def tax_address(self, address: Encoded) -> Encoded:
        cached = self._addr_cache
        if cached is not None and cached[0] == address.text:
            return cached[1]
        text = self.without_gaiji(address)
        prefix = self.synth.PREFECTURE
        if text.startswith(prefix):
            text = text[len(prefix):]
        enc = Encoded(text, (encode_cp932(text),))
        self._addr_cache = (address.text, enc)
        return enc

    def same_spelling(self, sur: Encoded, surname_idx: int, given: Encoded, given_idx: int) -> bool:
        """True if the name is written as in 住民記録."""
        return (sur.text == self.vocab.sur_enc[surname_idx].text
                and given.text == self.given_enc(given_idx).text)

    def given_enc(self, given_idx: int) -> Encoded:
        v = self.vocab
        return v.male_enc[given_idx] if given_idx < self.n_male else v.female_enc[given_idx - self.n_male]

    def close(self) -> None:
        self._truth.close()


class JutogaiWriter:
    """``jutogai.dat``: 住登外 people, written as they are created."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.rng = ctx.rng_for("jutogai")
        self.file = ctx.record_file("jutogai", "住登外 (legacy, synthetic)", JUTOGAI_LENGTH,
                                    JUTOGAI_KINDS)
        ctx.header(self.file, "JT")
        start = 90_000_000 + int(self.rng.random() * 1_000_000)
        self.seq = ctx.synth._Sequence(start, self.rng.random, ctx.scheme)

    def _address(self) -> tuple[str, Encoded]:
        rng, vocab = self.rng, self.ctx.vocab
        pref, city, postal3 = _OTHER_CITIES[rng.randrange(len(_OTHER_CITIES))]
        _postal, town, _chome, _style = vocab.towns[rng.randrange(len(vocab.towns))]
        rest = f"{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        rest = rest.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        head = encode_cp932(pref + city)
        text = pref + city + town.text + rest
        return (f"{postal3}{rng.randrange(10000):04d}",
                Encoded(text, (head + town.variants[0] + encode_cp932(rest),)))

    def add(self, surname_idx: int, given_idx: int, sex: str, birth: date, reason: str,
            registered: date, at: tuple[str, Encoded] | None = None) -> _Outsider:
        """A 住登外 person (``at``: their 郵便番号 and address, else one in another city)."""
        ctx = self.ctx
        atena = self.seq.next()
        postal, address = self._address() if at is None else at
        given = ctx.given_enc(given_idx)
        sur = ctx.vocab.sur_enc[surname_idx]
        name = _join_name(sur, given)
        record = self.file.write("data", {
            "atena_no": atena, "name_kanji": name,
            "name_kana": ctx.sur_hw[surname_idx] + " " + ctx.given_hw[given_idx],
            "sex": sex, "birth": ctx.synth.to_wareki(birth), "postal_code": postal,
            "address": address, "registered": registered, "reason": reason,
        })
        return _Outsider(atena, record, surname_idx, given_idx, sex, birth, postal, address)

    def close(self) -> SourceFiles:
        self.file.write("trailer", {"record_count": self.file.data_records})
        return self.file.close()

    def abort(self) -> None:
        self.file.abort()


class TaxWriter:
    """``zei.dat``: 個人住民税, one record per taxpayer."""

    def __init__(self, ctx: Context, jutogai: JutogaiWriter, residents: int,
                 household: HouseholdOptions | None = None):
        self.ctx = ctx
        self.jutogai = jutogai
        self.residents = residents
        self.household = HouseholdOptions() if household is None else household
        self.rng = ctx.rng_for("tax")
        self.keys = ctx.rng_for("tax-keys")
        self.hh = ctx.rng_for("tax-households")  # the household cases' own stream
        self.file = ctx.record_file("zei", "個人住民税 (legacy, synthetic)", TAX_LENGTH, TAX_KINDS)
        ctx.header(self.file, "ZE", nendo=str(NENDO))
        self.tsuchisho = 30_000_000 + int(self.rng.random() * 1_000_000)

    def add(self, p, juki_record: int) -> None:
        ctx, opts, hh = self.ctx, self.household, self.hh
        if p.zokugara == "01" and opts.relative_share and hh.random() < opts.relative_share:
            self._relative(p)
        age = age_on(p.birth, ctx.synth.AS_OF)
        rnd = self.rng.random
        chance = 0.15 if age < 22 else 0.78 if age < 65 else 0.55
        if age < 18 or rnd() >= chance:
            return
        surname_idx, postal, address = p.surname_idx, p.postal, p.address
        moved = opts.move_share and hh.random() < opts.move_share
        married = (opts.marriage_share and p.zokugara in ("02", "03", "04", "05")
                   and hh.random() < min(1.0, opts.marriage_share * 4))
        if married:  # the maiden surname, and (mostly) the address before the marriage
            n = len(ctx.vocab.surnames.readings)
            surname_idx = (p.surname_idx + 1 + int(hh.random() * (n - 1))) % n
            moved = moved or hh.random() < 0.7
        if moved:
            postal, address = ctx.synth._address(hh, ctx.vocab)
        self._write(p.atena, surname_idx, p.given_idx, p.sex, p.birth, postal,
                    ctx.tax_address(address), "1", "juki", juki_record)

    def _relative(self, head) -> None:
        """A 住登外 relative at the household's address (taxed here, no resident record)."""
        ctx, hh, synth = self.ctx, self.hh, self.ctx.synth
        if hh.random() < self.household.namesake_share:
            given, sex = head.given_idx, head.sex
            shift = hh.randint(20, 35) * (1 if hh.random() < 0.5 else -1)
        else:
            sex = "1" if hh.random() < 0.5 else "2"
            words = ctx.vocab.male if sex == "1" else ctx.vocab.female
            given = bisect_right(words.cum_weights, hh.random() * words.cum_weights[-1])
            given += 0 if sex == "1" else ctx.n_male
            shift = hh.randint(-30, 30)
        age = max(18, min(95, age_on(head.birth, synth.AS_OF) + shift))
        birth = date.fromordinal(synth.AS_OF.toordinal() - int(age * 365.2425)
                                 - hh.randrange(365))
        registered = date.fromordinal(date(NENDO - 3, 1, 1).toordinal() + hh.randrange(1000))
        person = self.jutogai.add(head.surname_idx, given, sex, birth, "01", registered,
                                  at=(head.postal, head.address))
        self._write(person.atena, head.surname_idx, given, sex, birth, head.postal,
                    ctx.tax_address(head.address), "2", "jutogai", person.record)

    def _write(self, atena, surname_idx, given_idx, sex, birth, postal, address, kubun,
               population, target_record) -> None:
        ctx, rng, opts, hh = self.ctx, self.rng, self.household, self.hh
        rnd = rng.random
        sur = ctx.sur.pick(surname_idx, rnd)
        given = ctx.given.pick(given_idx, rnd)
        sep, kana_sep = "\u3000", " "
        if opts.unspaced_share and hh.random() < opts.unspaced_share:
            sep, kana_sep = ("" if hh.random() < 0.5 else " "), ("" if hh.random() < 0.5 else " ")
        name = _join_name(sur, given, sep)
        kana = kana_variant_hw(ctx.sur_hw[surname_idx] + kana_sep + ctx.given_hw[given_idx], rnd)
        if opts.typo_share and hh.random() < opts.typo_share:
            birth = birth_typo(birth, hh)
        if opts.blank_postal_share and hh.random() < opts.blank_postal_share:
            postal = None
        r = rnd()
        rate = 60
        if r < 0.2:  # 非課税
            kazei = "3"
            total = -rng.randint(10_000, 3_000_000) if rnd() < 0.1 else rng.randint(0, 1_000_000)
            taxable = shotokuwari = kintowari = 0
        elif r < 0.3:  # 均等割のみ
            kazei = "2"
            total = rng.randint(450_000, 1_350_000)
            taxable = shotokuwari = 0
            kintowari = 3000
        else:
            kazei = "1"
            total = min(99_999_999_999, max(1_000_000, int(rng.lognormvariate(15.2, 0.6))))
            taxable = max(0, total - 430_000 - rng.randint(0, 2_000_000)) // 1000 * 1000
            shotokuwari = max(0, taxable * 6 // 100 - rng.randint(0, 2500)) // 100 * 100
            if rnd() < 0.02:  # 減額更正: a negative adjustment
                shotokuwari = -rng.randint(1, 500) * 100
            kintowari = 3000
        self.tsuchisho += 1
        written, key = mistype_key(atena, self.keys, ctx.key_error_share)
        if not opts.tax_keys:
            written, key = None, "missing"
        record = self.file.write("data", {
            "atena_no": written, "nendo": str(NENDO), "tsuchisho_no": f"{self.tsuchisho:08d}",
            "jumin_kubun": kubun, "name_kana": kana, "name_kanji": name,
            "birth": ctx.synth.to_wareki(birth), "sex": sex, "kazei_kubun": kazei,
            "total_income": total, "taxable_income": taxable, "shotokuwari": shotokuwari,
            "kintowari": kintowari, "shotokuwari_rate": rate,
            "annual_tax": shotokuwari + kintowari, "postal_code": postal, "address": address,
        })
        ctx.truth("zei.dat", record, atena, population, target_record, key,
                  ctx.same_spelling(sur, surname_idx, given, given_idx),
                  self.file.last_corrupt)

    def close(self) -> SourceFiles:
        """Adds the people who moved away after 1 January (住登外, taxed here)."""
        ctx, rng = self.ctx, self.rng
        synth = ctx.synth
        vocab = ctx.vocab
        sur_cum, sur_total = vocab.surnames.cum_weights, vocab.surnames.cum_weights[-1]
        for _ in range(max(1, round(self.residents * 0.02))):
            sex = "1" if rng.random() < 0.5 else "2"
            fam = bisect_right(sur_cum, rng.random() * sur_total)
            if sex == "1":
                g = bisect_right(vocab.male.cum_weights, rng.random() * vocab.male.cum_weights[-1])
            else:
                g = ctx.n_male + bisect_right(vocab.female.cum_weights,
                                              rng.random() * vocab.female.cum_weights[-1])
            age = rng.randint(22, 80)
            birth = date.fromordinal(synth.AS_OF.toordinal() - int(age * 365.2425)
                                     - rng.randrange(365))
            moved = date.fromordinal(date(NENDO, 1, 2).toordinal() + rng.randrange(85))
            person = self.jutogai.add(fam, g, sex, birth, "01", moved)
            self._write(person.atena, fam, g, sex, birth, person.postal,
                        ctx.tax_address(person.address), "2", "jutogai", person.record)
        self.file.write("trailer", {"record_count": self.file.data_records})
        return self.file.close()

    def abort(self) -> None:
        self.file.abort()


class KokuhoWriter:
    """``kokuho_setai.dat`` and ``kokuho_hihokensha.dat``: 国保 資格情報, household by household."""

    def __init__(self, ctx: Context, jutogai: JutogaiWriter):
        self.ctx = ctx
        self.jutogai = jutogai
        self.rng = ctx.rng_for("kokuho")
        self.keys = ctx.rng_for("kokuho-keys")
        self.setai = ctx.record_file("kokuho_setai", "国民健康保険 資格情報 世帯 (legacy, synthetic)",
                                     KOKUHO_LENGTH, KOKUHO_SETAI_KINDS)
        self.hiho = ctx.record_file("kokuho_hihokensha",
                                    "国民健康保険 資格情報 被保険者 (legacy, synthetic)",
                                    KOKUHO_LENGTH, KOKUHO_HIHOKENSHA_KINDS)
        ctx.header(self.setai, "KS")
        ctx.header(self.hiho, "KH")
        self.kokuho_no = 20_000_000 + int(self.rng.random() * 1_000_000)
        self.household: list = []

    def add(self, p, juki_record: int) -> None:
        if self.household and self.household[0][0].setai != p.setai:
            self._flush()
        self.household.append((p, juki_record))

    def _qualification(self, birth: date) -> tuple[str, str]:
        """(資格取得日, 資格喪失日) as wareki raw values."""
        synth, rng = self.ctx.synth, self.rng
        as_of = synth.AS_OF.toordinal()
        first = max(birth.toordinal(), as_of - 25 * 365)
        got = first + int(rng.random() * (as_of - first + 1))
        lost = "       "
        if rng.random() < 0.03 and got < as_of:
            lost = synth.to_wareki(date.fromordinal(got + 1 + rng.randrange(as_of - got)))
        return synth.to_wareki(date.fromordinal(got)), lost

    def _flush(self) -> None:
        members, self.household = self.household, []
        ctx, rng = self.ctx, self.rng
        synth = ctx.synth
        head, head_record = members[0]
        head_age = age_on(head.birth, synth.AS_OF)
        if rng.random() >= (0.45 if head_age >= 60 else 0.15):
            return
        insured = []
        for p, record in members:
            if age_on(p.birth, synth.AS_OF) < 75 and rng.random() < 0.92:
                insured.append(("juki", p.atena, record, p.surname_idx, p.given_idx, p.sex,
                                p.birth, p.zokugara, "0"))
        if not insured:
            return
        if rng.random() < 0.06:  # a student insured here under 住所地特例, living elsewhere
            sex = "1" if rng.random() < 0.5 else "2"
            vocab = ctx.vocab
            from bisect import bisect_right

            if sex == "1":
                g = bisect_right(vocab.male.cum_weights, rng.random() * vocab.male.cum_weights[-1])
            else:
                g = ctx.n_male + bisect_right(vocab.female.cum_weights,
                                              rng.random() * vocab.female.cum_weights[-1])
            birth = date.fromordinal(synth.AS_OF.toordinal() - int(rng.randint(18, 22) * 365.2425)
                                     - rng.randrange(365))
            registered = date.fromordinal(synth.AS_OF.toordinal() - rng.randrange(1, 1000))
            person = self.jutogai.add(head.surname_idx, g, sex, birth, "03", registered)
            insured.append(("jutogai", person.atena, person.record, head.surname_idx, g, sex,
                            birth, "11", "1"))
        self.kokuho_no += 1
        kokuho_no = f"{self.kokuho_no:08d}"
        quals = [self._qualification(m[6]) for m in insured]
        shutoku = min(quals, key=lambda q: synth.wareki_value(q[0])["date"])[0]
        soshitsu = "       "
        if all(q[1].strip() for q in quals):
            soshitsu = max(quals, key=lambda q: synth.wareki_value(q[1])["date"])[1]
        hokenzei = 20_000 * len(insured) + rng.randint(0, 300_000)
        if rng.random() < 0.01:
            hokenzei = -rng.randint(1_000, 50_000)
        rnd = rng.random
        sur = ctx.sur.pick(head.surname_idx, rnd)
        given = ctx.given.pick(head.given_idx, rnd)
        name = _join_name(sur, given)
        written, key = mistype_key(head.atena, self.keys, ctx.key_error_share)
        record = self.setai.write("data", {
            "kokuho_no": kokuho_no, "setai_no": head.setai, "head_atena_no": written,
            "head_name_kanji": name,
            "head_name_kana": kana_variant_hw(
                ctx.sur_hw[head.surname_idx] + " " + ctx.given_hw[head.given_idx], rnd),
            "gisei": "0" if insured[0][1] == head.atena else "1",
            "shutoku": shutoku, "soshitsu": soshitsu, "insured_count": len(insured),
            "shotoku_kubun": str(rng.randint(1, 4)), "hokenzei": hokenzei,
            "postal_code": head.postal,
        })
        ctx.truth("kokuho_setai.dat", record, head.atena, "juki", head_record, key,
                  ctx.same_spelling(sur, head.surname_idx, given, head.given_idx),
                  self.setai.last_corrupt)
        for (population, atena, target, fam, g, sex, birth, zokugara, tokurei), (got, lost) in zip(
            insured, quals, strict=True
        ):
            sur = ctx.sur.pick(fam, rnd)
            given = ctx.given.pick(g, rnd)
            name = _join_name(sur, given)
            age = age_on(birth, synth.AS_OF)
            written, key = mistype_key(atena, self.keys, ctx.key_error_share)
            record = self.hiho.write("data", {
                "atena_no": written, "kokuho_no": kokuho_no, "name_kanji": name,
                "name_kana": kana_variant_fw(ctx.sur_fw[fam] + "\u3000" + ctx.given_fw[g], rnd),
                "birth": synth.to_wareki(birth), "sex": sex, "zokugara": zokugara,
                "shutoku": got, "soshitsu": lost, "tokurei": tokurei,
                "futan": 2 if age >= 70 or age < 6 else 3,
            })
            ctx.truth("kokuho_hihokensha.dat", record, atena, population, target, key,
                      ctx.same_spelling(sur, fam, given, g), self.hiho.last_corrupt)

    def close(self) -> tuple[SourceFiles, SourceFiles]:
        if self.household:
            self._flush()
        self.setai.write("trailer", {"record_count": self.setai.data_records})
        self.hiho.write("trailer", {"record_count": self.hiho.data_records})
        return self.setai.close(), self.hiho.close()

    def abort(self) -> None:
        self.setai.abort()
        self.hiho.abort()
