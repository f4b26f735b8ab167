"""Shared test set-up.

- Great Expectations must never send usage statistics: switched off before anything imports it.
- An exception swallowed inside Cython (printed as "Exception ignored ...") fails the test that
  caused it, as in fastavro's test suite.
- Under CI (``CI`` set, as ``.ci/run`` runs), hypothesis is derandomized, so a CI run is
  repeatable; local runs keep exploring new examples.
"""

import os
import sys

os.environ["GX_ANALYTICS_ENABLED"] = "false"

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() not in ("", "0", "false"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_swallowed_exceptions(request):
    if "capsys" in request.fixturenames or "capsysbinary" in request.fixturenames:
        yield  # pytest allows one capture fixture per test; such tests check their own output
        return
    capfd = request.getfixturevalue("capfd")
    yield
    out, err = capfd.readouterr()
    sys.stdout.write(out)  # hand the output back so pytest still reports it
    sys.stderr.write(err)
    assert "Exception ignored" not in err, f"an exception was swallowed:\n{err}"
