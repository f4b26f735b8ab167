"""Check digits: 宛名番号/世帯番号 mod 11 and 個人番号 (ikou.pipeline.steps.checkdigit)."""

import random

import pytest

from ikou.pipeline.steps.checkdigit import (
    CheckDigitError,
    Mod11Scheme,
    UnissuableNumberError,
    append_mod11,
    is_valid_mod11,
    is_valid_my_number,
    mod11_check_digit,
    my_number_check_digit,
)

REJECT = Mod11Scheme(remainder_one="reject")


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        # 9*2+8*3+7*4+6*5+5*6+4*7+3*2+2*3+1*4 = 174, 174 mod 11 = 9, 11-9 = 2
        ("123456789", 2),
        ("000000031", 0),  # 1*2+3*3 = 11: remainder 0 gives 0
        ("000000033", 7),  # 3*2+3*3 = 15, r 4
        ("000000022", 1),  # 2*2+2*3 = 10, r 10
        ("000000040", 0),  # 0*2+4*3 = 12, r 1: "zero" scheme
        ("0", 0),
        ("7", 8),  # 7*2 = 14, r 3
    ],
)
def test_mod11_known_values(body, digit):
    assert mod11_check_digit(body) == digit
    assert append_mod11(body) == body + str(digit)
    assert is_valid_mod11(body + str(digit))
    assert not is_valid_mod11(body + str((digit + 1) % 10))


def test_weights_repeat_after_six_digits():
    # the 7th digit from the right has weight 2 again, the 8th weight 3
    assert mod11_check_digit("1000000") == 11 - 2
    assert mod11_check_digit("10000000") == 11 - 3


def test_remainder_one_reject_scheme():
    with pytest.raises(UnissuableNumberError):
        mod11_check_digit("000000040", REJECT)
    assert is_valid_mod11("0000000400")  # default scheme: remainder 1 → 0
    assert not is_valid_mod11("0000000400", REJECT)
    assert mod11_check_digit("123456789", REJECT) == 2


def test_scheme_validation():
    with pytest.raises(CheckDigitError):
        Mod11Scheme(remainder_one="ten")
    with pytest.raises(ValueError):
        Mod11Scheme(weights=())


@pytest.mark.parametrize("bad", ["", "12a4", "１２３", "12 3", None, 123])
def test_bad_input(bad):
    with pytest.raises(CheckDigitError) as info:
        mod11_check_digit(bad)
    assert isinstance(info.value, ValueError)
    if isinstance(bad, str) and bad:
        assert bad not in str(info.value)  # messages never echo the number
    assert not is_valid_mod11(bad)


def _remainder(body):
    weights = (2, 3, 4, 5, 6, 7)
    return sum(int(c) * weights[i % 6] for i, c in enumerate(reversed(body))) % 11


def test_single_digit_errors_detected():
    rng = random.Random(11)
    for _ in range(300):
        body = f"{rng.randrange(10**9):09d}"
        try:
            number = append_mod11(body, REJECT)
        except UnissuableNumberError:
            continue
        for pos in range(10):
            for d in "0123456789":
                if d == number[pos]:
                    continue
                changed = number[:pos] + d + number[pos + 1:]
                assert not is_valid_mod11(changed, REJECT)
                # under the "zero" scheme only a swap between remainders 0 and 1 can hide
                if is_valid_mod11(changed):
                    assert {_remainder(number[:-1]), _remainder(changed[:-1])} <= {0, 1}


def test_my_number_known_value():
    # 1*2+0*3+9*4+8*5+7*6+6*7+5*2+4*3+3*4+2*5+1*6 = 212, 212 mod 11 = 3, 11-3 = 8
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789017")
    # remainder 0 and 1 both give 0
    assert my_number_check_digit("00000000031") == 0
    assert my_number_check_digit("00000000040") == 0


def test_my_number_equals_mod11_zero_scheme():
    rng = random.Random(5)
    for _ in range(500):
        body = f"{rng.randrange(10**11):011d}"
        assert my_number_check_digit(body) == mod11_check_digit(body)


@pytest.mark.parametrize("bad", ["1234567890", "123456789012345", "12345678901x", "", None])
def test_my_number_bad_input(bad):
    assert not is_valid_my_number(bad)
    with pytest.raises(CheckDigitError):
        my_number_check_digit(bad)
