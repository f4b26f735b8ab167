"""The bad-input catalogue (docs/bad-inputs.md): every case gives either quarantine with a
reason (and the rest published) or a failed run whose one error line names the file and the
problem; nothing that could be read is lost. Single-layout runs of the small town's 住民記録
export (real Beam, no gates), so each case costs one short pipeline."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import fastavro
import pytest
from conftest import environ, ikou_command

from ikou.pipeline.cli import EXIT_RECONCILE, EXIT_USAGE, main

RECORD = 322  # 住民記録: 320 bytes + CRLF


@pytest.fixture(scope="module")
def juki(small_town):
    data = (small_town / "juki.dat").read_bytes()
    assert len(data) % RECORD == 0
    return data, [data[i:i + RECORD] for i in range(0, len(data), RECORD)]


def _run(town, tmp_path, content: bytes | None, capsys, layout=None, gaiji=None, name="in.dat"):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    rc = main(["run", "--layout", str(layout or town / "juki.layout.yaml"),
               "--gaiji", str(gaiji or town / "gaiji.csv"), "--out", str(out), str(path)])
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return rc, lines, out


def _failed(rc, lines, out, want_rc, *needles):
    assert rc == want_rc, lines
    assert len(lines) == 1 and lines[0].startswith("ikou: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (out / "current").exists()  # nothing published
    assert not list((out / "releases").glob("*")) if (out / "releases").exists() else True


def _cases(recs):
    return {
        "empty": (b"", "header missing"),
        "no_header": (b"".join(recs[1:]), "header missing"),
        "two_headers": (recs[0] + b"".join(recs), "2 header records, expected 1"),
        "no_trailer": (b"".join(recs[:-1]), "trailer missing"),
        "two_trailers": (b"".join(recs) + recs[-1], "2 trailer records, expected 1"),
        "trailer_count": (b"".join(recs[:-2] + recs[-1:]),
                          f"trailer count ({len(recs) - 2}) != data records read "
                          f"({len(recs) - 3})"),
        "random_binary": (random.Random(7).randbytes(RECORD * 20), "trailer missing"),
    }


@pytest.mark.parametrize("case", ["empty", "no_header", "two_headers", "no_trailer",
                                  "two_trailers", "trailer_count", "random_binary"])
def test_structural_problems_fail_naming_the_file(small_town, juki, tmp_path, capsys, case):
    content, needle = _cases(juki[1])[case]
    rc, lines, out = _run(small_town, tmp_path, content, capsys, name=f"{case}.dat")
    _failed(rc, lines, out, EXIT_RECONCILE, needle, f"{case}.dat")
    if case == "random_binary":  # every record was counted as quarantined, none dropped
        (summary,) = (out / "runs").glob("*/summary.json")  # the run folder keeps the counts
        s = json.loads(summary.read_text(encoding="utf-8"))
        assert s["records"] == 20 and s["quarantined"] == 20 and s["rows_written"] == 0


def test_a_size_not_a_multiple_of_the_record_length_quarantines_the_tail(
        small_town, juki, tmp_path, capsys):
    data, recs = juki
    # a truncated data record before an intact trailer: the tail is quarantined with its bytes
    content = b"".join(recs[:-2]) + recs[-2][:100] + recs[-1]
    rc, lines, out = _run(small_town, tmp_path, content, capsys)
    assert rc == EXIT_RECONCILE and len(lines) == 1 and "in.dat" in lines[0]
    (summary,) = (out / "runs").glob("*/summary.json")
    s = json.loads(summary.read_text(encoding="utf-8"))
    assert s["quarantined_by_code"] and s["records"] == len(recs) - 1 + 1


def test_utf8_given_as_cp932_is_refused_before_anything_runs(small_town, juki, tmp_path, capsys):
    _, recs = juki
    utf8 = b"".join(r[:320].decode("cp932", "replace").encode("utf-8")[:320].ljust(320, b" ")
                    + b"\r\n" for r in recs)
    rc, lines, out = _run(small_town, tmp_path, utf8, capsys, name="utf8.dat")
    _failed(rc, lines, out, EXIT_USAGE, "utf8.dat", "looks like UTF-8", "cp932")
    assert not out.exists()


def test_a_layout_whose_record_length_does_not_match_the_file(small_town, juki, tmp_path,
                                                               capsys):
    layout = tmp_path / "juki.layout.yaml"
    layout.write_text((small_town / "juki.layout.yaml").read_text(encoding="utf-8").replace(
        "record_length: 320", "record_length: 318"), encoding="utf-8")
    rc, lines, out = _run(small_town, tmp_path, juki[0], capsys, layout=layout)
    _failed(rc, lines, out, EXIT_USAGE, "juki.layout.yaml", "record_length 318")


@pytest.mark.parametrize("row, needle", [
    ("F05F,U+9AD9,,again", "gaiji.csv:20: code F05F is already mapped on line 2"),
    ("F0ZZ,U+9AD9,,bad", "gaiji.csv:"),
])
def test_a_bad_gaiji_table_names_its_file_and_line(small_town, juki, tmp_path, capsys, row,
                                                   needle):
    gaiji = tmp_path / "gaiji.csv"
    gaiji.write_text((small_town / "gaiji.csv").read_text(encoding="utf-8") + row + "\n",
                     encoding="utf-8")
    rc, lines, out = _run(small_town, tmp_path, juki[0], capsys, gaiji=gaiji)
    _failed(rc, lines, out, EXIT_USAGE, needle)


def test_a_mapping_naming_a_missing_code_table_names_the_mapping(small_town, tmp_path, capsys):
    town = tmp_path / "town"
    shutil.copytree(small_town, town)
    mapping = town / "kokuho_setai.mapping.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "{code: shotoku_kubun}" in text
    mapping.write_text(text.replace("{code: shotoku_kubun}",
                                    "{code: shotoku_kubun, table: no_such_table}"),
                       encoding="utf-8")
    rc = main(["run", str(town / "job.yaml"), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    _failed(rc, lines, tmp_path / "out", EXIT_USAGE, "kokuho_setai.mapping.yaml:",
            "unknown table 'no_such_table'")


def test_a_full_output_folder_fails_in_one_line_and_publishes_nothing(small_town, juki,
                                                                     tmp_path, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (tmp_path / "in.dat").write_bytes(juki[0])
        rc = main(["run", "--layout", str(small_town / "juki.layout.yaml"), "--gaiji",
                   str(small_town / "gaiji.csv"), "--out", str(mnt / "out"),
                   str(tmp_path / "in.dat")])
        _, err = capsys.readouterr()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc != 0 and len(lines) == 1 and "No space left" in lines[0], lines
        assert "Traceback" not in err and not (mnt / "out" / "current").exists()
        assert not list((mnt / "out" / "releases").glob(".staging-*"))  # cleaned up
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_an_input_changed_or_gone_while_read_is_caught(small_town, juki, tmp_path, change):
    data, _ = juki
    path = tmp_path / "in.dat"
    path.write_bytes(data)
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = subprocess.Popen(
        ikou_command("run", "--layout", str(small_town / "juki.layout.yaml"), "--gaiji",
                     str(small_town / "gaiji.csv"), "--out", str(tmp_path / "out"), str(path)),
        env=environ(IKOU_PAUSE_AT="merge", IKOU_PAUSE_DIR=str(markers)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (markers / "merge").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        if change == "rewritten":  # same size, one byte different
            path.write_bytes(data[:-3] + b"X" + data[-2:])
        else:
            path.unlink()
        (markers / "merge.resume").touch()
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [ln for ln in err.splitlines() if ln.startswith("ikou:")]
    assert proc.returncode == EXIT_RECONCILE, err
    word = "changed" if change == "rewritten" else "disappeared"
    assert len(lines) == 1 and f"input {word} while the run read it: {path}" in lines[0]
    assert not (tmp_path / "out" / "current").exists()


def test_quarantined_records_keep_their_raw_bytes(small_town, juki, tmp_path, capsys):
    """A record with bytes that are not CP932 is quarantined with its raw bytes and reason;
    every other record is published."""
    data, recs = juki
    bad = bytearray(recs[5])
    bad[20:22] = b"\x85\x40"  # an unassigned CP932 lead byte inside the name
    content = b"".join(recs[:5]) + bytes(bad) + b"".join(recs[6:])
    rc, lines, out = _run(small_town, tmp_path, content, capsys)
    assert rc == 0, lines
    with open(out / "current" / "quarantine.avro", "rb") as f:
        (q,) = list(fastavro.reader(f))
    assert q["raw"] == bytes(bad)[:320] or q["raw"] == bytes(bad)
    assert Path(out / "current" / "manifest.json").exists()
