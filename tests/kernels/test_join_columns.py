"""The element-wise joins that build quarantine reasons and Avro datums in bulk."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ikou.kernels._decode_common import concat_runs, join_columns

ITEMS = st.lists(st.binary(max_size=6), max_size=30)


@settings(max_examples=200, deadline=None)
@given(ITEMS, st.data())
def test_concat_runs_joins_consecutive_items(items, data):
    cut = data.draw(st.integers(0, len(items)))  # a sliced array (offsets not from 0)
    arr = pa.array([b"x"] * cut + items, pa.binary()).slice(cut)
    inner = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=8)))
    bounds = np.array([0, *inner, len(items)])
    got = concat_runs(arr, bounds)
    got.validate(full=True)
    assert got.to_pylist() == [b"".join(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.data())
def test_join_columns_is_elementwise_concatenation(n, data):
    parts = []
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            parts.append(data.draw(st.sampled_from([b"", b"ab", "字 "])))
        else:
            parts.append(pa.array(data.draw(st.lists(st.binary(max_size=4), min_size=n,
                                                     max_size=n)), pa.binary()))
    got = join_columns(parts, n=n)
    got.validate(full=True)

    def piece(p, i):
        return p.encode() if isinstance(p, str) else p if isinstance(p, bytes) else p[i].as_py()

    assert got.to_pylist() == [b"".join(piece(p, i) for p in parts) for i in range(n)]
