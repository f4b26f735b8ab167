"""Fuzz smoke test of the kernel's entry point: arbitrary buffers, starts and valid plans.

Nothing may crash the process; bad starts raise BlockError (a ValueError); everything else
decodes to a valid batch equal to the pure-Python twin's.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decode_hypothesis import PIECES, assert_same, field_specs

from ikou.kernels import BlockError, DecodePlan

_decode = pytest.importorskip("ikou.kernels._decode")


@st.composite
def entry_calls(draw):
    rl = draw(st.integers(1, 40))
    fields = [draw(field_specs(f"f{i}", rl)) for i in range(draw(st.integers(1, 4)))]
    plan = DecodePlan(record_length=rl, fields=fields, gaiji={0xF040: "髙"})
    data = b"".join(draw(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=6)),
                                  max_size=60)))
    starts = draw(st.lists(st.integers(-3, len(data) + 3), max_size=8))
    return plan, data, starts


@settings(max_examples=500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(entry_calls())
def test_fuzz_entry_point(call):
    plan, data, starts = call
    ok = all(0 <= s <= len(data) - plan.record_length for s in starts)
    if not ok:
        with pytest.raises(BlockError):
            _decode.decode_block(data, np.array(starts, dtype=np.int64), plan)
        return
    res = assert_same(plan, data, np.array(starts, dtype=np.int64))
    assert res.batch.num_rows == len(starts)
    assert set(res.bad_rows.tolist()) <= set(range(len(starts)))
