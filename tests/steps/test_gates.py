"""Quality gates on staged Arrow files (ikou.pipeline.steps.gates): every suite against a good fixture
(passes) and a bad fixture (fails for the right reasons), fail/warn semantics, the cross-file
rule, and no personal values in validation results or Data Docs."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ikou.expectations.arrow_engine import SUPPORTED
from ikou.expectations.synthetic import (
    FAMILY,
    FAMILY_KANA,
    GIVEN,
    GIVEN_KANA,
    TOWNS,
    atena_numbers,
    good_table,
)
from ikou.pipeline.config.standard import load_standard
from ikou.pipeline.steps.gates import ENGINES, GateError, run_gates

SIZES = {"juki": 300, "kojin_juminzei": 200, "kokuho_setai": 100, "kokuho_kojin": 150}


def write_arrow(path, table: pa.Table):
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    return path


def good_outputs() -> dict[str, pa.Table]:
    juki = good_table(load_standard("juki"), SIZES["juki"], seed=101)
    jutogai_keys = atena_numbers(30, seed=102, start=10**7)
    n = 30
    jutogai = pa.table({"atena_no": jutogai_keys,
                        "_record": pa.array(range(2, n + 2), pa.int64())})
    # Rows 0-11 of the resident file are damaged in the bad fixture: keep them out of the
    # pools, so that only the planted stranger breaks the cross-file rule.
    resident_keys = juki.column("atena_no").combine_chunks().slice(12)
    tax_pool = pa.concat_arrays([jutogai_keys.slice(0, 20), resident_keys.slice(0, 180)])
    return {
        "juki": juki,
        "jutogai": jutogai,
        "kojin_juminzei": good_table(load_standard("kojin_juminzei"), 200, 103,
                                     atena_pool=tax_pool),
        "kokuho_setai": good_table(load_standard("kokuho_setai"), 100, 104,
                                   atena_pool=resident_keys),
        "kokuho_kojin": good_table(load_standard("kokuho_kojin"), 150, 105,
                                   atena_pool=resident_keys),
    }


def set_values(table: pa.Table, column: str, changes: dict[int, object]) -> pa.Table:
    values = table.column(column).to_pylist()
    for row, value in changes.items():
        values[row] = value
    i = table.schema.get_field_index(column)
    typ = table.schema.field(column).type
    arr = (pa.array(values, pa.string()).dictionary_encode().cast(typ)
           if pa.types.is_dictionary(typ) else pa.array(values, typ))
    return table.set_column(i, table.schema.field(column), arr)


def wrong_check_digit(v: str) -> str:
    return v[:-1] + str((int(v[-1]) + 1) % 10)


def bad_outputs(good: dict[str, pa.Table]):
    """Bad fixtures and the (expectation, column) pairs each must fail, plus personal values
    planted in failing rows (they must not show up in any report)."""
    juki = good["juki"]
    atena = juki.column("atena_no").to_pylist()
    kojin = juki.column("kojin_bango").to_pylist()
    planted = {"bad_kojin_bango": wrong_check_digit(kojin[9]),
               "long_address": "架空県見本市" + "霞" * 115,
               "bad_status_birth_raw": juki.column("seinengappi_raw")[11].as_py()}
    juki = set_values(juki, "atena_no", {0: atena[1], 5: wrong_check_digit(atena[5])})
    juki = set_values(juki, "shimei", {6: None})
    juki = set_values(juki, "yubin_bango", {7: "10000"})
    juki = set_values(juki, "seibetsu", {8: "7"})
    juki = set_values(juki, "kojin_bango", {9: planted["bad_kojin_bango"]})
    juki = set_values(juki, "jusho", {10: planted["long_address"]})
    juki = set_values(juki, "seinengappi_status", {11: "not-a-status"})
    juki = set_values(juki, "shimei_kana", {r: "ｱｻｷﾞﾘ ｺﾊｸ" for r in range(20, 61)})
    tax = good["kojin_juminzei"]
    stranger = atena_numbers(1, seed=7, start=5 * 10**7)[0].as_py()
    tax = set_values(tax, "atena_no", {0: stranger})
    tax = set_values(tax, "kazei_kubun", {1: "8"})
    tax = set_values(tax, "soto_nendo", {2: "202"})
    setai = good["kokuho_setai"]
    setai = set_values(setai, "setai_no",
                       {0: wrong_check_digit(setai.column("setai_no")[0].as_py())})
    kk = good["kokuho_kojin"]
    kk = set_values(kk, "shutoku_jiyu", {0: None})
    kk = set_values(kk, "shikaku_shutoku_date_status", {1: "blank"})
    tables = dict(good, juki=juki, kojin_juminzei=tax, kokuho_setai=setai, kokuho_kojin=kk)
    expected = {
        "juki": {
            ("expect_table_row_count_to_equal", None),
            ("expect_column_values_to_be_unique", "atena_no"),
            ("expect_column_values_to_have_valid_atena_check_digit", "atena_no"),
            ("expect_column_values_to_not_be_null", "shimei"),
            ("expect_column_values_to_match_regex", "yubin_bango"),
            ("expect_column_value_lengths_to_be_between", "yubin_bango"),
            ("expect_column_values_to_be_in_set", "seibetsu"),
            ("expect_column_values_to_have_valid_kojin_bango_check_digit", "kojin_bango"),
            ("expect_column_value_lengths_to_be_between", "jusho"),
            ("expect_column_values_to_be_in_set", "seinengappi_status"),
            ("expect_column_values_to_match_regex", "shimei_kana"),
        },
        "kojin_juminzei": {
            ("expect_column_values_to_be_in_set", "kazei_kubun"),
            ("expect_column_value_lengths_to_be_between", "soto_nendo"),
        },
        "kojin_juminzei.atena_no.reference": {
            ("expect_column_values_to_not_be_null", "found_in"),
        },
        "kokuho_setai": {
            ("expect_column_values_to_have_valid_atena_check_digit", "setai_no"),
        },
        "kokuho_kojin": {
            ("expect_column_values_to_not_be_null", "shutoku_jiyu"),
            ("expect_column_values_to_be_in_set", "shikaku_shutoku_date_status"),
        },
    }
    return tables, expected, planted, stranger


def stage(folder, tables: dict[str, pa.Table]) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: write_arrow(folder / f"{name}.arrow", t) for name, t in tables.items()}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    tables = good_outputs()
    staged = stage(base / "staging", tables)
    rows = {k: v.num_rows for k, v in tables.items() if k != "jutogai"}
    return tables, run_gates(staged, base / "run", mode="fail", expected_rows=rows)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, good):
    base = tmp_path_factory.mktemp("bad")
    tables, expected, planted, stranger = bad_outputs(good[0])
    staged = stage(base / "staging", tables)
    rows = {k: v.num_rows for k, v in tables.items() if k != "jutogai"}
    rows["juki"] += 1  # reconciliation says one more record than staged
    report = run_gates(staged, base / "run", mode="fail", expected_rows=rows, sample=20)
    return tables, staged, report, expected, planted, stranger


def test_good_fixtures_pass_every_suite(good):
    _, report = good
    assert report.passed and report.publish and report.exit_code == 0
    assert report.unchecked == ["jutogai"]
    assert set(report.gates) == {
        "juki", "kojin_juminzei", "kokuho_setai", "kokuho_kojin",
        "kojin_juminzei.atena_no.reference", "kokuho_setai.setainushi_atena_no.reference",
        "kokuho_kojin.atena_no.reference"}
    for name, rows in SIZES.items():
        gate = report.gates[name]
        assert gate.rows == rows and gate.failures == [] and gate.evaluated > 10
    assert "jutogai" in " ".join(report.gates["kojin_juminzei.atena_no.reference"].notes)
    assert report.analytics["context_analytics_enabled"] is False


def test_good_run_writes_results_and_data_docs(good):
    _, report = good
    assert report.data_docs is not None and report.data_docs.is_file()
    assert list((report.run_dir / "data_docs" / "validations").rglob("*.html"))
    for gate in report.gates.values():
        doc = json.loads(open(gate.results_file, encoding="utf-8").read())
        assert doc["success"] is True and doc["suite_name"] == gate.suite
    summary = json.loads((report.run_dir / "gates.json").read_text(encoding="utf-8"))
    assert summary["passed"] is True and summary["publish"] is True


def test_bad_fixtures_fail_for_the_right_reasons(bad):
    _, _, report, expected, _, _ = bad
    assert not report.passed and not report.publish and report.exit_code == 1
    failing = {name: {(f.expectation, f.column) for f in g.failures}
               for name, g in report.gates.items() if g.failures}
    assert failing == expected
    juki = {(f.expectation, f.column): f for f in report.gates["juki"].failures}
    assert juki[("expect_column_values_to_be_unique", "atena_no")].unexpected_count == 2
    assert juki[("expect_column_values_to_match_regex", "shimei_kana")].unexpected_count == 41
    assert juki[("expect_table_row_count_to_equal", None)].observed == 300
    assert juki[("expect_column_values_to_not_be_null", "shimei")].item == "3 氏名"


def test_failing_rows_are_identified_by_record_and_atena_only(bad):
    tables, _, report, _, _, stranger = bad
    juki = {(f.expectation, f.column): f for f in report.gates["juki"].failures}
    kana = juki[("expect_column_values_to_match_regex", "shimei_kana")]
    assert len(kana.sample) == 20  # capped at `sample`
    atena = tables["juki"].column("atena_no").to_pylist()
    assert kana.sample[0] == {"_record": 22, "atena_no": atena[20]}
    null_name = juki[("expect_column_values_to_not_be_null", "shimei")]
    assert null_name.sample == [{"_record": 8, "atena_no": atena[6]}]
    cross = report.gates["kojin_juminzei.atena_no.reference"].failures[0]
    assert cross.unexpected_count == 1 and cross.sample == [{"_record": 2, "atena_no": stranger}]
    for gate in report.gates.values():
        for f in gate.failures:
            assert all(set(row) <= {"_record", "atena_no", "setainushi_atena_no"}
                       for row in f.sample)


def test_summary_names_failing_expectations_and_counts(bad):
    report = bad[2]
    text = report.summary()
    assert text.startswith("gates (fail): FAILED")
    assert "juki: FAILED 11 of" in text
    assert "expect_column_values_to_be_unique [atena_no]" in text and "2 of 300 rows" in text
    assert "expect_table_row_count_to_equal" in text and "observed 300" in text


def _all_output_text(run_dir) -> str:
    parts = []
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".html"):
            parts.append(p.read_text(encoding="utf-8"))
    assert len(parts) > 10
    return "\n".join(parts)


def test_results_and_data_docs_contain_no_personal_values(bad):
    tables, _, report, _, planted, _ = bad
    text = _all_output_text(report.run_dir)
    assert "_record" in text  # rows are identified...
    names = FAMILY + GIVEN + FAMILY_KANA + GIVEN_KANA + TOWNS + ["ｱｻｷﾞﾘ"]
    leaked = [v for v in names + list(planted.values()) if v in text]
    assert not leaked, f"personal values in reports: {leaked}"
    # ...and the generated names really are in the staged data that was validated.
    assert any(n in (tables["juki"].column("shimei")[0].as_py() or "") for n in FAMILY)


def test_warn_mode_reports_but_publishes(bad, tmp_path):
    _, staged, _, _, _, _ = bad
    report = run_gates({"juki": staged["juki"]}, tmp_path / "run", mode="warn",
                       data_docs=False)
    assert not report.passed and report.publish and report.exit_code == 0
    assert report.data_docs is None
    assert "published anyway" in report.summary()
    assert "row count not reconciled" in report.summary()


def test_missing_reference_output_fails_the_cross_file_rule(good, tmp_path):
    tables, _ = good
    staged = stage(tmp_path / "staging", {"kokuho_kojin": tables["kokuho_kojin"]})
    report = run_gates(staged, tmp_path / "run", data_docs=False)
    assert report.gates["kokuho_kojin"].success
    cross = report.gates["kokuho_kojin.atena_no.reference"]
    assert not cross.success and cross.failures[0].unexpected_count == SIZES["kokuho_kojin"]
    assert "no reference output" in cross.notes[0]
    assert report.exit_code == 1


def test_gate_errors(tmp_path, good):
    tables, _ = good
    staged = stage(tmp_path / "s", {"kokuho_setai": tables["kokuho_setai"]})
    with pytest.raises(GateError, match="mode must be one of fail, warn"):
        run_gates(staged, tmp_path / "r", mode="maybe")
    with pytest.raises(GateError, match="not staged: juki"):
        run_gates(staged, tmp_path / "r", expected_rows={"juki": 3})
    garbage = tmp_path / "s" / "juki.arrow"
    garbage.write_bytes(b"not arrow at all")
    with pytest.raises(GateError, match=r"juki\.arrow: cannot read staged Arrow IPC file"):
        run_gates({"juki": garbage}, tmp_path / "r")
    assert isinstance(GateError("x"), ValueError)


def test_generated_municipality_end_to_end(tmp_path):
    """The generator's legacy 住民記録 export → Beam staging → mapping → gates: passes."""
    synth = pytest.importorskip("ikou.pipeline.synth.municipality")
    run = pytest.importorskip("ikou.pipeline.run.single")
    from ikou.pipeline.config.gaiji import load_gaiji
    from ikou.pipeline.config.layout import load_layout
    from ikou.pipeline.config.mapping import load_mapping
    from ikou.pipeline.steps.mapping import apply_mapping

    gen = synth.generate_municipality(tmp_path / "src", residents=200, seed=11)
    layout = load_layout(gen.layout)
    result = run.run_migration(layout, load_gaiji(gen.gaiji), [str(gen.export)],
                               tmp_path / "staging")
    legacy = pa.ipc.open_file(result.current / "juki.arrow").read_all()
    (tmp_path / "juki.mapping.yaml").write_text(DEMO_MAPPING, encoding="utf-8")
    out, rejected = apply_mapping(load_mapping(tmp_path / "juki.mapping.yaml", layout), legacy)
    assert rejected.num_rows == 0 and out.num_rows == legacy.num_rows == 200
    assert set(out.column("seinengappi_status").to_pylist()) >= {"valid", "impossible"}
    staged = stage(tmp_path / "std", {"juki": out})
    report = run_gates(staged, tmp_path / "run", expected_rows={"juki": 200}, data_docs=False)
    assert report.passed, report.summary()
    broken = set_values(out, "atena_no", {3: wrong_check_digit(out.column("atena_no")[3].as_py())})
    report = run_gates(stage(tmp_path / "bad", {"juki": broken}), tmp_path / "run2",
                       expected_rows={"juki": 200}, data_docs=False)
    assert [(f.expectation, f.unexpected_count) for f in report.gates["juki"].failures] == [
        ("expect_column_values_to_have_valid_atena_check_digit", 1)]


