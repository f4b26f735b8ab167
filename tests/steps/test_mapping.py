"""Mappings from decoded legacy columns to the standard layout (ikou.pipeline.config.mapping)."""

from __future__ import annotations

import datetime as dt
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from ikou.expectations.synthetic import atena_numbers
from ikou.pipeline.config.mapping import MappingError, load_mapping
from ikou.pipeline.config.standard import load_standard
from ikou.pipeline.steps.mapping import apply_mapping, widen_kana

STATUS = pa.dictionary(pa.int8(), pa.string())
SEED = 20240401


def legacy_table(n: int = 40, seed: int = SEED) -> pa.Table:
    """Decoded legacy resident rows as the kernel produces them (docs/architecture.md §3)."""
    rng = np.random.default_rng(seed)
    shi = rng.choice(["朝霧", "柊木", "楪"], n).tolist()
    mei = rng.choice(["琥珀", "瑠璃子", ""], n).tolist()
    kana = rng.choice(["ｱｻｷﾞﾘ ｺﾊｸ", "ﾋｲﾗｷﾞ ﾙﾘｺ", "ﾕｽﾞﾘﾊ ﾊﾟﾝ"], n).tolist()
    days = rng.integers(-10000, 15000, n)
    birth = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in days]
    return pa.table({
        "atena_no": atena_numbers(n, seed),
        "setai_no": atena_numbers(n, seed + 1),
        "shi": pa.array(shi), "mei": pa.array(mei), "kana": pa.array(kana),
        "birth": pa.array(birth, pa.date32()),
        "birth_raw": pa.array([f"3{b.year - 1925:02d}{b.month:02d}{b.day:02d}" for b in birth]),
        "birth_status": pa.array(["valid"] * n).dictionary_encode().cast(STATUS),
        "sex": pa.array(rng.choice(["1", "2", "0"], n).tolist()),
        "zoku": pa.array(rng.choice(["01", "03", "06"], n).tolist()),
        "addr": pa.array(rng.choice(["架空県見本市霞台一丁目\u3000", "架空県試験村  "], n).tolist()),
        "yubin": pa.array(rng.choice(["1000001", "9999999"], n).tolist()),
        "moved": pa.array(rng.choice(["20200229", "20230229", "00000000", "", "19991231"],
                                     n).tolist()),
        "_source": pa.array(["juki.dat"] * n),
        "_record": pa.array(np.arange(2, n + 2), pa.int64()),
        "_offset": pa.array(np.arange(1, n + 1) * 302, pa.int64()),
    })


MAPPING = """\
target: juki
tables:
  sex: {"1": "1", "2": "2"}
items:
  宛名番号: {copy: atena_no}
  世帯番号: {copy: setai_no}
  氏名: {concat: [shi, mei]}
  氏名フリガナ: {kana: kana}
  生年月日: {date: birth}
  性別: {code: sex, table: sex}
  続柄コード: {code: zoku}
  住所: {trim: addr}
  郵便番号: {copy: yubin}
  住民状態: {const: "1"}
  jumin_shubetsu: {const: "1"}
  異動年月日: {date: moved}
"""


