"""The ``ikou`` command line: every subcommand, and user mistakes as one line + exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import fastavro
import pyarrow as pa
import pytest
from test_transforms import join, make_export, trailer

from ikou.pipeline.cli import EXIT_RECONCILE, _command_parser, main
from ikou.pipeline.errors import UserError
from ikou.pipeline.run.beam import split_args

IKOU = os.path.join(os.path.dirname(sys.executable), "ikou")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    assert main(["generate", "--residents", "300", "--seed", "11", "--out", str(out),
                 "--corrupt-share", "0.05"]) == 0
    return out


def _one_error_line(err, rc, expected_rc=2):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == expected_rc
    assert len(lines) == 1, err
    assert lines[0].startswith("ikou: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_generate_writes_a_municipality(generated):
    names = {p.name for p in generated.iterdir()}
    assert names >= {"expected.jsonl", "gaiji.csv", "juki.dat", "juki.layout.yaml"}
    full, cut = divmod((generated / "juki.dat").stat().st_size, 322)
    assert full == 301 and 0 < cut < 320  # header, 299 data, trailer + the truncated last one


def test_run_decode_and_their_outputs_agree(generated, tmp_path, capsys):
    args = ["--layout", str(generated / "juki.layout.yaml"), "--gaiji",
            str(generated / "gaiji.csv")]
    rc = main(["run", *args, "--out", str(tmp_path / "run"),
               "--direct_running_mode", "in_memory", str(generated / "juki.dat"),
               "--block_size", "20000"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "(decoded)" in out and "quarantine.avro" in out and "MB/s" in out
    m = json.loads((tmp_path / "run" / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["runner"]["direct_running_mode"] == "in_memory"
    assert m["runner"]["block_size"] == 20000
    assert m["runner"]["beam_args"] == ["--direct_running_mode", "in_memory"]
    assert m["quarantined"] == 15  # round(0.05 * 300)

    rc = main(["decode", str(generated / "juki.dat"), *args, "--out",
               str(tmp_path / "dec" / "juki.arrow"), "--rejects",
               str(tmp_path / "dec" / "rejects.avro")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "ikou decode: 302 records, 285 rows" in err and "15 quarantined" in err
    for a, b in (("run/current/juki.arrow", "dec/juki.arrow"), ("run/current/quarantine.avro",
                                                         "dec/rejects.avro")):
        assert (tmp_path / a).read_bytes() == (tmp_path / b).read_bytes()
    assert pa.ipc.open_file(tmp_path / "dec" / "juki.arrow").read_all().num_rows == 285
    with open(tmp_path / "dec" / "rejects.avro", "rb") as f:
        assert len(list(fastavro.reader(f))) == 15


def test_demo_prints_a_summary(tmp_path, capsys):
    # The demo runs a whole job (all sources, three standard files, gates) and publishes
    # OUT/current; see tests/test_jobs.py for the details.
    rc = main(["demo", "--workdir", str(tmp_path / "demo"), "--residents", "400"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "400 residents generated" in out
    for piece in ("juki", "kojin_juminzei", "kokuho_setai", "kokuho_kojin", "jutogai",
                  "quarantined", "reconciliation  ok", "gates           PASSED", "MB/s",
                  "records/s", "data docs", "index.html", "manifest.json"):
        assert piece in out
    current = tmp_path / "demo" / "out" / "current"
    m = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    assert m["published"] and m["gates"]["passed"]
    rows = {t["name"]: t["rows"] for t in m["targets"]}
    quarantined = {t["name"]: t["quarantined"] for t in m["targets"]}
    assert quarantined["juki"] > 0  # the demo's default share of corrupt 住民記録 records
    assert rows["juki"] + quarantined["juki"] == 400 and f"{rows['kojin_juminzei']:,}" in out


@pytest.mark.parametrize("argv, needle", [
    (["run", "--layout", "missing.yaml", "--out", "o", "x.dat"], "missing.yaml"),
    (["run", "--out", "o", "x.dat"], "--layout"),
    (["run", "--layout", "l.yaml", "--out", "o"], "no input files"),
    (["decode", "x.dat", "--layout", "missing.yaml", "--out", "o.arrow"], "missing.yaml"),
    (["generate", "--residents", "0", "--seed", "1", "--out", "o"], "must be positive"),
    (["generate", "--residents", "5", "--seed", "1", "--out", "o", "--corrupt-share", "2"],
     "between 0 and 1"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    _, err = capsys.readouterr()
    assert needle in _one_error_line(err, rc)


def test_bad_layout_gaiji_and_inputs_exit_2(generated, tmp_path, capsys):
    layout = tmp_path / "bad.yaml"
    layout.write_text((generated / "juki.layout.yaml").read_text(encoding="utf-8").replace(
        "offset: 11, length: 10", "offset: 9, length: 10"), encoding="utf-8")
    rc = main(["run", "--layout", str(layout), "--out", str(tmp_path / "o"),
               str(generated / "juki.dat")])
    line = _one_error_line(capsys.readouterr()[1], rc)
    assert "bad.yaml" in line and "setai_no" in line and "overlap" in line

    gaiji = tmp_path / "bad.csv"
    gaiji.write_text("sjis,unicode,mj,note\nZZZZ,U+9AD9,,\n", encoding="utf-8")
    rc = main(["run", "--layout", str(generated / "juki.layout.yaml"), "--gaiji", str(gaiji),
               "--out", str(tmp_path / "o"), str(generated / "juki.dat")])
    line = _one_error_line(capsys.readouterr()[1], rc)
    assert "bad.csv:2" in line

    rc = main(["run", "--layout", str(generated / "juki.layout.yaml"), "--out",
               str(tmp_path / "o"), str(tmp_path / "nope.dat")])
    assert "input not found" in _one_error_line(capsys.readouterr()[1], rc)
    rc = main(["run", "--layout", str(generated / "juki.layout.yaml"), "--out",
               str(tmp_path / "o"), str(generated / "juki.dat"), "--block_size=0"])
    assert "block size" in _one_error_line(capsys.readouterr()[1], rc)


def test_reconciliation_failure_exits_3(tmp_path, capsys):
    from test_transforms import LAYOUT_YAML
    layout = tmp_path / "mini.yaml"
    layout.write_text(LAYOUT_YAML.format(sep='"\\r\\n"'), encoding="utf-8")
    recs, _ = make_export(25)
    recs[-1] = trailer(24)
    data = tmp_path / "x.dat"
    data.write_bytes(join(recs))
    rc = main(["run", "--layout", str(layout), "--out", str(tmp_path / "o"), str(data)])
    line = _one_error_line(capsys.readouterr()[1], rc, expected_rc=EXIT_RECONCILE)
    assert "trailer count (24) != data records read (25)" in line
    assert not (tmp_path / "o" / "manifest.json").exists()
    rc = main(["decode", str(data), "--layout", str(layout), "--out", str(tmp_path / "d.arrow")])
    err = capsys.readouterr()[1]
    assert rc == EXIT_RECONCILE and "trailer count (24) != data records read (25)" in err


def test_console_script_never_shows_a_traceback(tmp_path):
    proc = subprocess.run([IKOU, "run", "--layout", str(tmp_path / "none.yaml"), "--out",
                           str(tmp_path / "o"), "x.dat"], capture_output=True, text=True,
                          timeout=120)
    assert _one_error_line(proc.stderr, proc.returncode).endswith("none.yaml: file not found")
    proc = subprocess.run([IKOU, "run", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: ikou run" in proc.stdout


def test_split_args_keeps_inputs_apart_from_option_values():
    args, beam_args = split_args(["--layout", "l.yaml", "a.dat", "--direct_num_workers", "2",
                                  "b.dat", "--runner=DirectRunner", "--block-size", "4096",
                                  "c.dat", "--", "--odd-name.dat"], _command_parser("run"))
    assert args.paths == ["a.dat", "b.dat", "c.dat", "--odd-name.dat"]
    assert args.layout == "l.yaml" and args.block_size == 4096
    assert beam_args == ["--direct_num_workers", "2", "--runner=DirectRunner"]


@pytest.mark.parametrize("argv, needle", [
    (["job.yaml", "--gate", "warn"], "unknown option --gate: neither ikou nor Beam knows it "
                                     "(did you mean --gates?)"),
    (["job.yaml", "--no-such-flag"], "unknown option --no-such-flag"),
    (["job.yaml", "--gates", "maybe"], "invalid choice: 'maybe'"),
])
def test_options_nobody_knows_are_refused(argv, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        split_args(argv, _command_parser("run"))


@pytest.mark.parametrize("command", ["run", "match", "demo"])
def test_unknown_option_is_one_line_and_exit_2(command, capsys):
    rc = main([command, "x.yaml", "--no-such-flag"])
    line = _one_error_line(capsys.readouterr().err, rc)
    assert "unknown option --no-such-flag" in line


def test_help_of_every_command_comes_from_argparse(capsys):
    for command, option in (("run", "--gaiji-fallback"), ("match", "--truth"),
                            ("decode", "--rejects"), ("generate", "--residents"),
                            ("demo", "--workdir")):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: ikou {command}") and option in out


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """A ValueError that is not a user mistake (here pyarrow's ArrowInvalid from a broken
    staged file) is not turned into one line: it propagates with its traceback."""
    import pyarrow as pa

    from ikou.pipeline import cli

    def broken(args):
        raise pa.ArrowInvalid("not a user mistake")

    monkeypatch.setattr(cli, "_cmd_generate", broken)
    with pytest.raises(pa.ArrowInvalid):
        main(["generate", "--residents", "1", "--seed", "1", "--out", str(tmp_path)])


def test_a_compressed_input_is_refused(generated, tmp_path, capsys):
    import gzip

    packed = tmp_path / "juki.dat.gz"
    packed.write_bytes(gzip.compress((generated / "juki.dat").read_bytes()))
    rc = main(["run", "--layout", str(generated / "juki.layout.yaml"), "--out",
               str(tmp_path / "o"), str(packed)])
    line = _one_error_line(capsys.readouterr()[1], rc)
    assert "input is compressed (.gz)" in line and not (tmp_path / "o" / "current").exists()


def test_worker_processes_keep_the_terminal_clean(generated, tmp_path):
    """Beam's worker processes log every start and channel at INFO (and an import warning about
    GCP clients): that goes to the run folder's beam-workers.log, never to the user's terminal."""
    out = tmp_path / "mp"
    proc = subprocess.run([IKOU, "run", "--layout", str(generated / "juki.layout.yaml"),
                           "--gaiji", str(generated / "gaiji.csv"), "--out", str(out),
                           str(generated / "juki.dat"), "--direct_running_mode=multi_processing",
                           "--direct_num_workers=2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "apitools" not in proc.stderr and "INFO:" not in proc.stderr, proc.stderr
    (log,) = (out / "runs").glob("*/beam-workers.log")
    assert "sdk_worker" in log.read_text(encoding="utf-8")
    m = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert m["runner"]["worker_log"] == "beam-workers.log"