# Mapping for the generator's legacy 住民記録 layout (pipeline/synth/municipality.py JUKI_KINDS): legacy 続柄
# codes (pipeline/data/synth/zokugara.tsv) → the standard 続柄 table; 子の子 is a chain (99).
DEMO_MAPPING = """\
target: juki
tables:
  zokugara: {"01": "01", "02": "03", "03": "02", "04": "05", "05": "04", "11": "06", "12": "08",
             "13": "07", "21": "09", "22": "10", "31": "11", "32": "12", "33": "13", "34": "14",
             "41": "99", "51": "15", "52": "16"}
items:
  宛名番号: {copy: atena_no}
  世帯番号: {copy: setai_no}
  氏名: {trim: name_kanji}
  氏名フリガナ: {kana: name_kana}
  性別: {code: sex}
  生年月日: {date: birth}
  続柄コード: {code: zokugara, table: zokugara}
  郵便番号: {copy: postal_code}
  住所: {trim: address}
  住民となった年月日: {date: resident_since}
  住民状態: {const: "1"}
  住民種別: {const: "1"}
"""


def test_schema_drift_fails_the_gate(good, tmp_path):
    tables, _ = good
    drifted = tables["kokuho_setai"].drop_columns(["hihokensha_su"])
    report = run_gates(stage(tmp_path / "s", {"kokuho_setai": drifted}), tmp_path / "r",
                       data_docs=False)
    failing = {f.expectation for f in report.gates["kokuho_setai"].failures}
    assert "expect_table_columns_to_match_ordered_list" in failing
    assert not report.publish


