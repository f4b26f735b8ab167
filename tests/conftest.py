"""Shared test set-up.

- Great Expectations must never send usage statistics: switched off before anything imports it.
- An exception swallowed inside Cython (printed as "Exception ignored ...") fails the test that
  caused it, as in fastavro's test suite.
- Under CI (``CI`` set, as ``.ci/run`` runs), hypothesis is derandomized, so a CI run is
  repeatable; local runs keep exploring new examples.
- Tests are grouped by layer (kernels/, transforms/, config/, steps/, matching/, synth/, e2e/);
  every group's folder is importable, so a test can use another group's helpers by module name
  (``from test_transforms import make_export``).
"""

import os
import sys

os.environ["GX_ANALYTICS_ENABLED"] = "false"

_HERE = os.path.dirname(os.path.abspath(__file__))
for _group in sorted(os.listdir(_HERE)):
    if os.path.isdir(os.path.join(_HERE, _group)) and not _group.startswith((".", "_")):
        sys.path.insert(0, os.path.join(_HERE, _group))

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
