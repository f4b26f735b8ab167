"""Type stub of the compiled decoding kernel ``_decode.pyx`` (twin: ``_decode_py``, the same
signature; ``tests/kernels/test_stubs.py`` keeps them equal)."""

import numpy.typing as npt
from typing_extensions import Buffer

from ._decode_common import DecodePlan, DecodeResult

__all__ = ["decode_block", "CYTHON_MODULE"]

CYTHON_MODULE: int

def decode_block(
    buf: Buffer, starts: npt.ArrayLike, plan: DecodePlan, drop_rejected: bool = False
) -> DecodeResult: ...