# ----------------------------------------------------------------------------- engines
# The default engine computes the metrics in Arrow and lets GX build the results; GX's own
# pandas engine ("gx-pandas") is the reference. Same staged files, same results.

def planted_outputs(good: dict[str, pa.Table]):
    """The bad fixtures plus failures of the remaining expectation types and edge cases: nulls
    in checked columns (skipped by every condition but not-null), a value with a final newline
    (pandas runs the regex with Python ``re`` then), compound keys, integer ranges, a reordered
    schema with every column present."""
    tables, _, planted, _ = bad_outputs(good)
    juki = tables["juki"]
    juki = set_values(juki, "atena_no", {13: None})
    juki = set_values(juki, "yubin_bango", {14: "1234567\n", 15: None})
    juki = set_values(juki, "jumin_date_status", {16: None})
    juki = set_values(juki, "kojin_bango", {17: "１２３４５６７８９０１２"})
    tax = tables["kojin_juminzei"]
    shiki = tax.column("shikibetsu_no").to_pylist()
    nendo = tax.column("soto_nendo").to_pylist()
    tax = set_values(tax, "shikibetsu_no", {4: shiki[3], 5: None, 6: None})
    tax = set_values(tax, "soto_nendo", {4: nendo[3], 5: None, 6: None})
    tax = set_values(tax, "shotokuwari_gaku", {7: 10**12, 8: None})
    setai = tables["kokuho_setai"]
    setai = set_values(setai, "setai_no", {2: setai.column("setai_no")[1].as_py()})
    setai = set_values(setai, "hihokensha_su", {3: 100, 4: -100})
    names = setai.column_names
    order = [names[1], names[0], *names[2:]]  # first two columns swapped
    setai = setai.select(order)
    kk = tables["kokuho_kojin"]
    kk = set_values(kk, "atena_no", {5: kk.column("atena_no")[6].as_py()})
    kk = set_values(kk, "shikaku_shutoku_date", {5: kk.column("shikaku_shutoku_date")[6].as_py()})
    kk = set_values(kk, "shikaku_shutoku_date_status", {5: None, 6: None})
    out = dict(tables, juki=juki, kojin_juminzei=tax, kokuho_setai=setai, kokuho_kojin=kk)
    return out, planted


