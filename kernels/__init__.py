"""Hot kernels (Cython) with pure-Python twins. No Beam, no Great Expectations here.

``from ikou.kernels import FieldSpec, DecodePlan, decode_block, ErrorCode, KERNEL_IMPL``

The compiled ``_decode`` module is always used unless ``IKOU_PURE_PYTHON=1`` asks for the
pure-Python twin ``_decode_py``.  A compiled module that fails to import raises: a broken
build never falls back to slow code in silence.
"""

from . import decode as _decode_facade
from .decode import *  # noqa: F403 - the decoding kernel's names, listed in decode.__all__

__all__ = list(_decode_facade.__all__)

from .records import (  # noqa: E402
    RecordFormat,
    ScanResult,
    Stop,
    describe_stop,
    find_resync,
    scan_records,
)

__all__ += ["RecordFormat", "ScanResult", "Stop", "describe_stop", "find_resync",
            "scan_records"]
