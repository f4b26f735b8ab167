"""外字 counting (transforms/decode/gaiji_count.py) against a byte-by-byte CP932 walk."""

from __future__ import annotations

import numpy as np

from ikou.kernels import DecodePlan, FieldSpec
from ikou.transforms.decode.gaiji_count import count_gaiji


def _walk(field: bytes) -> list[int]:
    """外字 codes of one field, walking CP932 one character at a time."""
    out, i = [], 0
    while i < len(field):
        b = field[i]
        if (0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC) and i + 1 < len(field) and (
                0x40 <= field[i + 1] <= 0x7E or 0x80 <= field[i + 1] <= 0xFC):
            if 0xF0 <= b <= 0xF9:
                out.append(b << 8 | field[i + 1])
            i += 2
        else:
            i += 1
    return out


def test_counts_match_a_character_walk():
    rng = np.random.default_rng(5)
    length, n = 12, 3000
    # bytes biased towards lead bytes, trail bytes and the 外字 area
    pool = np.array(list(range(0x20, 0x7F)) + list(range(0x81, 0xA0)) * 2
                    + list(range(0xE0, 0xFD)) + list(range(0xF0, 0xFA)) * 4, dtype=np.uint8)
    recs = rng.choice(pool, size=(n, length + 4))
    buf = recs.tobytes()
    starts = np.arange(n, dtype=np.int64) * (length + 4)
    table = {0xF040: "髙", 0xF041: ("𠮷", "吉"), 0xF0A0: ("﨑", "﨑")}
    codes = {0xF040, 0xF041, 0xF0A0}
    for code in range(0xF040, 0xF9FD, 7):  # a table of about a third of the area's codes
        if 0x40 <= (code & 0xFF) <= 0xFC and (code & 0xFF) != 0x7F:
            codes.add(code)
            table.setdefault(code, "字")
    for fallback in (False, True):
        plan = DecodePlan(record_length=length + 4, fields=[
            FieldSpec("a", offset=2, length=length, type="text"),
            FieldSpec("d", offset=0, length=2, type="digits")], gaiji=table,
            gaiji_fallback=fallback)
        got: dict[str, int] = {}
        count_gaiji(np.frombuffer(buf, np.uint8), starts, plan, got)
        want: dict[str, int] = {}
        for s in starts.tolist():
            for code in _walk(buf[s + 2:s + 2 + length]):
                entry = table.get(code)
                state = ("unmapped" if entry is None else
                         "fallback" if fallback and isinstance(entry, tuple)
                         and entry[0] != entry[1] else "mapped")
                key = f"{code:04X} {state}"
                want[key] = want.get(key, 0) + 1
        assert got == want
        assert sum(want.values()) > 100
        assert any(k.endswith("unmapped") for k in want)
        assert any(k.endswith("fallback") for k in want) == fallback


def test_digits_fields_and_empty_selections_are_not_scanned():
    plan = DecodePlan(record_length=4, fields=[FieldSpec("d", offset=0, length=4,
                                                         type="digits")])
    got: dict[str, int] = {}
    count_gaiji(np.frombuffer(b"\xf0\x40\xf0\x40", np.uint8), np.array([0]), plan, got)
    count_gaiji(np.frombuffer(b"", np.uint8), np.zeros(0, np.int64), plan, got)
    assert got == {}
