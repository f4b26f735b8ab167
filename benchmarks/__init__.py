"""Benchmarks: ``python -m benchmarks [--quick] [--json PATH] [--only NAME ...]``.

Each ``benchmarks/bench_*.py`` module exposes ``run(quick: bool) -> list[dict]``: one dict per
measured case (flat keys; numbers are figures, ``bench`` names the module's topic).  Data are
generated with fixed seeds; nothing is committed.
"""

import os
import tempfile


def command_env() -> dict[str, str]:
    """The environment of the timed commands: an installed command's, with its bytecode cache
    (pip compiles the modules at install time; an editable install writes them on the first
    run).  A ``PYTHONDONTWRITEBYTECODE`` in this environment would make every timed run
    compile ikou's modules again, so it is dropped, and the cache goes to a folder of its own
    (``IKOU_BENCH_PYCACHE``, else one under the system's temporary folder) instead of the
    source tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.environ.get("IKOU_BENCH_PYCACHE") or os.path.join(
        tempfile.gettempdir(), "ikou-bench-pycache")
    return env
