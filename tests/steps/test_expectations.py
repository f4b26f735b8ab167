"""Custom expectations, check digits, versioned suites and GX set-up (ikou.expectations)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ikou.expectations.checkdigits import valid_kojin_bango, valid_mod11
from ikou.expectations.context import analytics_status, gx, new_context
from ikou.expectations.custom import (
    ExpectColumnValuesToHaveValidAtenaCheckDigit,
    ExpectColumnValuesToHaveValidKojinBangoCheckDigit,
)
from ikou.expectations.suites import (
    CROSS_SUITE,
    SuiteError,
    load_suite,
    read_suite_dict,
    suite_path,
)
from ikou.expectations.synthetic import atena_numbers, with_check_digit
from ikou.pipeline.config.standard import load_standard, standard_names
from ikou.pipeline.steps import checkdigit
from ikou.pipeline.steps.suitegen import build_suite, expected_files


def _random_numbers(seed: int, n: int, lo: int, hi: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(lo, hi + 1, n)
    return ["".join(map(str, rng.integers(0, 10, k))) for k in lengths]


@pytest.mark.parametrize("remainder_one", ["zero", "reject"])
def test_vectorised_mod11_agrees_with_checkdigit_module(remainder_one):
    values = _random_numbers(11, 5000, 2, 15) + ["12a4", "", "7"]
    scheme = checkdigit.Mod11Scheme(remainder_one=remainder_one)
    expected = [checkdigit.is_valid_mod11(v, scheme) for v in values]
    got = valid_mod11(pa.array(values), remainder_one)
    assert got.tolist() == expected
    assert 300 < sum(expected) < 700  # about 1 in 11 random numbers is valid


def test_vectorised_my_number_agrees_with_checkdigit_module():
    values = _random_numbers(12, 5000, 12, 12) + ["12345678901", "1234567890123", "ABCDEFGHIJKL"]
    got = valid_kojin_bango(pd.Series(values))
    assert got.tolist() == [checkdigit.is_valid_my_number(v) for v in values]
    assert got.sum() > 300


def test_synthetic_numbers_carry_valid_check_digits():
    nums = atena_numbers(2000, seed=3)
    assert len(set(nums.to_pylist())) == 2000
    assert valid_mod11(nums).all()
    assert all(checkdigit.is_valid_mod11(v) for v in nums.to_pylist()[:200])
    mn = with_check_digit(np.arange(10**10, 10**10 + 500), 12)
    assert all(checkdigit.is_valid_my_number(f"{v:012d}") for v in mn)


def test_gx_analytics_are_off():
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    ctx = new_context()
    status = analytics_status(ctx)
    assert status["context_analytics_enabled"] is False
    assert not status["gx_analytics_module"]  # None (not shipped) or False (switched off)
    assert type(ctx).__name__ == "EphemeralDataContext"


def _validate(df: pd.DataFrame, expectation) -> dict:
    ctx = new_context()
    batch_def = ctx.data_sources.add_pandas("t").add_dataframe_asset("a") \
        .add_batch_definition_whole_dataframe("b")
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(expectation, result_format={
        "result_format": "SUMMARY", "unexpected_index_column_names": ["_record"],
        "exclude_unexpected_values": True})
    return res.to_json_dict()


def test_atena_check_digit_expectation():
    good = atena_numbers(50, seed=5).to_pylist()
    bad = good[:3]
    bad = [v[:-1] + str((int(v[-1]) + 1) % 10) for v in bad] + ["12x"]
    df = pd.DataFrame({"_record": range(1, 55), "atena_no": good + bad})
    res = _validate(df, ExpectColumnValuesToHaveValidAtenaCheckDigit(column="atena_no"))
    assert res["success"] is False
    assert res["result"]["unexpected_count"] == 4
    assert res["result"]["partial_unexpected_index_list"] == [{"_record": [51, 52, 53, 54]}]
    ok = _validate(df.iloc[:50], ExpectColumnValuesToHaveValidAtenaCheckDigit(column="atena_no"))
    assert ok["success"] is True


def test_atena_remainder_one_is_configurable():
    body = next(b for b in range(10**8, 10**8 + 100)
                if sum(int(c) * (2 + i % 6) for i, c in enumerate(reversed(str(b)))) % 11 == 1)
    number = f"{body}0"
    df = pd.DataFrame({"_record": [1], "atena_no": [number]})
    zero = _validate(df, ExpectColumnValuesToHaveValidAtenaCheckDigit(column="atena_no"))
    reject = _validate(df, ExpectColumnValuesToHaveValidAtenaCheckDigit(
        column="atena_no", remainder_one="reject"))
    assert (zero["success"], reject["success"]) == (True, False)


def test_kojin_bango_expectation_ignores_nulls_and_flags_bad_digits():
    good = [f"{v:012d}" for v in with_check_digit(np.arange(10**10, 10**10 + 20), 12)]
    vals = good + [good[0][:-1] + str((int(good[0][-1]) + 1) % 10), "12345", None]
    df = pd.DataFrame({"_record": range(1, 24), "kojin_bango": vals})
    res = _validate(df, ExpectColumnValuesToHaveValidKojinBangoCheckDigit(column="kojin_bango"))
    assert res["result"]["unexpected_count"] == 2
    assert res["result"]["missing_count"] == 1
    assert res["result"]["partial_unexpected_index_list"] == [{"_record": [21, 22]}]


def test_committed_suites_match_the_definitions():
    files = expected_files()
    assert set(files) == {suite_path(n) for n in standard_names()} | {CROSS_SUITE}
    stale = [str(p) for p, text in files.items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with python -m ikou.pipeline.steps.suitegen --write: {stale}"


@pytest.mark.parametrize("name", standard_names())
def test_suite_covers_the_rules_of_its_definition(name):
    std = load_standard(name)
    doc = read_suite_dict(suite_path(name))
    suite = load_suite(name)
    assert len(suite.expectations) == len(doc["expectations"])  # nothing dropped by GX
    types = {(e["type"], e["kwargs"].get("column")) for e in doc["expectations"]}
    assert ("expect_table_row_count_to_equal", None) in types
    for it in std.items:
        col = it.field + "_status" if it.type == "date" else it.field
        if it.required:
            assert ("expect_column_values_to_not_be_null", col) in types
        if it.type == "code":
            assert ("expect_column_values_to_be_in_set", col) in types
        if it.type in ("text", "kana", "digits"):
            assert ("expect_column_value_lengths_to_be_between", col) in types
        if it.check == "atena_mod11":
            assert ("expect_column_values_to_have_valid_atena_check_digit", col) in types
        if it.check == "kojin_bango":
            assert ("expect_column_values_to_have_valid_kojin_bango_check_digit", col) in types
    row_count = next(e for e in doc["expectations"]
                     if e["type"] == "expect_table_row_count_to_equal")
    assert row_count["kwargs"]["value"] == {"$PARAMETER": "expected_rows"}
    assert doc["meta"]["ikou"]["suite_version"] >= 1
    assert build_suite(std) == doc


def test_resident_suite_has_key_uniqueness_and_postal_pattern():
    doc = read_suite_dict(suite_path("juki"))
    kinds = [(e["type"], e["kwargs"].get("column"), e["kwargs"].get("regex"))
             for e in doc["expectations"]]
    assert ("expect_column_values_to_be_unique", "atena_no", None) in kinds
    assert ("expect_column_values_to_match_regex", "yubin_bango", "^[0-9]{7}$") in kinds
    status_sets = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in doc["expectations"]
                   if e["type"] == "expect_column_values_to_be_in_set"
                   and e["kwargs"]["column"].endswith("_status")}
    assert "blank" in status_sets["seinengappi_status"]  # required, allow_blank: true
    assert "blank" in status_sets["jumin_date_status"]  # optional
    kk = read_suite_dict(suite_path("kokuho_kojin"))
    kk_sets = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in kk["expectations"]
               if e["type"] == "expect_column_values_to_be_in_set"}
    assert "blank" not in kk_sets["shikaku_shutoku_date_status"]  # required


def test_invalid_suite_file_is_an_error(tmp_path):
    doc = read_suite_dict(suite_path("kokuho_setai"))
    doc["expectations"].append({"type": "expect_column_values_to_be_fabulous",
                                "kwargs": {"column": "setai_no"}, "meta": {}})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"bad\.json: .*not valid"):
        load_suite(bad)
    with pytest.raises(SuiteError, match="suite file not found"):
        load_suite(tmp_path / "missing.json")
    assert isinstance(gx.ExpectationSuite(name="x"), gx.ExpectationSuite)


# The Arrow engine (ikou.expectations.arrow_engine) runs anchored ASCII character-class
# patterns without a regex; this must be exactly what GX's pandas call gives.
_ALPHABET = list("0123456789azAZ_ -\n\t") + ["１", "٣", "ｱ", "ア", "é", "\u3000", "０"]


def _tricky_strings(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = ["", "0", "1234567", "12345678", "123456\n", "1234567\n", "\n", "A1b2", "１２３"]
    for _ in range(n):
        k = int(rng.integers(0, 18))
        digits_only = rng.random() < 0.5
        pool = _ALPHABET[:10] if digits_only else _ALPHABET
        out.append("".join(pool[i] for i in rng.integers(0, len(pool), k)))
    return out


@pytest.mark.parametrize("regex", ["^[0-9]+$", "^[0-9]{7}$", "^[0-9]{2,15}$",
                                   "^[0-9A-Za-z]{1,15}$", "^[0-9A-Za-z]+$",
                                   "^[\u30a1-\u30f6\u30fc\u30fb\u3000]+$"])
@pytest.mark.parametrize("with_newlines", [True, False])
def test_arrow_regex_conditions_equal_gx_pandas(regex, with_newlines):
    from ikou.expectations.arrow_engine import _match_regex

    values = [v for v in _tricky_strings(5, 3000) if with_newlines or "\n" not in v]
    values += [None, None]
    arr = pa.array(values, pa.string())
    got = _match_regex(arr, {"regex": regex})
    nonnull = pd.Series([v for v in values if v is not None], dtype="str")
    expected = ~nonnull.astype(str).str.contains(regex).to_numpy(dtype=bool)
    assert got[:-2].tolist() == expected.tolist()
    assert not got[-2:].any()  # nulls are never unexpected
    if "0-9" in regex:
        assert 0 < expected.sum() < len(expected)
    dictionary = _match_regex(arr.dictionary_encode(), {"regex": regex})
    assert dictionary.tolist() == got.tolist()


def test_vectorised_check_digits_reject_non_ascii_and_newlines():
    good = atena_numbers(3, seed=4).to_pylist()
    tricky = [good[0] + "\n", good[1].replace(good[1][0], "１", 1), " " + good[2], good[2]]
    assert valid_mod11(pa.array(tricky)).tolist() == [False, False, False, True]
