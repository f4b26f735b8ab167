"""Synthetic standard tables for suite tests and benchmarks (fixed seeds, nothing committed).

``good_table(standard, n, seed)`` builds ``n`` rows that satisfy the standard's suite: valid
check digits, unique keys, code-table values, lengths within 桁数, kana in katakana. Names and
addresses come from small invented lists (:data:`FAMILY`, :data:`GIVEN`, :data:`TOWNS`) so tests
can search generated reports for them. Everything is vectorised (1,000,000 rows in seconds).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FAMILY", "GIVEN", "TOWNS", "atena_numbers", "good_table", "with_check_digit"]

FAMILY = ["鷺ノ宮", "砧川", "東雲寺", "柊木", "朝霧", "楪", "雲雀丘", "榊原田"]
FAMILY_KANA = ["サギノミヤ", "キヌタガワ", "シノノメデラ", "ヒイラギ", "アサギリ", "ユズリハ",
               "ヒバリガオカ", "サカキバラダ"]
GIVEN = ["琥珀", "翡翠郎", "瑠璃子", "玻璃彦", "珊瑚", "蛍石", "柘榴", "黒曜"]
GIVEN_KANA = ["コハク", "ヒスイロウ", "ルリコ", "ハリヒコ", "サンゴ", "ホタルイシ", "ザクロ",
              "コクヨウ"]
TOWNS = ["架空県見本市霞台一丁目", "架空県見本市白樺町二丁目", "架空県試験村星見野三番地"]


def with_check_digit(body: np.ndarray, width: int) -> np.ndarray:
    """Append the mod-11 (weights 2–7 from the right, remainders 0/1 → 0) check digit to
    integer bodies of ``width - 1`` digits; returns int64 numbers of ``width`` digits."""
    body = body.astype(np.int64)
    total = np.zeros(len(body), dtype=np.int64)
    rest = body.copy()
    for i in range(width - 1):
        total += (rest % 10) * (2 + i % 6)
        rest //= 10
    r = total % 11
    check = np.where(r <= 1, 0, 11 - r)
    return body * 10 + check


def _digits(numbers: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width,
                        padding="0")


def atena_numbers(n: int, seed: int, width: int = 10, start: int = 1) -> pa.Array:
    """``n`` distinct 宛名番号 strings (shuffled), ``width`` digits with a valid check digit."""
    rng = np.random.default_rng(seed)
    bodies = rng.permutation(np.arange(start, start + n, dtype=np.int64))
    return _digits(with_check_digit(bodies, width), width)


def _pick(rng, values: list[str], n: int) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(rng.integers(0, len(values), n)))


def good_table(std, n: int, seed: int = 0, atena_pool: pa.Array | None = None,
               source: str = "synthetic.dat") -> pa.Table:
    """``n`` valid rows of ``std`` (an ``ikou.pipeline.config.standard.Standard``, passed in: this
    package does not import ``ikou.pipeline``; see the module docstring). ``atena_pool``: 宛名番号 values
    that referencing items (``references: resident``) draw from."""
    rng = np.random.default_rng(seed)
    fam = rng.integers(0, len(FAMILY), n)
    giv = rng.integers(0, len(GIVEN), n)
    shimei = pc.binary_join_element_wise(pa.array(FAMILY).take(pa.array(fam)),
                                         pa.array(GIVEN).take(pa.array(giv)), "\u3000")
    kana = pc.binary_join_element_wise(pa.array(FAMILY_KANA).take(pa.array(fam)),
                                       pa.array(GIVEN_KANA).take(pa.array(giv)), "\u3000")
    cols: dict[str, pa.Array] = {}
    unique_atena = atena_numbers(n, seed + 1)
    for it in std.items:
        f = it.field
        if it.type == "date":
            days = rng.integers(-14000, 18000, n)  # 1931 .. 2019
            d = pa.array(days.astype("int32"), pa.int32()).cast(pa.date32())
            cols[f] = d
            ymd = pc.add(pc.add(pc.multiply(pc.year(d), 10000), pc.multiply(pc.month(d), 100)),
                         pc.day(d))
            cols[f + "_raw"] = pc.cast(ymd, pa.string())
            cols[f + "_status"] = pa.array(["valid"] * 1, pa.string()).take(
                pa.array(np.zeros(n, dtype=np.int8))).dictionary_encode().cast(
                pa.dictionary(pa.int8(), pa.string()))
        elif it.type == "code":
            cols[f] = _pick(rng, list(std.codes(it).codes), n)
        elif it.type == "int":
            cols[f] = pa.array(rng.integers(0, min(10 ** it.length - 1, 10_000_000), n),
                               pa.int64())
        elif it.type == "kana":
            cols[f] = kana
        elif it.check == "atena_mod11":
            if it.references == "resident" and atena_pool is not None:
                pick = (rng.permutation(len(atena_pool))[:n] if n <= len(atena_pool)
                        else rng.integers(0, len(atena_pool), n))
                cols[f] = atena_pool.take(pa.array(pick))
            elif f in std.keys or "宛名番号" in it.name:
                cols[f] = unique_atena
            else:
                cols[f] = _digits(with_check_digit(rng.integers(1, 10**8, n), 9), 9)
        elif it.check == "kojin_bango":
            cols[f] = _digits(with_check_digit(rng.integers(10**9, 10**11 - 1, n), 12), 12)
        elif it.type == "digits":
            width = it.length if it.fixed else min(it.length, 11)
            cols[f] = _digits(rng.integers(0, 10 ** min(width, 18) - 1, n), width)
        elif it.pattern:  # e.g. 識別番号: unique alphanumerics
            cols[f] = pc.utf8_lpad(pc.cast(pa.array(rng.permutation(n) + 1), pa.string()),
                                   width=min(it.length, 12), padding="0")
        elif "氏名" in it.name or it.field in ("kyuuji", "hittosha"):
            cols[f] = shimei
        elif "住所" in it.name or it.field == "honseki":
            cols[f] = _pick(rng, TOWNS, n)
        elif it.field == "zokugara":
            cols[f] = _pick(rng, ["世帯主", "妻", "子", "子の妻"], n)
        else:
            cols[f] = _pick(rng, ["記載"], n)
    record = np.arange(2, n + 2, dtype=np.int64)  # record 1 is the header
    lineage = {"_source": pa.array([source], pa.string()).take(
                   pa.array(np.zeros(n, dtype=np.int8))),
               "_record": pa.array(record), "_offset": pa.array((record - 1) * 302)}
    cols.update(lineage)
    schema = std.schema(lineage=True)
    assert schema.names[-3:] == ["_source", "_record", "_offset"]  # the lineage columns
    return pa.Table.from_arrays([cols[name].cast(schema.field(name).type)
                                 for name in schema.names], schema=schema)
