"""``numpy_to_arrow``: what ``pa.array`` gives for 1-D numpy arrays, built from the buffer."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ikou.kernels._decode_common import numpy_to_arrow

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float32, np.float64, np.bool_]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(
    lambda t: hnp.arrays(t, st.integers(0, 70), elements={"allow_nan": False}
                         if np.dtype(t).kind == "f" else None)),
       st.integers(1, 3))
def test_same_as_pa_array(values, step):
    for v in (values, values[::step]):  # contiguous and strided
        got = numpy_to_arrow(v)
        got.validate(full=True)
        assert got.equals(pa.array(v))


@pytest.mark.parametrize("target", [pa.int32(), pa.int64(), pa.float64()])
def test_a_type_is_a_safe_cast(target):
    v = np.array([1, 2, 3], np.int64)
    assert numpy_to_arrow(v, target).equals(pa.array(v, target))
    with pytest.raises(pa.ArrowInvalid):
        numpy_to_arrow(np.array([2**40]), pa.int32())
    with pytest.raises(pa.ArrowInvalid):
        pa.array(np.array([2**40]), pa.int32())


def test_other_input_goes_to_pa_array():
    assert numpy_to_arrow([1, None, 3]).equals(pa.array([1, None, 3]))
    assert numpy_to_arrow(np.array(["a", "b"])).equals(pa.array(np.array(["a", "b"])))