@pytest.fixture(scope="module")
def engines(tmp_path_factory, good):
    base = tmp_path_factory.mktemp("engines")
    tables, planted = planted_outputs(good[0])
    staged = stage(base / "staging", tables)
    rows = {k: v.num_rows for k, v in tables.items() if k != "jutogai"}
    rows["kokuho_kojin"] -= 1
    reports = {eng: run_gates(staged, base / eng, expected_rows=rows, sample=5, engine=eng)
               for eng in ENGINES}
    return tables, planted, reports


def _comparable(doc: dict) -> dict:
    """A stored validation result without what differs between any two runs (run/validation
    ids and times, batch description, expectation ids)."""
    doc = json.loads(json.dumps(doc))
    doc.pop("meta")
    doc.pop("id", None)
    for r in doc["results"]:
        r["expectation_config"].pop("id", None)
    return doc


def test_arrow_engine_gives_the_gx_pandas_results(engines):
    _, _, reports = engines
    arrow, ref = reports["arrow"], reports["gx-pandas"]
    assert set(arrow.gates) == set(ref.gates) and arrow.unchecked == ref.unchecked
    for name, gate in arrow.gates.items():
        other = ref.gates[name]
        assert gate.engine == "arrow" and other.engine == "gx-pandas", name
        assert (gate.success, gate.rows, gate.evaluated) == (other.success, other.rows,
                                                             other.evaluated), name
        assert gate.failures == other.failures, name
        mine = json.loads(open(gate.results_file, encoding="utf-8").read())
        theirs = json.loads(open(other.results_file, encoding="utf-8").read())
        assert _comparable(mine) == _comparable(theirs), name
    assert arrow.summary().replace(str(arrow.run_dir), "RUN") == \
        ref.summary().replace(str(ref.run_dir), "RUN")
    assert arrow.passed is ref.passed is False and arrow.exit_code == ref.exit_code == 1


