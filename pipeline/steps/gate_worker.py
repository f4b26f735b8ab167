"""The gates in a process of their own, started with the run.

Importing Great Expectations takes seconds (its expectation registry pulls in scipy, altair,
pandas). A job starts a :class:`GateWorker` before its pipeline: the worker process
(``python -m ikou.pipeline.steps.gate_worker``) imports the gates on the other core while the
pipeline and record matching run, then waits for the staged files. :meth:`GateWorker.run` sends
it the arguments of :func:`ikou.pipeline.steps.gates.run_gates` and returns its ``GateReport``
(or raises its error), so the gate stage of the run costs the validation only.

The worker is a plain subprocess speaking pickles over its standard input and output (not
``multiprocessing``, which would import the caller's main module again, nor ``fork``, since the
parent holds Beam's threads and gRPC channels); it is ended with the run.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from typing import Any

__all__ = ["GateWorker", "InProcess", "discard", "prestart", "take"]

_PRESTARTED: GateWorker | None = None
_LEN = struct.Struct("<Q")


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def _recv(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


class GateWorker:
    """A process that imports the gates now and runs them when asked (once)."""

    def __init__(self):
        env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
        self._proc = subprocess.Popen([sys.executable, "-m", "ikou.pipeline.steps.gate_worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._asked = False

    def run(self, **kwargs: Any):
        """``run_gates(**kwargs)`` in the worker; its report, or its exception raised here."""
        self._asked = True
        try:
            _send(self._proc.stdin, kwargs)
            kind, value = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            self._proc.wait()
            raise RuntimeError("the gate worker process ended without a report "
                               f"(exit code {self._proc.returncode})") from None
        finally:
            self.close()
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        """End the worker (a no-op once it has ended); one never asked is ended at once,
        without waiting for its import to finish."""
        if self._proc.poll() is None and not self._asked:
            self._proc.kill()
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # end of input: the worker exits
            except OSError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def prestart() -> None:
    """Start a worker now (the command line does so before it imports Beam), for the next
    :func:`take`: the import of Great Expectations then overlaps everything before the gates."""
    global _PRESTARTED
    if _PRESTARTED is None:
        _PRESTARTED = GateWorker()


def discard() -> None:
    """End a prestarted worker nobody took (the command failed before its gates): at once,
    without waiting for its import to finish."""
    global _PRESTARTED
    worker, _PRESTARTED = _PRESTARTED, None
    if worker is not None:
        worker.close()


class InProcess:
    """The gates in this process, with the worker's interface: for a process that has already
    imported Great Expectations (nothing left to overlap)."""

    def run(self, **kwargs: Any):
        from ikou.pipeline.steps.gates import run_gates

        return run_gates(**kwargs)

    def close(self) -> None:
        pass


def take() -> GateWorker | InProcess:
    """The prestarted worker if there is one; else the gates in process when this process
    has imported Great Expectations already; else a new worker."""
    global _PRESTARTED
    worker, _PRESTARTED = _PRESTARTED, None
    if worker is not None:
        return worker
    if "great_expectations" in sys.modules:
        return InProcess()
    return GateWorker()


def _serve() -> int:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed goes to the terminal, not into the protocol
    failure = None
    try:
        from ikou.pipeline.steps.gates import run_gates
    except BaseException as exc:  # reported when the gates are asked for
        run_gates, failure = None, exc
    try:
        request = _recv(stdin)
    except EOFError:  # the run ended before its gates (e.g. a reconciliation failure)
        return 0
    try:
        if run_gates is None:
            raise failure
        _send(stdout, ("ok", run_gates(**request)))
    except Exception as exc:
        _send(stdout, ("error", exc))
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
