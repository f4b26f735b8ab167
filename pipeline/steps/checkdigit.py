"""Check digits of Japanese municipal identifiers.

宛名番号 / 世帯番号 (mod 11, weights 2–7)
    The last digit checks the digits before it ("body"). Weights 2, 3, 4, 5, 6, 7, 2, 3, ...
    are applied from the rightmost body digit leftwards; ``r = sum mod 11``; the check digit is
    ``11 − r``, where remainder 0 (``11``) gives 0. What a municipality does with remainder 1
    (``11 − 1 = 10``, not a digit) is not fixed publicly (docs: *unverified*), so it is a choice of
    :class:`Mod11Scheme`:

    - ``"zero"`` (default): the check digit is 0, as 個人番号 does;
    - ``"reject"``: such bodies are never issued; :func:`mod11_check_digit` raises
      :class:`UnissuableNumberError` and :func:`is_valid_mod11` is False for them.

個人番号 (My Number, 12 digits)
    Public algorithm of the 番号法 施行令: over the 11 digits before the check digit, numbered
    n = 1..11 from the right, weight q(n) = n + 1 for n ≤ 6 and n − 5 for n ≥ 7;
    ``r = sum mod 11``; check digit 0 if r ≤ 1, else 11 − r.

All functions take ASCII digit strings; anything else raises :class:`CheckDigitError`
(a ``ValueError``). Messages never contain the number itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_MOD11",
    "CheckDigitError",
    "Mod11Scheme",
    "UnissuableNumberError",
    "append_mod11",
    "is_valid_mod11",
    "is_valid_my_number",
    "mod11_check_digit",
    "my_number_check_digit",
]

REMAINDER_ONE_CHOICES = ("zero", "reject")


class CheckDigitError(ValueError):
    """The input is not a digit string of an acceptable length."""


class UnissuableNumberError(CheckDigitError):
    """Under a ``remainder_one="reject"`` scheme this body has no check digit."""


@dataclass(frozen=True)
class Mod11Scheme:
    """Modulus-11 check digit over weights repeating from the right.

    ``weights``: applied from the rightmost body digit leftwards, repeating.
    ``remainder_one``: ``"zero"`` or ``"reject"`` (see the module docstring).
    """

    weights: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    remainder_one: str = "zero"

    def __post_init__(self) -> None:
        if self.remainder_one not in REMAINDER_ONE_CHOICES:
            raise CheckDigitError(
                f"remainder_one must be one of {', '.join(REMAINDER_ONE_CHOICES)}, "
                f"got {self.remainder_one!r}"
            )
        if not self.weights or any(not isinstance(w, int) or w < 1 for w in self.weights):
            raise CheckDigitError("weights must be a non-empty tuple of positive integers")


DEFAULT_MOD11 = Mod11Scheme()


def _digits(value: str, what: str, length: int | None = None, min_length: int = 1) -> str:
    if not isinstance(value, str):
        raise CheckDigitError(f"{what} must be a str of ASCII digits, got {type(value).__name__}")
    if not (value.isascii() and value.isdigit()):
        raise CheckDigitError(f"{what} must consist of ASCII digits only")
    if length is not None and len(value) != length:
        raise CheckDigitError(f"{what} must have {length} digits, got {len(value)}")
    if len(value) < min_length:
        raise CheckDigitError(f"{what} must have at least {min_length} digit(s), got {len(value)}")
    return value


def _mod11_remainder(body: str, weights: tuple[int, ...]) -> int:
    n = len(weights)
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += (ord(ch) - 48) * weights[i % n]
    return total % 11


def mod11_check_digit(body: str, scheme: Mod11Scheme = DEFAULT_MOD11) -> int:
    """The check digit for ``body`` (the number without its check digit)."""
    _digits(body, "body")
    r = _mod11_remainder(body, scheme.weights)
    if r == 0:
        return 0
    if r == 1:
        if scheme.remainder_one == "reject":
            raise UnissuableNumberError("this body has remainder 1 and is not issued under the scheme")
        return 0
    return 11 - r


def append_mod11(body: str, scheme: Mod11Scheme = DEFAULT_MOD11) -> str:
    """``body`` followed by its check digit."""
    return body + str(mod11_check_digit(body, scheme))


def is_valid_mod11(number: str, scheme: Mod11Scheme = DEFAULT_MOD11) -> bool:
    """True if the last digit of ``number`` is the check digit of the digits before it.

    Non-digit input or fewer than 2 digits is simply not valid (False), so this can be used on
    untrusted column values.
    """
    if not isinstance(number, str) or len(number) < 2 or not (number.isascii() and number.isdigit()):
        return False
    r = _mod11_remainder(number[:-1], scheme.weights)
    if r == 1 and scheme.remainder_one == "reject":
        return False
    expected = 0 if r <= 1 else 11 - r
    return ord(number[-1]) - 48 == expected


def my_number_check_digit(body: str) -> int:
    """The 個人番号 check digit for its first 11 digits."""
    _digits(body, "個人番号 body", length=11)
    total = 0
    for n, ch in enumerate(reversed(body), start=1):
        q = n + 1 if n <= 6 else n - 5
        total += (ord(ch) - 48) * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_my_number(number: str) -> bool:
    """True for 12 ASCII digits whose last digit is the 個人番号 check digit."""
    if not isinstance(number, str) or len(number) != 12 or not (number.isascii() and number.isdigit()):
        return False
    return my_number_check_digit(number[:11]) == ord(number[-1]) - 48
