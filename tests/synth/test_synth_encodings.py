"""The same town generated in CP932 and in each mainframe encoding decodes to identical Arrow
columns (lineage aside): ``ikou generate --encoding …`` (pipeline/synth/encodings.py)."""

from __future__ import annotations

import shutil

import fastavro
import pyarrow as pa
import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.synth.encodings import GENERATE_ENCODINGS, transcode_town

SOURCES = ("juki", "zei")
LINEAGE = ("_source", "_record", "_offset")


@pytest.fixture(scope="module")
def towns(tmp_path_factory):
    base = tmp_path_factory.mktemp("towns")
    args = ["--residents", "80", "--seed", "7", "--corrupt-share", "0.02",
            "--source-corrupt-share", "0", "--sources", "juki,tax"]
    assert main(["generate", *args, "--out", str(base / "cp932")]) == 0
    want = {s: _decode(base / "cp932", s, base / "a") for s in SOURCES}
    return base, args, want


def _decode(folder, source, out):
    rc = main(["decode", str(folder / f"{source}.dat"), "--layout",
               str(folder / f"{source}.layout.yaml"), "--gaiji", str(folder / "gaiji.csv"),
               "--out", str(out / f"{source}.arrow"), "--rejects", str(out / f"{source}.avro")])
    assert rc == 0
    t = pa.ipc.open_file(out / f"{source}.arrow").read_all()
    return t.drop_columns([c for c in LINEAGE if c in t.column_names])


@pytest.mark.parametrize("encoding", GENERATE_ENCODINGS)
def test_same_town_same_columns(towns, encoding, tmp_path, capsys):
    base, args, wants = towns
    folder = tmp_path / encoding
    if encoding == "jef":  # through the command line once; the others transcode a copy
        assert main(["generate", *args, "--out", str(folder), "--encoding", encoding]) == 0
        assert "jef" in capsys.readouterr()[0]
    else:
        shutil.copytree(base / "cp932", folder)
        transcode_town(folder, encoding)
    assert "encoding: " + encoding in (folder / "juki.layout.yaml").read_text(encoding="utf-8")
    assert "code,encoding,unicode" in (folder / "gaiji.csv").read_text(encoding="utf-8")
    for source in SOURCES:
        want = wants[source]
        got = _decode(folder, source, tmp_path / "b")
        assert got.schema.names == want.schema.names
        for name in want.column_names:
            assert got.column(name).equals(want.column(name)), (source, name)
        # the corrupt records are quarantined in both
        with open(base / "a" / f"{source}.avro", "rb") as fa, \
                open(tmp_path / "b" / f"{source}.avro", "rb") as fb:
            assert ([r["record"] for r in fastavro.reader(fa)]
                    == [r["record"] for r in fastavro.reader(fb)])
    raw = (folder / "juki.dat").read_bytes()
    assert b"\xf0" in raw and b"0000" not in raw  # EBCDIC digits, no ASCII numbers
    shutil.rmtree(folder)
