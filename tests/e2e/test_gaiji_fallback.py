"""The 外字 table's fallback column, chosen per run: ``ikou decode --gaiji-fallback``,
``ikou run --gaiji-fallback`` (Beam) and ``gaiji_fallback: true`` in a job file."""

import json

import pyarrow.ipc
import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.config.gaiji import load_gaiji_table
from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    out = tmp_path_factory.mktemp("town")
    return generate_municipality(out, 300, seed=11, sources=ALL_SOURCES)


def expected_names(town, fallback: bool):
    """An independent oracle: the name field's bytes decoded with CPython's cp932 codec, each
    user-defined code (F040–F9FC) replaced from the 外字 table (primary or fallback column)."""
    from ikou.pipeline.config.layout import load_layout

    table = load_gaiji_table(town.gaiji)
    swaps = [(table.mapping[c], table.fallback[c]) for c in table.fallback]
    assert swaps, "the generated 外字 table has a fallback column"
    layout = load_layout(town.layout)
    field = layout.kinds["data"].field("name_kanji")
    code = layout.kinds["data"].code
    data = town.export.read_bytes()
    names = []
    for start in range(0, len(data) - layout.record_length + 1, layout.stride):
        rec = data[start:start + layout.record_length]
        if rec[:1] != code:
            continue
        raw, out, i = rec[field.offset:field.end], [], 0
        while i < len(raw):
            b = raw[i]
            if 0xF0 <= b <= 0xF9:
                c = (b << 8) | raw[i + 1]
                out.append(table.fallback.get(c, table.mapping[c]) if fallback
                           else table.mapping[c])
                i += 2
            elif 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC:
                out.append(raw[i:i + 2].decode("cp932"))
                i += 2
            else:
                out.append(raw[i:i + 1].decode("cp932"))
                i += 1
        names.append("".join(out).rstrip(" \u3000"))
    return names, swaps


def names_in(path, column="name_kanji"):
    with pyarrow.ipc.open_file(path) as f:
        return f.read_all().column(column).to_pylist()


def test_decode_writes_primary_or_fallback(town, tmp_path):
    primary, swaps = expected_names(town, False)
    fallback, _ = expected_names(town, True)
    assert primary != fallback, "some generated names carry a 外字 with a fallback"
    args = [str(town.export), "--layout", str(town.layout), "--gaiji", str(town.gaiji)]
    assert main(["decode", *args, "--out", str(tmp_path / "p.arrow")]) == 0
    assert main(["decode", *args, "--gaiji-fallback", "--out", str(tmp_path / "f.arrow")]) == 0
    assert names_in(tmp_path / "p.arrow") == primary
    assert names_in(tmp_path / "f.arrow") == fallback


def test_run_option_reaches_the_beam_workers(town, tmp_path):
    fallback, _ = expected_names(town, True)
    out = tmp_path / "run"
    rc = main(["run", "--layout", str(town.layout), "--gaiji", str(town.gaiji), "--out", str(out),
               "--gaiji-fallback", str(town.export)])
    assert rc == 0
    assert names_in(out / "current" / "juki.arrow") == fallback
    manifest = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert '"gaiji_fallback": true' in json.dumps(manifest)


def test_job_file_choice_and_its_validation(town, tmp_path, capsys):
    job = town.export.parent / "job.yaml"
    if not job.exists():
        from ikou.pipeline.config.job import write_demo_job

        job = write_demo_job(town.export.parent, town.sources)
    text = job.read_text(encoding="utf-8")
    fb_job = job.with_name("job_fallback.yaml")
    fb_job.write_text(text.replace("gaiji: gaiji.csv", "gaiji: gaiji.csv\ngaiji_fallback: true"),
                      encoding="utf-8")
    assert main(["run", str(fb_job), "--out", str(tmp_path / "fb")]) == 0
    fallback, _ = expected_names(town, True)
    primary, _ = expected_names(town, False)
    names = names_in(tmp_path / "fb" / "current" / "juki.arrow", "shimei")
    assert names == fallback and names != primary

    bad = job.with_name("job_bad.yaml")
    bad.write_text(text.replace("gaiji: gaiji.csv", "gaiji: gaiji.csv\ngaiji_fallback: 1"),
                   encoding="utf-8")
    assert main(["run", str(bad), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "job_bad.yaml" in err and "'gaiji_fallback' must be true or false" in err
