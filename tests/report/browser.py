"""Headless Chromium for the tests: Debian's ``chromium`` driven by Playwright's Python package
(``executable_path``: Playwright downloads no browser), started so it makes no connection of its
own, with a fresh profile, every request outside ``file://`` refused and recorded.

Missing browser or library: the tests are skipped with a message saying how to get them
(``make browser`` installs Debian's chromium; ``make setup`` the Python package).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    env = os.environ.get("IKOU_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageLoad:
    url: str
    text: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # script errors and console errors
    tables: int = 0
    table_rows: int = 0


class Browser:
    def __init__(self, profile: Path):
        exe = chromium_path()
        if exe is None:
            pytest.skip("Debian's chromium is not installed: run `make browser` "
                        "(apt-get install -y chromium) to run the browser tests")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            pytest.skip("the Python package playwright is missing: run `make setup` "
                        "(pip install -e '.[test]') to run the browser tests")
        self._pw = sync_playwright().start()
        self.context = self._pw.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=FLAGS,
            ignore_default_args=["--enable-automation"], offline=True,
            viewport={"width": 1200, "height": 900})

    def load(self, path: Path, screenshot: Path | None = None) -> PageLoad:
        page = self.context.new_page()
        url = path.resolve().as_uri()
        res = PageLoad(url, "")

        def route(r):
            u = r.request.url
            if u.startswith("file://") or u.startswith("data:"):
                r.continue_()
            else:
                res.blocked.append(u)
                r.abort()

        page.route("**/*", route)
        page.on("request", lambda q: res.requests.append(q.url))
        page.on("requestfailed", lambda q: res.failed.append(q.url))
        page.on("pageerror", lambda e: res.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: res.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.goto(url, wait_until="load")
        page.wait_for_timeout(200)
        res.text = page.inner_text("body")
        res.tables = page.locator("table").count()
        res.table_rows = page.locator("table tbody tr, table > tr").count()
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        page.close()
        return res

    def close(self) -> None:
        self.context.close()
        self._pw.stop()
