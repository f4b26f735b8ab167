"""``kernels._compute``: the decoding path's compute functions, called by name, give what
``pyarrow.compute`` (and the ``Array`` methods that import it) give."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ikou.kernels import _compute as ac

STRINGS = pa.array(["a", None, "ccc", "", "a"], pa.string())
INTS = pa.array([3, None, -1, 0, 3], pa.int64())
MASK = pa.array([True, False, None, True, False])


def test_take_cast_filter_as_the_array_methods():
    idx = pa.array([4, 0, 2, 2])
    assert ac.take(STRINGS, idx).equals(STRINGS.take(idx))
    assert ac.take(INTS, pa.array([], pa.int64())).equals(INTS.take(pa.array([], pa.int64())))
    with pytest.raises(IndexError):
        ac.take(STRINGS, pa.array([5]))
    assert ac.cast(INTS, pa.string()).equals(INTS.cast(pa.string()))
    assert ac.cast(STRINGS, pa.binary()).equals(STRINGS.cast(pa.binary()))
    with pytest.raises(pa.ArrowInvalid):  # safe: no overflow
        ac.cast(pa.array([2**40]), pa.int32())
    batch = pa.record_batch([STRINGS, INTS], names=["s", "i"])
    assert ac.filter_(batch, MASK).equals(batch.filter(MASK))
    assert ac.filter_(STRINGS, MASK).equals(STRINGS.filter(MASK))


def test_element_wise_and_aggregates_as_pyarrow_compute():
    binary = STRINGS.cast(pa.binary())
    yes, no = pa.scalar(b"\x00", pa.binary()), pa.scalar(b"\x02", pa.binary())
    assert ac.if_else(MASK, yes, no).equals(pc.if_else(MASK, yes, no))
    assert ac.is_null(STRINGS).equals(pc.is_null(STRINGS))
    assert ac.is_null(pa.array([1.0, float("nan"), None])).equals(
        pc.is_null(pa.array([1.0, float("nan"), None])))
    for values, fill in ((STRINGS, ""), (INTS, 0), (binary, pa.scalar(b"", pa.binary())),
                         (STRINGS, pa.scalar(b"x", pa.binary()))):
        assert ac.fill_null(values, fill).equals(pc.fill_null(values, fill))
    assert ac.equal(STRINGS, STRINGS[0]).equals(pc.equal(STRINGS, STRINGS[0]))
    for values in (pa.array([True, None, True]), pa.array([True, False]),
                   pa.array([], pa.bool_()), pa.array([None], pa.bool_())):
        assert ac.all_(values).equals(pc.all(values))
    assert ac.binary_length(binary).equals(pc.binary_length(binary))
    assert ac.dictionary_encode(STRINGS).equals(pc.dictionary_encode(STRINGS))
    assert ac.value_counts(STRINGS).equals(pc.value_counts(STRINGS))