def test_every_expectation_type_fails_with_its_count(engines):
    _, _, reports = engines
    failed = {}
    for name, gate in reports["arrow"].gates.items():
        for f in gate.failures:
            failed[(name, f.expectation, f.column)] = f.unexpected_count
    assert {t for _, t, _ in failed} == set(SUPPORTED)
    juki, tax = "juki", "kojin_juminzei"
    expect = {
        (juki, "expect_column_values_to_not_be_null", "atena_no"): 1,
        (juki, "expect_column_values_to_be_unique", "atena_no"): 2,  # null not a duplicate
        (juki, "expect_column_values_to_have_valid_atena_check_digit", "atena_no"): 1,
        # "1234567\n" matches under Python re (pandas' fallback), its length (8) does not
        (juki, "expect_column_values_to_match_regex", "yubin_bango"): 1,
        (juki, "expect_column_value_lengths_to_be_between", "yubin_bango"): 2,
        (juki, "expect_column_values_to_not_be_null", "jumin_date_status"): 1,
        (juki, "expect_column_values_to_have_valid_kojin_bango_check_digit", "kojin_bango"): 2,
        (juki, "expect_column_values_to_match_regex", "shimei_kana"): 41,
        (juki, "expect_column_values_to_be_in_set", "seinengappi_status"): 1,
        (tax, "expect_compound_columns_to_be_unique", None): 2,  # all-null keys ignored
        (tax, "expect_column_values_to_be_between", "shotokuwari_gaku"): 1,
        (tax, "expect_column_values_to_not_be_null", "shikibetsu_no"): 2,
        ("kokuho_setai", "expect_column_values_to_be_between", "hihokensha_su"): 2,
        ("kokuho_setai", "expect_column_values_to_be_unique", "setai_no"): 2,
        ("kokuho_setai", "expect_table_columns_to_match_ordered_list", None): None,
        ("kokuho_kojin", "expect_compound_columns_to_be_unique", None): 2,
        ("kokuho_kojin", "expect_table_row_count_to_equal", None): None,
    }
    assert {k: failed.get(k, "missing") for k in expect} == expect


