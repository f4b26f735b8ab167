"""外字 table loading: codes in the user-defined area only, code points written U+XXXX."""

import pytest

from ikou.pipeline.config.gaiji import GaijiError, is_user_defined, load_gaiji, load_gaiji_table


def write(tmp_path, text):
    p = tmp_path / "gaiji.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_loads_single_code_points_ivs_fallback_and_mj(tmp_path):
    p = write(tmp_path, "sjis,unicode,mj,note,fallback\n"
                        "F040,U+9AD9,MJ028902,はしご高,U+9AD8\n"
                        "f041,U+845B U+E0100,,葛 (IVS),\n"
                        "# a comment line\n\n")
    table = load_gaiji_table(p)
    assert table.mapping == {0xF040: "\u9ad9", 0xF041: "\u845b\U000e0100"}
    assert table.fallback == {0xF040: "\u9ad8"}
    assert table.mj == {0xF040: "MJ028902"}
    assert load_gaiji(p) == {0xF040: ("\u9ad9", "\u9ad8"), 0xF041: "\u845b\U000e0100"}
    assert load_gaiji(None) == {}


def test_user_defined_area_bounds():
    assert is_user_defined(0xF040) and is_user_defined(0xF9FC) and is_user_defined(0xF080)
    assert not is_user_defined(0xF07F) and not is_user_defined(0xEFFC)
    assert not is_user_defined(0xFA40) and not is_user_defined(0xF03F)


@pytest.mark.parametrize(
    "row, message",
    [
        ("8140,U+3000,,", r"gaiji\.csv:2: sjis '8140' is not a CP932 user-defined code"),
        ("F07F,U+3000,,", r"sjis 'F07F' is not a CP932 user-defined code"),
        ("ZZZZ,U+3000,,", r"'ZZZZ' is not a hexadecimal code"),
        ("F040,9AD9,,", r"'9AD9' is not a code point written U\+XXXX"),
        ("F040,,,", r"column 'unicode' is empty"),
        ("F040,U+D800,,", r"not a Unicode scalar value"),
        ("F040,U+0007,,", r"control character"),
        ("F040,U+9AD9,X1,", r"'X1' is not an MJ character number"),
        ("F040,U+9AD9,,note,extra", r"5 columns, the header has 4"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    with pytest.raises(GaijiError, match=message):
        load_gaiji(write(tmp_path, "sjis,unicode,mj,note\n" + row + "\n"))


def test_duplicate_code_and_bad_header(tmp_path):
    with pytest.raises(GaijiError, match=r":3: code F040 is already mapped on line 2"):
        load_gaiji(write(tmp_path, "sjis,unicode,mj,note\nF040,U+9AD9,,\nf040,U+9AD8,,\n"))
    with pytest.raises(GaijiError, match="missing column"):
        load_gaiji(write(tmp_path, "code,char\nF040,U+9AD9\n"))
    with pytest.raises(GaijiError, match="file not found"):
        load_gaiji(tmp_path / "missing.csv")


def test_fallback_reaches_the_kernel_only_when_asked(tmp_path):
    import numpy as np

    from ikou.kernels import DecodePlan, FieldSpec, decode_block

    gaiji = load_gaiji(write(tmp_path, "sjis,unicode,mj,note,fallback\n"
                                       "F040,U+9AD9,,はしご高,U+9AD8\nF041,U+845B U+E0100,,,\n"))
    assert gaiji == {0xF040: ("\u9ad9", "\u9ad8"), 0xF041: "\u845b\U000e0100"}
    record = b"\xf0\x40\xf0\x41"
    fields = [FieldSpec("name", offset=0, length=4, type="text")]
    starts = np.zeros(1, dtype=np.int64)
    for fallback, expected in ((False, "\u9ad9\u845b\U000e0100"), (True, "\u9ad8\u845b\U000e0100")):
        plan = DecodePlan(4, fields, gaiji=gaiji, gaiji_fallback=fallback)
        assert decode_block(record, starts, plan).batch.column(0).to_pylist() == [expected]
