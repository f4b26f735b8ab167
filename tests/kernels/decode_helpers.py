"""Shared by the decoding-kernel tests: decode records with one implementation and check that
the pure-Python twin gives the identical batch and errors."""

import numpy as np

from ikou.kernels import DecodePlan, _decode_py


def decode_checked(decode, fields, records, gaiji=None, **plan_kw):
    """Decode equal-length records; return (plan, result) after checking the twin agrees."""
    rl = len(records[0])
    assert all(len(r) == rl for r in records)
    plan = DecodePlan(record_length=rl, fields=fields, gaiji=gaiji, **plan_kw)
    buf = b"".join(records)
    starts = np.arange(len(records), dtype=np.int64) * rl
    res = decode(buf, starts, plan)
    other = _decode_py.decode_block(buf, starts, plan)
    assert res.batch.equals(other.batch)
    assert res.errors.equals(other.errors)
    return plan, res
