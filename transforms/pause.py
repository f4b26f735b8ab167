"""Named moments of a run where a crash test can stop it: ``pause_point(name)``.

With ``IKOU_PAUSE_AT=<name>`` and ``IKOU_PAUSE_DIR=<folder>`` in the environment, the first
process that reaches the moment ``name`` writes ``<folder>/<name>`` (its process id) and then
waits until it is killed or ``<folder>/<name>.resume`` appears; without them (every real run) ``pause_point`` returns at once. The
crash-safety tests use it to SIGKILL a job deterministically while it decodes, merges, matches,
gates or publishes, rather than guessing the moment with timers.

Moments: ``decode`` (a block's part files written), ``merge`` (the quarantine and one output
merged), ``matching`` (links computed, staged targets not yet rewritten), ``gates`` (gate
results in the run folder, nothing published), ``publish`` (the release renamed into
``releases/``, ``current`` not yet moved).
"""

from __future__ import annotations

import os
import time

__all__ = ["MOMENTS", "pause_point"]

MOMENTS = ("decode", "merge", "matching", "gates", "publish")
_ENV_AT = "IKOU_PAUSE_AT"
_ENV_DIR = "IKOU_PAUSE_DIR"


def pause_point(name: str) -> None:
    if os.environ.get(_ENV_AT) != name:
        return
    folder = os.environ.get(_ENV_DIR)
    if not folder:
        return
    marker = os.path.join(folder, name)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker paused first
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    resume = marker + ".resume"
    while not os.path.exists(resume):  # until the test kills the process or lets it go on
        time.sleep(0.05)
