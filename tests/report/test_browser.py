"""The run report and Data Docs in a real headless Chromium, with the network off."""

from __future__ import annotations

import re

from ikou.pipeline.report import REPORT_FILE


def _no_network(load):
    assert not load.blocked, f"requests outside the folder: {load.blocked[:5]}"
    assert not load.failed, f"failed requests: {load.failed[:5]}"
    assert all(u.startswith("file://") for u in load.requests)


def test_report_renders_the_run_totals(report_run, browser, artefacts_dir):
    shot = artefacts_dir / "report.png"
    load = browser.load(report_run.run_dir / REPORT_FILE, shot)
    assert not load.errors, load.errors
    _no_network(load)
    m = report_run.result.manifest
    text = load.text
    assert "移行実行レポート" in text
    for figure in (m["records"], m["quarantined"], *(t["rows"] for t in m["targets"])):
        assert f"{figure:,}" in text, figure
    assert "件数照合" in text and "合格" in text
    assert load.tables >= 8
    assert shot.stat().st_size > 10_000  # a page, not a blank


def test_release_report_renders(report_run, browser):
    load = browser.load(report_run.release / REPORT_FILE)
    assert not load.errors, load.errors
    _no_network(load)
    assert f"{report_run.result.manifest['records']:,}" in load.text


def test_data_docs_render_offline_and_silent(report_run, browser, artefacts_dir):
    docs = report_run.run_dir / "data_docs"
    index = browser.load(docs / "index.html", artefacts_dir / "data_docs_index.png")
    assert not index.errors, index.errors
    _no_network(index)
    # the index tables (bootstrap-table in GX's pages) are filled with every validation
    gates = report_run.result.manifest["gates"]["gates"]
    assert index.table_rows >= 2 * len(gates)
    for name in ("juki", "kojin_juminzei"):
        assert name in index.text
    assert "newsletter" not in index.text.lower()
    pages = sorted((docs / "validations").rglob("*.html"))
    assert len(pages) == len(gates)
    page = browser.load(pages[0])
    assert not page.errors, page.errors
    _no_network(page)
    assert page.table_rows > 0
    assert re.search(r"expect_\w+|Expectation", page.text)
