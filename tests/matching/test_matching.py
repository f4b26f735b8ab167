"""Matching engine: configuration, blocking, EM estimation, scoring, linkage and accuracy.

A tiny fixed-seed generator makes a resident table and a tax table whose records carry the
spellings real registers hold: kanji variants (髙/高, 﨑/崎, 邊/邉/辺 …), kana with 濁点 dropped,
half-width kana, long-vowel marks, spaces or none between 氏 and 名, date typos, and missing or
wrong 宛名番号. The generator knows the truth, so the tests measure precision and recall.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ikou.pipeline.config.matching import (
    MatchConfigFileError,
    block,
    comparison_levels,
    config_from_mapping,
    link,
    load_config,
    prepare,
)

SURNAMES = [
    ("高橋", "タカハシ", ["髙橋"]), ("山崎", "ヤマザキ", ["山﨑", "山嵜"]),
    ("渡辺", "ワタナベ", ["渡邊", "渡邉"]), ("斉藤", "サイトウ", ["齋藤", "斎藤", "齊藤"]),
    ("沢田", "サワダ", ["澤田"]), ("浜口", "ハマグチ", ["濱口"]), ("桜井", "サクライ", ["櫻井"]),
    ("広瀬", "ヒロセ", ["廣瀬"]), ("国分", "コクブン", ["國分"]), ("徳永", "トクナガ", ["德永"]),
    ("吉田", "ヨシダ", ["𠮷田"]), ("飯塚", "イイヅカ", []), ("佐藤", "サトウ", []),
    ("鈴木", "スズキ", []), ("田中", "タナカ", []), ("伊藤", "イトウ", []),
    ("中村", "ナカムラ", []), ("小林", "コバヤシ", []), ("加藤", "カトウ", []),
    ("山田", "ヤマダ", []), ("松本", "マツモト", []), ("井上", "イノウエ", []),
    ("木村", "キムラ", []), ("清水", "シミズ", []), ("山口", "ヤマグチ", []),
    ("池田", "イケダ", []), ("橋本", "ハシモト", []), ("石川", "イシカワ", []),
    ("前田", "マエダ", []), ("藤田", "フジタ", []), ("後藤", "ゴトウ", []),
    ("長谷川", "ハセガワ", []), ("近藤", "コンドウ", []), ("坂本", "サカモト", []),
]
GIVEN = [
    ("太郎", "タロウ", []), ("花子", "ハナコ", []), ("一郎", "イチロウ", []),
    ("裕子", "ユウコ", []), ("翔太", "ショウタ", []), ("美咲", "ミサキ", []),
    ("大輔", "ダイスケ", []), ("直子", "ナオコ", []), ("誠", "マコト", []),
    ("陽子", "ヨウコ", []), ("拓也", "タクヤ", []), ("恵", "メグミ", ["惠"]),
    ("浩", "ヒロシ", []), ("由美", "ユミ", []), ("真由美", "マユミ", ["眞由美"]),
    ("亮", "リョウ", []), ("智子", "トモコ", []), ("健太", "ケンタ", []),
    ("雄一", "ユウイチ", []), ("涼子", "リョウコ", []), ("正樹", "マサキ", []),
]
_HALF = {unicodedata.normalize("NFKC", chr(c)): chr(c) for c in range(0xFF66, 0xFF9E)}


def half_width(kana: str) -> str:
    out = []
    for ch in kana:
        base, *mark = unicodedata.normalize("NFD", ch)
        out.append(_HALF.get(base, base))
        if mark:
            out.append("ﾞ" if mark[0] == "\u3099" else "ﾟ")
    return "".join(out)


def drop_voicing(kana: str) -> str:
    return "".join(unicodedata.normalize("NFD", ch)[0] for ch in kana)


def generate(n_residents=3000, n_tax=2400, outsiders=0.1, seed=7):
    """Residents and tax records; ``truth[i]`` is the resident row of tax row i (or -1)."""
    rnd = random.Random(seed)

    def person():
        s, g = rnd.choice(SURNAMES), rnd.choice(GIVEN)
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rnd.randrange(90 * 365))
        return s, g, birth, rnd.choice("12"), f"{rnd.randrange(10):03d}{rnd.randrange(3):04d}"

    residents = {"atena_no": [], "shimei": [], "kana": [], "birth": [], "sex": [], "zip": []}
    people = []
    for i in range(n_residents):
        s, g, birth, sex, zipc = p = person()
        people.append(p)
        residents["atena_no"].append(f"{100000 + i * 7:010d}")
        residents["shimei"].append(f"{s[0]}\u3000{g[0]}")
        residents["kana"].append(f"{s[1]} {g[1]}")
        residents["birth"].append(birth)
        residents["sex"].append(sex)
        residents["zip"].append(zipc)
    tax = {"tax_no": [], "atena": [], "name": [], "yomi": [], "seinengappi": [], "seibetsu": [],
           "yubin": []}
    truth = []
    for j in range(n_tax):
        if rnd.random() < outsiders:
            p, r = person(), -1  # 住登外: taxed here, not a resident
            key = None if rnd.random() < 0.5 else f"9{rnd.randrange(10**9):09d}"
        else:
            r = rnd.randrange(n_residents)
            p = people[r]
            x = rnd.random()
            key = None if x < 0.25 else (
                residents["atena_no"][rnd.randrange(n_residents)] if x < 0.28
                else residents["atena_no"][r])
        (s_k, s_r, s_var), (g_k, g_r, g_var), birth, sex, zipc = p
        if r >= 0:
            if s_var and rnd.random() < 0.6:
                s_k = rnd.choice(s_var)
            if g_var and rnd.random() < 0.6:
                g_k = rnd.choice(g_var)
            if rnd.random() < 0.3:
                s_r = drop_voicing(s_r)
            if rnd.random() < 0.3 and "ウ" in g_r[1:]:
                g_r = g_r[0] + g_r[1:].replace("ウ", "ー")
            y = rnd.random()
            if y < 0.05 and birth.day <= 12 and birth.day != birth.month:
                birth = birth.replace(month=birth.day, day=birth.month)
            elif y < 0.1:
                birth = birth.replace(year=birth.year + rnd.choice([-1, 1]))
            if rnd.random() < 0.05:
                zipc = None
        sep = rnd.choice(["\u3000", " ", ""])
        kana = f"{s_r}{rnd.choice([' ', '　'])}{g_r}"
        tax["tax_no"].append(f"T{j:07d}")
        tax["atena"].append(key)
        tax["name"].append(f"{s_k}{sep}{g_k}")
        tax["yomi"].append(half_width(kana) if rnd.random() < 0.4 else kana)
        tax["seinengappi"].append(birth)
        tax["seibetsu"].append(sex)
        tax["yubin"].append(zipc)
        truth.append(r)
    return pa.table(residents), pa.table(tax), np.array(truth)


CONFIG = {
    "name": "tax_to_residents",
    "left": {"name": "residents", "id": "atena_no", "key": "atena_no"},
    "right": {"name": "tax", "id": "tax_no", "key": "atena"},
    "fields": [
        {"name": "name", "left": "shimei", "right": "name", "method": "jaro_winkler",
         "thresholds": [1.0, 0.9, 0.75], "normalize": "kanji"},
        {"name": "kana", "left": "kana", "right": "yomi", "method": "jaro_winkler",
         "thresholds": [1.0, 0.9, 0.75], "normalize": "kana"},
        {"name": "birth", "left": "birth", "right": "seinengappi", "method": "date"},
        {"name": "sex", "left": "sex", "right": "seibetsu", "method": "exact", "normalize": "none"},
        {"name": "zip", "left": "zip", "right": "yubin", "method": "exact", "normalize": "none"},
    ],
    "blocking": [
        ["birth", "sex"],
        [{"field": "kana", "prefix": 2}, "zip"],
        ["name"],
    ],
    "thresholds": {"match": 0.99, "possible": 0.5},
    "estimation": {"u_random_pairs": 50000, "seed": 1},
}


@pytest.fixture(scope="module")
def data():
    return generate()


@pytest.fixture(scope="module")
def result(data):
    residents, tax, _ = data
    return link(config_from_mapping(CONFIG), residents, tax)


def _scores(links, truth):
    right = links["right_row"].to_numpy()
    left = links["left_row"].to_numpy()
    decision = links["decision"].combine_chunks().dictionary_decode().to_pylist()
    out = {}
    for name, keep in (("match", ["match"]), ("match+possible", ["match", "possible"])):
        sel = np.array([d in keep for d in decision], bool)
        correct = int((truth[right[sel]] == left[sel]).sum())
        precision = correct / max(int(sel.sum()), 1)
        recall = correct / int((truth >= 0).sum())
        out[name] = (precision, recall, 2 * precision * recall / (precision + recall))
    return out


def test_accuracy_on_generated_registers(data, result):
    _, _, truth = data
    scores = _scores(result.links, truth)
    p, r, f1 = scores["match"]
    assert p >= 0.99 and r >= 0.98, scores  # measured: 1.000 / 0.998
    p2, r2, _ = scores["match+possible"]
    assert r2 >= max(r, 0.99) and p2 >= 0.97, scores  # measured: 0.993 / 1.000


def test_counts_reconcile(result):
    c = result.counts
    assert c["match"] + c["possible"] + c["unmatched"] == c["right_records"]
    method = result.links["method"].combine_chunks().dictionary_decode()
    assert c["key_links"] + pc.sum(pc.equal(method, "fuzzy")).as_py() == result.links.num_rows
    assert result.review.num_rows == c["possible"]
    assert len(set(result.links["right_row"].to_pylist())) == result.links.num_rows
    assert c["key_rejected"] > 0  # wrong keys were typed: the model refused some
    assert c["skipped_block_pairs"] == 0


def test_wrong_keys_are_rejected_and_resolved_by_fuzzy(data, result):
    residents, tax, truth = data
    right = result.links["right_row"].to_numpy()
    left = result.links["left_row"].to_numpy()
    method = result.links["method"].combine_chunks().dictionary_decode().to_pylist()
    keys = tax["atena"].to_pylist()
    atena = residents["atena_no"].to_pylist()
    wrong = [j for j in range(tax.num_rows)
             if truth[j] >= 0 and keys[j] is not None and keys[j] != atena[truth[j]]]
    assert wrong
    linked = dict(zip(right.tolist(), zip(left.tolist(), method, strict=True), strict=True))
    fixed = [j for j in wrong if j in linked and linked[j] == (truth[j], "fuzzy")]
    assert len(fixed) >= 0.8 * len(wrong)
    assert not any(j in linked and linked[j][1] == "key" for j in wrong)


def test_every_link_explains_itself(result):
    links = result.links
    weight_cols = [c for c in links.column_names if c.startswith("weight_")]
    assert len(weight_cols) == 5
    total = sum(links[c].to_numpy() for c in weight_cols) + result.model.prior_weight
    np.testing.assert_allclose(links["score"].to_numpy(), total)
    prob = links["probability"].to_numpy()
    assert ((prob > 0) & (prob <= 1)).all()
    assert links["left_id"].type == pa.string() and links["right_id"].to_pylist()[0].startswith("T")


def test_em_learns_sensible_weights(result):
    model = result.model
    for name, w in zip(model.fields, model.weights(), strict=True):
        assert w[-1] > (5 if name in ("name", "kana", "birth") else 0), (name, w)  # for a match
        assert w[0] < -1, (name, w)  # disagreement is evidence against
    birth = model.weights()[model.fields.index("birth")]
    assert birth[3] > birth[2] > birth[0] and birth[1] > birth[0]  # same > swapped/typo > else
    assert "pairs linked by key" in " ".join(model.notes)
    d = model.to_dict()
    assert set(d["fields"]) == set(model.fields)


def test_em_without_labels(data):
    """m by EM over the candidates (no keys used for m), as when keys are rare."""
    residents, tax, truth = data
    cfg = config_from_mapping({
        **CONFIG,
        "blocking": [["birth", "sex"], [{"field": "kana", "prefix": 2}, "zip"]],
        "estimation": {"u_random_pairs": 50000, "seed": 1, "m_from": "em"},
    })
    res = link(cfg, residents, tax)
    assert any(n.startswith("EM:") for n in res.model.notes)
    p, r, _ = _scores(res.links, truth)["match"]
    assert p >= 0.98 and r >= 0.95  # measured: 0.993 / 0.978
    w = res.model.weights()
    assert w[0][-1] > 5 and w[2][3] > w[2][0]


def test_blocking_equals_brute_force_and_stays_small(data):
    residents, tax, _ = data
    cfg = config_from_mapping(CONFIG)
    small_l, small_r = residents.slice(0, 300), tax.slice(0, 250)
    prep = prepare(cfg, small_l, small_r)
    blocks = block(cfg, prep, small_l, small_r)
    got = set(zip(blocks.li.tolist(), blocks.ri.tolist(), strict=True))
    L = {k: v.to_pylist() for k, v in prep.left.items()}
    R = {k: v.to_pylist() for k, v in prep.right.items()}

    def agree(i, j, part):
        a, b = L[part.field][i], R[part.field][j]
        if part.prefix:
            a, b = a and a[: part.prefix], b and b[: part.prefix]
        return a not in (None, "") and a == b

    want = {(i, j) for i in range(300) for j in range(250)
            if any(all(agree(i, j, p) for p in rule) for rule in cfg.blocking)}
    assert got == want
    full_blocks = block(cfg, prepare(cfg, residents, tax), residents, tax)
    assert len(full_blocks.li) < 20 * tax.num_rows  # never all pairs (7.2M here)


def test_block_cap_skips_and_counts(data):
    residents, tax, _ = data
    cfg = config_from_mapping({**CONFIG, "blocking": [["sex"]],
                               "estimation": {"max_block_pairs": 1000, "u_random_pairs": 1000}})
    prep = prepare(cfg, residents, tax)
    blocks = block(cfg, prep, residents, tax)
    assert len(blocks.li) == 0 and blocks.skipped_pairs > 1_000_000


def test_given_m_u_without_em_is_deterministic(data):
    residents, tax, _ = data
    fields = [dict(f) for f in CONFIG["fields"]]
    fields[3].update(m=[0.02, 0.98], u=[0.5, 0.5])
    cfg = config_from_mapping({**CONFIG, "fields": fields,
                               "estimation": {"em": False, "u_random_pairs": 5000, "seed": 3}})
    a = link(cfg, residents.slice(0, 500), tax.slice(0, 400))
    b = link(cfg, residents.slice(0, 500), tax.slice(0, 400))
    assert a.links.equals(b.links)
    assert a.model.m[3].tolist() == pytest.approx([0.02, 0.98])
    assert a.model.u[3].tolist() == pytest.approx([0.5, 0.5])


def test_links_do_not_depend_on_the_comparison_threads(data, monkeypatch):
    from ikou.transforms.match import engine

    residents, tax, _ = data
    cfg = config_from_mapping({**CONFIG, "left": {"id": CONFIG["left"]["id"]},
                               "right": {"id": CONFIG["right"]["id"]}})  # no keys: EM
    monkeypatch.setattr(engine, "COMPARE_CHUNK_PAIRS", 997)  # many ranges of pairs
    out = []
    for threads in ("1", "3"):
        monkeypatch.setenv("IKOU_MATCH_THREADS", threads)
        r = link(cfg, residents.slice(0, 3000), tax.slice(0, 3000))
        out.append((r.links, r.model.to_dict()))
    assert out[0][0].equals(out[1][0]) and out[0][1] == out[1][1]
    assert out[0][0].num_rows > 1000


def test_comparison_levels_matrix(data):
    residents, tax, _ = data
    cfg = config_from_mapping(CONFIG)
    prep = prepare(cfg, residents, tax)
    lv = comparison_levels(cfg, prep, np.array([0, 1]), np.array([0, 0]))
    assert lv.shape == (2, 5) and lv.dtype == np.int8
    assert ((lv >= -1) & (lv <= 3)).all()


def test_yaml_config_and_errors(tmp_path):
    path = tmp_path / "match.yaml"
    path.write_text(
        "name: demo\n"
        "left: {id: atena_no, key: atena_no}\n"
        "right: {id: tax_no, key: atena}\n"
        "fields:\n"
        "  - {name: name, left: shimei, right: name, method: jaro_winkler}\n"
        "  - {name: kana, left: kana, right: yomi, method: levenshtein,\n"
        "     normalize: {voiced: fold, small: true, whitespace: remove}}\n"
        "blocking:\n"
        "  - [{field: kana, prefix: 2}]\n"
        "variants: [default, user.csv]\n", encoding="utf-8")
    (tmp_path / "user.csv").write_text("variant,standard\nU+E000,高\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.fields[1].normalize.voiced == "fold"
    assert cfg.variants[1].endswith("user.csv")
    res = link(cfg, pa.table({"atena_no": ["1"], "shimei": ["髙橋　一郎"], "kana": ["タカハシ"]}),
               pa.table({"tax_no": ["T"], "atena": [None], "name": ["\ue000橋一郎"],
                         "yomi": ["ﾀｶﾊｼ"]}))
    assert res.links.num_rows <= 1 and res.counts["right_records"] == 1

    bad = [
        ({"fields": [{"name": "x", "method": "soundex"}], "blocking": [["x"]]}, "unknown method"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": [["y"]]}, "unknown field"),
        ({"fields": [{"name": "x", "method": "jaro_winkler", "thresholds": [0.5, 0.9]}],
          "blocking": [["x"]]}, "descending"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": [["x"]],
          "thresholds": {"match": 0.3, "possible": 0.6}}, "possible <= match"),
        ({"fields": [{"name": "x", "method": "exact", "m": [0.5]}], "blocking": [["x"]]},
         "needs 2 probabilities"),
        ({"fields": [{"name": "x", "method": "exact", "normalize": "fancy"}],
          "blocking": [["x"]]}, "profile"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": [["x"]], "colour": 1},
         "unknown key"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": []}, "at least one"),
        ({"left": {"key": "a"}, "fields": [{"name": "x", "method": "exact"}],
          "blocking": [["x"]]}, "both sides"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": [["x"]],
          "estimation": {"m_from": "keys"}}, "needs 'key'"),
        ({"fields": [{"name": "x", "method": "exact"}], "blocking": [["x"]],
          "estimation": {"m_from": "magic"}}, "m_from"),
        ({"fields": [{"name": "x", "method": "date", "thresholds": [1.0]}],
          "blocking": [["x"]]}, "takes no thresholds"),
    ]
    for mapping, message in bad:
        with pytest.raises(MatchConfigFileError, match=message):
            config_from_mapping(mapping)
    assert issubclass(MatchConfigFileError, ValueError)
    (tmp_path / "broken.yaml").write_text("fields: [\n", encoding="utf-8")
    with pytest.raises(MatchConfigFileError, match="broken.yaml"):
        load_config(tmp_path / "broken.yaml")


def test_read_inputs_from_arrow_files(tmp_path, data):
    from ikou.pipeline.config.matching import read_inputs

    residents, tax, _ = data
    for name, table in (("residents.arrow", residents), ("tax.arrow", tax)):
        with pa.OSFile(str(tmp_path / name), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    cfg = config_from_mapping({**CONFIG, "left": {**CONFIG["left"], "path": "residents.arrow"},
                               "right": {**CONFIG["right"], "path": "tax.arrow"}})
    left, right = read_inputs(cfg, tmp_path)
    assert left.equals(residents) and right.equals(tax)
    with pytest.raises(ValueError, match="file not found"):
        read_inputs(cfg, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no left path"):
        read_inputs(config_from_mapping(CONFIG), tmp_path)


def test_write_outputs(tmp_path, result):
    import json

    from ikou.pipeline.config.matching import write_outputs

    summary = write_outputs(result, tmp_path / "out")
    json.dumps(summary)  # manifest-ready
    links = pa.ipc.open_file(str(tmp_path / "out" / "links.arrow")).read_all()
    assert links.equals(result.links)
    assert summary["files"]["review"]["rows"] == result.counts["possible"]
    assert summary["counts"]["match"] == result.counts["match"]


def test_missing_column_is_a_clear_error(data):
    residents, tax, _ = data
    cfg = config_from_mapping(CONFIG)
    with pytest.raises(ValueError, match="no column 'yomi'"):
        link(cfg, residents, tax.drop_columns(["yomi"]))


def test_review_holds_possible_links_only(result):
    d = result.review["decision"].combine_chunks().dictionary_decode()
    assert pc.all(pc.equal(d, "possible")).as_py() in (True, None)


def test_empty_tables_and_all_null_columns():
    residents, tax, truth = generate(200, 100, seed=3)
    cfg = config_from_mapping(CONFIG)
    for left, right in ((residents.slice(0, 0), tax), (residents, tax.slice(0, 0)),
                        (residents.slice(0, 0), tax.slice(0, 0))):
        res = link(cfg, left, right)
        assert res.links.num_rows == 0
        assert res.unmatched.num_rows == right.num_rows == res.counts["unmatched"]
    no_kana = tax.set_column(tax.column_names.index("yomi"), "yomi",
                             pa.nulls(tax.num_rows, pa.string()))
    res = link(cfg, residents, no_kana)
    assert res.links["level_kana"].null_count == res.links.num_rows
    assert (res.links["weight_kana"].to_numpy() == 0).all()
    right = res.links["right_row"].to_numpy()
    match = res.links["decision"].combine_chunks().indices.to_numpy() == 0
    assert (truth[right[match]] == res.links["left_row"].to_numpy()[match]).mean() >= 0.97


def test_best_candidate_per_right_record():
    from ikou.pipeline.config.matching import _best_per_run

    ri = np.array([0, 0, 0, 2, 2, 5])
    score = np.array([1.0, 3.0, 3.0, 2.0, 1.0, 0.0])
    best, group_r, top, runner, second = _best_per_run(ri, score)
    assert best.tolist() == [1, 3, 5]  # ties: the first (lowest left row)
    assert second.tolist() == [2, 4, -1]  # the runner-up's index, -1 when alone
    assert group_r.tolist() == [0, 2, 5]
    assert top.tolist() == [3.0, 2.0, 0.0]
    assert runner.tolist() == [3.0, 1.0, -np.inf]  # a tie makes the runner-up equal