def write(tmp_path, text: str, name: str = "juki.mapping.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


@pytest.fixture()
def legacy():
    return legacy_table()


@pytest.fixture()
def mapped(tmp_path, legacy):
    m = load_mapping(write(tmp_path, MAPPING), legacy.schema)
    return legacy, apply_mapping(m, legacy)


def test_output_schema_is_the_standard_schema(mapped):
    _, (out, _rej) = mapped
    assert out.schema == load_standard("juki").schema(lineage=True)


def test_unknown_code_rejects_the_record_with_reason(mapped):
    legacy, (out, rej) = mapped
    bad = [i for i, s in enumerate(legacy.column("sex").to_pylist()) if s == "0"]
    assert bad, "fixture must contain legacy sex code 0"
    assert out.num_rows + rej.num_rows == legacy.num_rows
    assert rej.column("_row").to_pylist() == bad
    assert rej.column("_record").to_pylist() == [i + 2 for i in bad]
    assert set(rej.column("_source").to_pylist()) == {"juki.dat"}
    for reason in rej.column("reason").to_pylist():
        assert reason == "seibetsu (性別): unknown code '0' in legacy field sex"
    assert "0" not in out.column("seibetsu").to_pylist()


def test_copy_concat_trim_code_const(mapped):
    legacy, (out, _) = mapped
    keep = [i for i, s in enumerate(legacy.column("sex").to_pylist()) if s != "0"]
    src = legacy.take(pa.array(keep))
    assert out.column("atena_no").to_pylist() == src.column("atena_no").to_pylist()
    expected_names = [f"{s}\u3000{m}" if m else s
                      for s, m in zip(src.column("shi").to_pylist(), src.column("mei").to_pylist(),
                                      strict=True)]
    assert out.column("shimei").to_pylist() == expected_names
    assert set(out.column("jusho").to_pylist()) <= {"架空県見本市霞台一丁目", "架空県試験村"}
    assert out.column("zokugara_code").to_pylist() == src.column("zoku").to_pylist()
    assert set(out.column("jumin_jotai").to_pylist()) == {"1"}
    assert out.column("_record").to_pylist() == src.column("_record").to_pylist()
    assert out.column("honseki").null_count == out.num_rows  # not mapped → null
    assert set(out.column("jusho_date_status").to_pylist()) == {"blank"}  # unmapped date
    assert out.column("jusho_date").null_count == out.num_rows


def test_kana_is_widened_with_voiced_marks_merged(mapped):
    _, (out, _) = mapped
    assert set(out.column("shimei_kana").to_pylist()) <= {
        "アサギリ\u3000コハク", "ヒイラギ\u3000ルリコ", "ユズリハ\u3000パン"}
    got = widen_kana(pa.array(["ｳﾞｨｰﾅｽ", "ﾊﾞﾋﾟﾌﾞﾍﾞﾎﾟ", "ﾞｱ", "カナ", None]))
    assert got.to_pylist() == ["ヴィーナス", "バピブベポ", "゛ア", "カナ", None]


def test_kana_fast_path_equals_the_replacement_table():
    rng = np.random.default_rng(SEED)
    alphabet = [chr(c) for c in range(0xFF61, 0xFFA0)] + list("アガパヴー\u3000 ")
    values = ["".join(rng.choice(alphabet, rng.integers(0, 12))) for _ in range(3000)]
    arr = pa.array(values + ["ｱ１ﾞ", "ＡＢＣ ﾀﾞ"])
    fast, slow = widen_kana(arr), widen_kana(arr, method="pairs")
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.to_pylist()[-2:] == ["ア１゛", "ＡＢＣ\u3000ダ"]  # NFKC would widen nothing else


def test_wareki_date_keeps_date_raw_and_status(mapped):
    legacy, (out, _) = mapped
    keep = pa.array([i for i, s in enumerate(legacy.column("sex").to_pylist()) if s != "0"])
    assert out.column("seinengappi").to_pylist() == legacy.column("birth").take(keep).to_pylist()
    assert out.column("seinengappi_raw").to_pylist() == legacy.column("birth_raw").take(
        keep).to_pylist()
    assert set(out.column("seinengappi_status").to_pylist()) == {"valid"}


def test_yyyymmdd_string_date_statuses(mapped):
    _, (out, _) = mapped
    got = set(zip(out.column("ido_date_raw").to_pylist(), out.column("ido_date").to_pylist(),
                  out.column("ido_date_status").to_pylist(), strict=True))
    assert got == {
        ("20200229", dt.date(2020, 2, 29), "valid"),
        ("20230229", None, "impossible"),  # not in the calendar: kept, with its status
        ("00000000", None, "unknown"),
        (None, None, "blank"),
        ("19991231", dt.date(1999, 12, 31), "valid"),
    }


def test_integer_copy_rejects_non_numbers(tmp_path):
    legacy = pa.table({"atena_no": ["0000000019", "0000000027", "0000000035"],
                       "nendo": ["2024", "2024", "2024"], "kubun": ["1", "1", "3"],
                       "shotoku": ["12000", "1,200", " 300 "], "kinto": [5000, 5000, None],
                       "_record": pa.array([2, 3, 4], pa.int64())})
    text = """\
    target: kojin_juminzei
    items:
      識別番号: {copy: atena_no}
      相当年度: {copy: nendo}
      宛名番号: {copy: atena_no}
      課税区分: {code: kubun}
      所得割額: {copy: shotoku}
      均等割額: {copy: kinto}
    """
    out, rej = apply_mapping(load_mapping(write(tmp_path, text), legacy.schema), legacy)
    assert out.column("shotokuwari_gaku").to_pylist() == [12000, 300]
    assert out.column("kintowari_gaku").to_pylist() == [5000, None]
    assert rej.column("_record").to_pylist() == [3]
    assert rej.column("reason").to_pylist() == [
        "shotokuwari_gaku (所得割額): legacy field shotoku is not an integer"]


@pytest.mark.parametrize("change, message, line", [
    (("  宛名番号: {copy: atena_no}", "  宛名番号: {copy: atena}"),
     "item 1 '宛名番号': unknown legacy field 'atena'", 5),
    (("  住所: {trim: addr}", "  住所: {trim: addr}\n  住居: {trim: addr}"),
     "unknown standard item '住居' in juki", 13),
    (("  性別: {code: sex, table: sex}\n", ""),
     "required items not filled: 7 '性別' (seibetsu)", 5),
    (('sex: {"1": "1", "2": "2"}', 'sex: {"1": "1", "2": "女"}'),
     "table 'sex' maps to codes not in the standard table 'seibetsu': 女", 10),
    (("  住民状態: {const: \"1\"}", "  住民状態: {const: \"7\"}"),
     "constant '7' is not in code table 'jumin_jotai'", 14),
    (("  住所: {trim: addr}", "  住所: {trim: addr, copy: addr}"),
     "item 14 '住所': give exactly one of", 12),
    (("  郵便番号: {copy: yubin}", "  郵便番号: {date: birth}"),
     "'date' fills date items only", 13),
    (("  続柄コード: {code: zoku}", "  続柄コード: {code: zoku, table: nosuch}"),
     "unknown table 'nosuch'", 11),
    (("  宛名番号: {copy: atena_no}", "  宛名番号: {copy: atena_no}\n  atena_no: {copy: atena_no}"),
     "is mapped twice (also on line 5)", 6),
    (("  郵便番号: {copy: yubin}", "  郵便番号: {copy: birth}"),
     "cannot copy 'birth' (date32[day]) into a digits item", 13),
])
def test_bad_mapping_names_file_and_line(tmp_path, legacy, change, message, line):
    old, new = change
    assert old in MAPPING
    path = write(tmp_path, MAPPING.replace(old, new))
    with pytest.raises(MappingError) as exc:
        load_mapping(path, legacy.schema)
    assert isinstance(exc.value, ValueError)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{path}:{line}:")


def test_code_table_from_csv_and_column_names_only(tmp_path, legacy):
    (tmp_path / "sex.csv").write_text("# legacy 性別 → standard\nlegacy,standard\n1,1\n2,2\n0,9\n",
                                      encoding="utf-8")
    path = write(tmp_path, MAPPING.replace('sex: {"1": "1", "2": "2"}', "sex: sex.csv"))
    m = load_mapping(path, legacy.column_names)
    out, rej = apply_mapping(m, legacy)
    assert rej.num_rows == 0 and out.num_rows == legacy.num_rows
    assert set(out.column("seibetsu").to_pylist()) == {"1", "2", "9"}


def test_missing_legacy_column_at_apply_time(tmp_path, legacy):
    m = load_mapping(write(tmp_path, MAPPING), legacy.schema)
    with pytest.raises(MappingError, match="legacy table lacks columns addr"):
        apply_mapping(m, legacy.drop_columns(["addr"]))


def test_large_table_is_mapped_in_one_pass(tmp_path):
    legacy = legacy_table(50_000, seed=7)
    m = load_mapping(write(tmp_path, MAPPING), legacy.schema)
    out, rej = apply_mapping(m, legacy)
    n_bad = legacy.column("sex").to_pylist().count("0")
    assert (out.num_rows, rej.num_rows) == (legacy.num_rows - n_bad, n_bad)
