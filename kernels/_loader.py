"""Choosing between a compiled kernel and its pure-Python twin, in one place.

The compiled module ``_NAME`` is always used unless the environment variable
``IKOU_PURE_PYTHON=1`` asks for the twin ``_NAME_py``. A compiled module that fails to import
raises: a broken build never falls back to slow code in silence.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["load_kernel", "pure_python_requested"]


def pure_python_requested() -> bool:
    return os.environ.get("IKOU_PURE_PYTHON", "") not in ("", "0")


def load_kernel(name: str) -> tuple[ModuleType, str]:
    """``(module, "compiled" | "python")`` for the kernel ``name`` (e.g. ``"_decode"``)."""
    if pure_python_requested():
        return importlib.import_module(f"{__package__}.{name}_py"), "python"
    try:
        return importlib.import_module(f"{__package__}.{name}"), "compiled"
    except ImportError as exc:  # pragma: no cover - exercised only with a broken build
        raise ImportError(
            f"the compiled kernel {__package__}.{name} could not be imported; build it with "
            "`python setup.py build_ext --inplace` (or `make build`), or set IKOU_PURE_PYTHON=1 "
            f"to use the slow pure-Python twin on purpose ({exc})"
        ) from exc
