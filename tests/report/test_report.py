"""report.html of a job run: its contents, that it holds no personal value, and that
``ikou report`` rebuilds it from the run's records."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from conftest import PLANTED, personal_values

from ikou.pipeline.cli import main
from ikou.pipeline.report import REPORT_FILE, build_report


class _Refs(HTMLParser):
    """Every URL-like attribute and every tag of a page."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "data", "poster", "srcset") and v:
                self.refs.append((tag, k, v))


def _text(path):
    return path.read_text(encoding="utf-8")


def test_report_written_in_run_folder_and_release(report_run):
    run, rel = report_run.run_dir, report_run.release
    assert (run / REPORT_FILE).is_file()
    assert (rel / REPORT_FILE).is_file()
    assert (report_run.result.current / REPORT_FILE).is_file()
    html = _text(run / REPORT_FILE)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="ja">' in html
    assert "移行実行レポート" in html and "件数照合" in html


def test_report_self_contained(report_run):
    for path in (report_run.run_dir / REPORT_FILE, report_run.release / REPORT_FILE):
        p = _Refs()
        p.feed(_text(path))
        assert "script" not in p.tags and "link" not in p.tags and "img" not in p.tags
        # the only reference: the relative link to Data Docs in the run folder
        assert [(t, k) for t, k, _ in p.refs] == [("a", "href")]
        (_, _, href) = p.refs[0]
        assert not re.match(r"^[a-z]+:", href) and href.endswith("data_docs/index.html")
        assert (path.parent / href).resolve().is_file()
        assert "http://" not in _text(path).replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in _text(path)


def test_report_shows_the_runs_figures(report_run):
    m = report_run.result.manifest
    s = json.loads((report_run.run_dir / "summary.json").read_text(encoding="utf-8"))
    html = _text(report_run.run_dir / REPORT_FILE)
    assert f"{m['records']:,}" in html and f"{m['quarantined']:,}" in html
    for t in m["targets"]:
        assert f">{t['rows']:,}<" in html
    for code in m["quarantined_by_code"]:
        assert code in html
    # 外字: every code seen, in hex, with its count
    assert s["gaiji"], "the generated town has 外字"
    for key in s["gaiji"]:
        code, _state = key.split(" ")
        assert f"0x{code}" in html
    assert any(k.endswith("unmapped") for k in s["gaiji"]) == ("UNMAPPED_GAIJI" in html)
    # the planted corrupt record is listed by record number and byte offset
    juki_stride = 322
    rec = report_run.planted_records[1]
    assert f">{rec:,}<" in html and f">{(rec - 1) * juki_stride:,}<" in html
    # gates, matching and the stages
    for name in m["gates"]["gates"]:
        assert name in html
    assert "宛名番号で一致" in html and "一致度（スコア）の分布" in html
    for stage in ("読込・変換（Beam）", "名寄せ", "品質チェック", "公開（レポート作成を含む）"):
        assert stage in html


def test_report_has_no_personal_value(report_run):
    values = personal_values(report_run.input_dir)
    assert len(values) > 500
    pages = [report_run.run_dir / REPORT_FILE, report_run.release / REPORT_FILE]
    pages += sorted((report_run.run_dir / "data_docs").rglob("*.html"))
    assert len(pages) > 5
    english = build_report(report_run.run_dir, lang="en")
    texts = [(str(p), _text(p)) for p in pages] + [("en", english)]
    for name, text in texts:
        leaked = sorted(v for v in values if v in text)
        assert not leaked, f"{name} shows personal values: {leaked[:5]}"
    # the planted 個人番号 never shows, full-width or ASCII
    for _, text in texts:
        assert PLANTED["my_number"] not in text and PLANTED["my_number_ascii"] not in text


def test_english_report(report_run):
    html = build_report(report_run.run_dir, lang="en")
    assert '<html lang="en">' in html and "Migration run report" in html
    assert "件数照合" not in html


def test_ikou_report_rebuilds_the_same_page(report_run, tmp_path, capsys):
    run = report_run.run_dir
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_bytes().replace(
        b"../../../", b"") != b""  # written
    # rebuilt in place: byte-identical to what the run wrote
    before = (run / REPORT_FILE).read_bytes()
    assert main(["report", str(run)]) == 0
    assert (run / REPORT_FILE).read_bytes() == before
    assert main(["report", str(run), "--report-lang", "en"]) == 0
    assert b"Migration run report" in (run / REPORT_FILE).read_bytes()
    assert main(["report", str(run)]) == 0  # back to Japanese for the other tests
    assert main(["report", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_report_of_a_run_that_published_nothing(report_run, tmp_path):
    """A failing gate: the run folder's records only (no release, no quarantine.avro)."""
    import copy
    import shutil

    run = tmp_path / "out" / "runs" / report_run.run_dir.name
    run.mkdir(parents=True)
    shutil.copy(report_run.run_dir / "summary.json", run / "summary.json")
    m = copy.deepcopy(report_run.result.manifest)
    m["published"] = False
    m["gates"]["passed"] = False
    gate = m["gates"]["gates"]["juki"]
    gate["success"] = False
    gate["failures"] = [{"expectation": "expect_column_values_to_not_be_null",
                         "column": "shimei", "item": "5 氏名", "unexpected_count": 3,
                         "element_count": gate["rows"]}]
    (run / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    html = build_report(run)
    assert "公開していません" in html and "確認が必要な項目があります" in html
    assert "expect_column_values_to_not_be_null" in html and f"3 / {gate['rows']:,}" in html
    assert "quarantine.avro が残っていません" in html  # counts only
    for code in m["quarantined_by_code"]:
        assert code in html
    assert "data_docs" not in html  # no Data Docs in this folder: no link
