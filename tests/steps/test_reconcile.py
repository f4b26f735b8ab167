"""Reconciliation: a run whose counts do not add up fails, says which numbers differ and
publishes nothing."""

from __future__ import annotations

import copy

import pytest
from test_transforms import GAIJI, join, make_export, trailer, write_layout

from ikou.pipeline.errors import ReconciliationError
from ikou.pipeline.run.single import run_migration
from ikou.pipeline.steps.reconcile import check


def _run(tmp_path, content, layout=None):
    layout = layout or write_layout(tmp_path)
    path = tmp_path / "juki.dat"
    path.write_bytes(content)
    out = tmp_path / "out"
    return run_migration(layout, GAIJI, [path], out, block_size=42 * 16), out / "current"


def _counts(result):
    """The one source's summary of a single-layout run."""
    (source,) = result.summary["sources"].values()
    return source


def _assert_nothing_published(out):
    assert out.is_dir()
    assert not (out / "current").exists()
    assert list((out / "releases").iterdir()) == []  # no release, no staging left behind


def test_a_good_export_reconciles(tmp_path):
    recs, _ = make_export(60, corrupt={5: "invalid", 6: "digits"})
    summary, out = _run(tmp_path, join(recs))
    assert summary.checks["ok"]
    assert summary.rows_written == 58 and summary.quarantined == 2
    assert (out / "manifest.json").exists()


def test_wrong_trailer_count_fails_naming_both_numbers(tmp_path):
    recs, _ = make_export(60)
    recs[-1] = trailer(61)
    with pytest.raises(ReconciliationError) as exc:
        _run(tmp_path, join(recs))
    assert str(exc.value) == ("reconciliation failed: trailer count (61) != data records read "
                              "(60)")
    _assert_nothing_published(tmp_path / "out")


def test_missing_trailer_fails(tmp_path):
    recs, _ = make_export(30)
    with pytest.raises(ReconciliationError, match="trailer missing"):
        _run(tmp_path, join(recs[:-1]))
    _assert_nothing_published(tmp_path / "out")


def test_unreadable_trailer_fails(tmp_path):
    recs, _ = make_export(30)
    recs[-1] = b"9" + b"00x00030" + recs[-1][9:]
    with pytest.raises(ReconciliationError, match="trailer record is unreadable"):
        _run(tmp_path, join(recs))
    _assert_nothing_published(tmp_path / "out")


def test_two_trailers_fail(tmp_path):
    recs, _ = make_export(10)
    with pytest.raises(ReconciliationError, match="2 trailer records, expected 1"):
        _run(tmp_path, join(recs + [trailer(10)]))


def test_unknown_record_types_are_named_in_the_trailer_mismatch(tmp_path):
    recs, _ = make_export(20, corrupt={4: "type"})
    with pytest.raises(ReconciliationError) as exc:
        _run(tmp_path, join(recs))
    assert "trailer count (20) != data records read (19, 1 record of unknown type)" in str(
        exc.value)


def test_check_names_the_numbers_that_differ(tmp_path):
    recs, _ = make_export(20, corrupt={3: "digits"})
    summary, _ = _run(tmp_path, join(recs))
    layout = write_layout(tmp_path)
    problems, checks = check(_counts(summary), layout)
    assert problems == [] and checks["ok"]
    assert [n for n in _counts(summary)["outputs"] if n.endswith(".arrow")] == ["mini.arrow"]

    bad = copy.deepcopy(_counts(summary))
    bad["inputs"][0]["rows_written"] -= 1  # a lost row
    problems, checks = check(bad, layout)
    assert not checks["ok"]
    assert "data records read (20) != rows written (18) + data records quarantined (1)" in (
        problems)

    bad = copy.deepcopy(_counts(summary))
    bad["outputs"]["quarantine.avro"]["rows"] = 0  # a lost quarantined record
    problems, _ = check(bad, layout)
    assert problems == ["records in quarantine.avro (0) != records quarantined (1)"]

    problems, _ = check(_counts(summary), layout, n_inputs=2)  # an input that never reported
    assert problems == ["inputs reported (1) != inputs given (2)"]


def test_layout_without_trailer_needs_no_trailer(tmp_path):
    yaml = "name: flat\nrecord_length: 4\nfields:\n  - {name: n, offset: 0, length: 4, type: int}\n"
    (tmp_path / "flat.yaml").write_text(yaml, encoding="utf-8")
    from ikou.pipeline.config.layout import load_layout

    layout = load_layout(tmp_path / "flat.yaml")
    summary, out = _run(tmp_path, b"   1   2  x3   4", layout)
    assert summary.rows_written == 3 and summary.quarantined == 1
    assert "trailer" not in summary.checks["sources"]["flat"]["inputs"][0]