def test_arrow_engine_reports_no_personal_values(engines):
    tables, planted, reports = engines
    report = reports["arrow"]
    text = _all_output_text(report.run_dir)
    names = FAMILY + GIVEN + FAMILY_KANA + GIVEN_KANA + TOWNS + ["ｱｻｷﾞﾘ", "1234567\n",
                                                                 "１２３４５６７８９０１２"]
    leaked = [v for v in names + list(planted.values()) if v in text]
    assert not leaked, f"personal values in reports: {leaked}"
    assert list((report.run_dir / "data_docs" / "validations").rglob("*.html"))
    for gate in report.gates.values():
        for f in gate.failures:
            assert len(f.sample) <= 5
            assert all(set(row) <= {"_record", "atena_no", "setai_no", "setainushi_atena_no",
                                    "shikibetsu_no"} for row in f.sample)


def test_arrow_engine_falls_back_to_gx_for_a_missing_column(good, tmp_path):
    tables, _ = good
    drifted = tables["kokuho_setai"].drop_columns(["hihokensha_su"])
    report = run_gates(stage(tmp_path / "s", {"kokuho_setai": drifted}), tmp_path / "r",
                       data_docs=False)
    assert report.gates["kokuho_setai"].engine == "gx-pandas"
    with pytest.raises(GateError, match="engine must be one of"):
        run_gates({}, tmp_path / "r2", engine="duckdb")


def test_report_splits_the_gate_time(good):
    _, report = good
    assert set(report.timings) == {"load", "setup", "validate", "results", "data_docs"}
    assert all(v >= 0 for v in report.timings.values())
    assert sum(report.timings.values()) <= report.seconds + 1e-6
    assert json.loads((report.run_dir / "gates.json").read_text("utf-8"))["timings"]
