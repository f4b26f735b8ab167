"""Record matching (名寄せ): link the records of one Arrow table to those of another.

Pure functions over Arrow tables, so a Beam transform or the CLI can wrap them:

    cfg = load_config("match.yaml")                 # or config_from_mapping(dict)
    result = link(cfg, left_table, right_table)      # left: e.g. residents, right: e.g. tax
    result.links    # one row per linked right record: both ids, method, decision, score,
                    # probability, and per field the comparison level and its weight
    result.review   # the `possible` links, for a person to review
    result.unmatched  # right records with no link
    result.counts   # numbers for the manifest

Configuration (YAML; nothing is tied to particular column names):

    name: tax_to_residents
    left:  {path: residents.arrow, id: atena_no, key: atena_no}   # path: for read_inputs
    right: {path: tax.arrow, id: tax_no, key: atena}              # key: exact linkage first
    variants: [default, our_gaiji_variants.csv]     # "default" = pipeline/data/variants/*.csv
    fields:
      - {name: name, left: shimei, right: name, method: jaro_winkler,
         thresholds: [1.0, 0.9, 0.75], normalize: kanji}
      - {name: kana, left: kana, right: yomi, method: jaro_winkler, normalize: kana}
      - {name: birth, left: birth, right: seinengappi, method: date}       # date32 columns
      - {name: sex, column: sex, method: exact, normalize: none}
      - {name: addr, column: address, method: levenshtein, thresholds: [1.0, 0.8],
         normalize: {whitespace: remove, voiced: keep}}                  # explicit options
    blocking:                                       # union of rules; each rule: AND of parts
      - [birth, sex]
      - [{field: kana, prefix: 3}, {left: zip, right: yubin}]
    thresholds: {match: 0.99, possible: 0.5}        # match probabilities
    estimation: {m_from: auto, u_random_pairs: 200000, seed: 0, max_block_pairs: 10000}

Methods: ``exact`` (2 levels), ``jaro_winkler`` / ``levenshtein`` (k thresholds → k+1
levels), ``date`` (4 levels: else, one digit of YYYYMMDD off, day/month swapped, same).
Normalisation profiles: ``kanji`` (width, kana, variants, spaces removed), ``kana`` (also
濁点 folded, small kana, ー → vowel, ヴ → ブ, upper case), ``text``, ``none``; or a mapping of
``NormalizeOptions``. m and u may be given per field (``m: [...]``, ``u: [...]``, level order).

Steps:
1. **Normalise** every compared string field with its options (``ikou.kernels.normalize``:
   width, kana, 濁点, small kana, long vowels, spaces, kanji variants from the variant tables).
2. **Block**: each blocking rule is a list of fields (optionally the first N characters); pairs
   that agree on all parts of a rule are candidates. Pairs come from a sort-based equi-join on
   integer key codes (numpy), never from all pairs; a block larger than ``max_block_pairs`` is
   skipped and counted. Candidates are the union over the rules.
3. **Compare**: the comparison kernel (``ikou.kernels.compare``) gives each pair a level per field.
4. **Estimate** a Fellegi–Sunter model as splink does: u from random pairs, m (and the share of
   matches) by EM on each rule's candidate pairs with the rule's own fields held fixed, then m
   averaged over the rules that left a field free. m and u given in the config are used as is.
5. **Link**: exact key linkage first (a right record whose key names exactly one left record and
   whose score is not below the ``possible`` threshold is linked by key); the other right records
   take their best fuzzy candidate. The match weight is ``log2(prior odds) + Σ log2(m/u)``;
   probability thresholds give ``match``/``possible``; a ``match`` whose runner-up also reaches
   ``match`` is downgraded to ``possible`` (ambiguous).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ikou.kernels._match_common import LEVEL_NULL, check_thresholds
from ikou.kernels.compare import (
    StringColumn,
    date_levels,
    exact_codes,
    exact_levels,
    string_levels,
)
from ikou.kernels.normalize import (
    MatchConfigError,
    NormalizeOptions,
    Normalizer,
    VariantTableError,
    load_variant_table,
)

from .yamlio import ConfigError, load_yaml, where

__all__ = [
    "DEFAULT_VARIANT_DIR",
    "FieldSpec",
    "MatchConfig",
    "MatchConfigFileError",
    "MatchResult",
    "Model",
    "VariantTableError",
    "block",
    "comparison_levels",
    "config_from_mapping",
    "estimate_model",
    "link",
    "load_config",
    "prepare",
    "read_inputs",
    "write_outputs",
]

DEFAULT_VARIANT_DIR = Path(__file__).parent / "data" / "variants"
METHODS = ("exact", "jaro_winkler", "levenshtein", "date")

# Normalisation profiles a field may name instead of listing options.
PROFILES = {
    "none": None,
    "kanji": NormalizeOptions(whitespace="remove"),
    "kana": NormalizeOptions(
        voiced="fold", small=True, long_vowel="vowel", vu=True, whitespace="remove", upper=True
    ),
    "text": NormalizeOptions(whitespace="collapse", upper=True),
}


class MatchConfigFileError(ConfigError, MatchConfigError):
    """The matching configuration is invalid; the message names the file and line."""


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str
    left: str
    right: str
    method: str
    thresholds: tuple[float, ...] = ()
    normalize: NormalizeOptions | None = None
    m: tuple[float, ...] | None = None
    u: tuple[float, ...] | None = None

    @property
    def n_levels(self) -> int:
        if self.method == "exact":
            return 2
        if self.method == "date":
            return 4
        return len(self.thresholds) + 1


@dataclass(frozen=True)
class KeyPart:
    field: str | None  # a compared field (its normalised values) ...
    left: str | None  # ... or two raw columns
    right: str | None
    prefix: int | None = None


@dataclass(frozen=True)
class MatchConfig:
    name: str
    fields: tuple[FieldSpec, ...]
    blocking: tuple[tuple[KeyPart, ...], ...]
    left_id: str | None = None
    right_id: str | None = None
    left_key: str | None = None
    right_key: str | None = None
    left_path: str | None = None
    right_path: str | None = None
    match_probability: float = 0.99
    possible_probability: float = 0.5
    variants: tuple[str, ...] = ("default",)
    em: bool = True
    max_iterations: int = 40
    tolerance: float = 1e-5
    u_random_pairs: int = 200_000
    em_max_pairs: int = 2_000_000
    max_block_pairs: int = 10_000
    expected_match_rate: float = 1.0
    seed: int = 0
    m_from: str = "auto"  # "keys" (pairs linked by key), "em", or "auto" (keys when enough)


def load_config(path: str | Path) -> MatchConfig:
    """Load a matching configuration (YAML); errors raise :class:`MatchConfigFileError`."""
    data = load_yaml(path, MatchConfigFileError)
    return config_from_mapping(data, source=str(path))


def _need(mapping, key, source, kind=None):
    if not isinstance(mapping, dict) or key not in mapping:
        raise MatchConfigFileError(f"{where(source, mapping)}: missing {key!r}")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind):
        raise MatchConfigFileError(f"{where(source, mapping)}: {key!r} has the wrong type")
    return value


def _check_keys(mapping, allowed, source, what):
    unknown = set(mapping) - set(allowed)
    if unknown:
        raise MatchConfigFileError(
            f"{where(source, mapping)}: unknown key(s) {sorted(unknown)} in {what}; "
            f"allowed: {sorted(allowed)}"
        )


def _probabilities(values, n, source, node, what):
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != n:
        raise MatchConfigFileError(f"{where(source, node)}: {what} needs {n} probabilities")
    arr = [float(v) for v in values]
    if any(not 0 < v <= 1 for v in arr) or not math.isclose(sum(arr), 1.0, abs_tol=1e-6):
        raise MatchConfigFileError(
            f"{where(source, node)}: {what} must be probabilities in (0, 1] summing to 1"
        )
    return tuple(arr)


def _field(node, source) -> FieldSpec:
    if not isinstance(node, dict):
        raise MatchConfigFileError(f"{where(source, node)}: a field must be a mapping")
    _check_keys(node, {"name", "left", "right", "column", "method", "thresholds", "normalize",
                       "m", "u"}, source, "a field")
    name = _need(node, "name", source, str)
    if not name.isidentifier():
        raise MatchConfigFileError(f"{where(source, node)}: field name {name!r} is not an identifier")
    method = _need(node, "method", source, str)
    if method not in METHODS:
        raise MatchConfigFileError(
            f"{where(source, node)}: field {name}: unknown method {method!r}; known: {list(METHODS)}"
        )
    column = node.get("column", name)
    left, right = node.get("left", column), node.get("right", column)
    thresholds: tuple[float, ...] = ()
    if method in ("jaro_winkler", "levenshtein"):
        th = node.get("thresholds", [1.0, 0.92, 0.8] if method == "jaro_winkler" else [1.0, 0.75])
        try:
            thresholds = tuple(float(t) for t in check_thresholds(th))
        except (MatchConfigError, TypeError, ValueError) as exc:
            raise MatchConfigFileError(f"{where(source, node)}: field {name}: {exc}") from None
    elif "thresholds" in node:
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: {method} takes no thresholds")
    norm = node.get("normalize", "kanji" if method != "date" else "none")
    if method == "date" and norm not in (None, "none"):
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: dates are not normalised")
    if isinstance(norm, str):
        if norm not in PROFILES:
            raise MatchConfigFileError(
                f"{where(source, node)}: field {name}: unknown normalisation profile {norm!r}; "
                f"known: {sorted(PROFILES)}"
            )
        options = PROFILES[norm]
    elif isinstance(norm, dict):
        try:
            options = NormalizeOptions.from_mapping(norm)
        except (MatchConfigError, TypeError) as exc:
            raise MatchConfigFileError(f"{where(source, node)}: field {name}: {exc}") from None
    elif norm is None:
        options = None
    else:
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: bad 'normalize'")
    spec = FieldSpec(name, str(left), str(right), method, thresholds, options)
    m = _probabilities(node.get("m"), spec.n_levels, source, node, f"field {name}: m")
    u = _probabilities(node.get("u"), spec.n_levels, source, node, f"field {name}: u")
    return FieldSpec(name, str(left), str(right), method, thresholds, options, m, u)


def _key_part(node, fields, source) -> KeyPart:
    if isinstance(node, str):
        node = {"field": node}
    if not isinstance(node, dict):
        raise MatchConfigFileError(f"{where(source, node)}: a blocking part must be a name or mapping")
    _check_keys(node, {"field", "left", "right", "column", "prefix"}, source, "a blocking part")
    prefix = node.get("prefix")
    if prefix is not None and (not isinstance(prefix, int) or prefix < 1):
        raise MatchConfigFileError(f"{where(source, node)}: prefix must be a positive integer")
    if "field" in node:
        if node["field"] not in fields:
            raise MatchConfigFileError(
                f"{where(source, node)}: blocking names unknown field {node['field']!r}"
            )
        return KeyPart(node["field"], None, None, prefix)
    column = node.get("column")
    left, right = node.get("left", column), node.get("right", column)
    if left is None or right is None:
        raise MatchConfigFileError(
            f"{where(source, node)}: a blocking part needs 'field', 'column' or 'left'+'right'"
        )
    return KeyPart(None, str(left), str(right), prefix)


def config_from_mapping(data, source: str = "<config>") -> MatchConfig:
    """Build and validate a :class:`MatchConfig` from a mapping (as loaded from YAML)."""
    if not isinstance(data, dict):
        raise MatchConfigFileError(f"{source}: the configuration must be a mapping")
    _check_keys(data, {"name", "left", "right", "fields", "blocking", "thresholds", "estimation",
                       "variants"}, source, "the configuration")
    name = str(data.get("name", "match"))
    sides = {}
    for side in ("left", "right"):
        node = data.get(side, {}) or {}
        if not isinstance(node, dict):
            raise MatchConfigFileError(f"{where(source, data)}: {side!r} must be a mapping")
        _check_keys(node, {"name", "path", "id", "key"}, source, side)
        sides[side] = node
    fields_node = _need(data, "fields", source, list)
    fields = tuple(_field(f, source) for f in fields_node)
    if not fields:
        raise MatchConfigFileError(f"{where(source, fields_node)}: no fields")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise MatchConfigFileError(f"{where(source, fields_node)}: duplicate field names")
    by_name = {f.name: f for f in fields}
    rules_node = _need(data, "blocking", source, list)
    if not rules_node:
        raise MatchConfigFileError(f"{where(source, rules_node)}: at least one blocking rule")
    rules = []
    for rule in rules_node:
        parts = rule if isinstance(rule, list) else [rule]
        if not parts:
            raise MatchConfigFileError(f"{where(source, rules_node)}: empty blocking rule")
        rules.append(tuple(_key_part(p, by_name, source) for p in parts))
    th = data.get("thresholds", {}) or {}
    _check_keys(th, {"match", "possible"}, source, "thresholds")
    match_p = float(th.get("match", 0.99))
    possible_p = float(th.get("possible", 0.5))
    if not 0 < possible_p <= match_p < 1:
        raise MatchConfigFileError(
            f"{where(source, th)}: thresholds need 0 < possible <= match < 1 (probabilities)"
        )
    est = data.get("estimation", {}) or {}
    _check_keys(est, {"em", "max_iterations", "tolerance", "u_random_pairs", "em_max_pairs",
                      "max_block_pairs", "expected_match_rate", "seed", "m_from"}, source,
                "estimation")
    variants = data.get("variants", ["default"])
    if isinstance(variants, str):
        variants = [variants]
    if not isinstance(variants, list):
        raise MatchConfigFileError(f"{where(source, data)}: 'variants' must be a list of paths")
    base = Path(source).parent if source != "<config>" else Path(".")
    variants = tuple(v if v == "default" else str(base / v) for v in map(str, variants))
    try:
        cfg = MatchConfig(
            name=name,
            fields=fields,
            blocking=tuple(rules),
            left_id=sides["left"].get("id"),
            right_id=sides["right"].get("id"),
            left_key=sides["left"].get("key"),
            right_key=sides["right"].get("key"),
            left_path=sides["left"].get("path"),
            right_path=sides["right"].get("path"),
            match_probability=match_p,
            possible_probability=possible_p,
            variants=variants,
            em=bool(est.get("em", True)),
            max_iterations=int(est.get("max_iterations", 40)),
            tolerance=float(est.get("tolerance", 1e-5)),
            u_random_pairs=int(est.get("u_random_pairs", 200_000)),
            em_max_pairs=int(est.get("em_max_pairs", 2_000_000)),
            max_block_pairs=int(est.get("max_block_pairs", 10_000)),
            expected_match_rate=float(est.get("expected_match_rate", 1.0)),
            seed=int(est.get("seed", 0)),
            m_from=str(est.get("m_from", "auto")),
        )
    except (TypeError, ValueError) as exc:
        raise MatchConfigFileError(f"{where(source, est)}: estimation: {exc}") from None
    if cfg.m_from not in ("auto", "keys", "em"):
        raise MatchConfigFileError(f"{where(source, est)}: m_from must be auto, keys or em")
    if cfg.m_from == "keys" and cfg.left_key is None:
        raise MatchConfigFileError(f"{where(source, est)}: m_from: keys needs 'key' on both sides")
    if (cfg.left_key is None) != (cfg.right_key is None):
        raise MatchConfigFileError(f"{where(source, data)}: give 'key' on both sides or neither")
    if not 0 < cfg.expected_match_rate <= 1 or cfg.u_random_pairs < 0 or cfg.max_block_pairs < 1:
        raise MatchConfigFileError(f"{where(source, est)}: estimation values out of range")
    return cfg


# --- preparation and blocking ----------------------------------------------------------------


@dataclass
class Prepared:
    """Both tables' columns ready for blocking and comparison."""

    n_left: int
    n_right: int
    left: dict[str, pa.Array]  # field name → normalised (or raw) column
    right: dict[str, pa.Array]
    strings: dict[str, tuple[StringColumn, StringColumn]] = field(default_factory=dict)
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _column(table: pa.Table, name: str, side: str) -> pa.Array:
    if name not in table.column_names:
        raise MatchConfigError(f"{side} table has no column {name!r}")
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _variant_map(cfg: MatchConfig) -> dict[int, int]:
    paths: list[Path] = []
    for v in cfg.variants:
        paths.extend(sorted(DEFAULT_VARIANT_DIR.glob("*.csv")) if v == "default" else [Path(v)])
    return load_variant_table(*paths) if paths else {}


def prepare(cfg: MatchConfig, left: pa.Table, right: pa.Table,
            variants: dict[int, int] | None = None) -> Prepared:
    """Normalise the compared columns of both tables (the variant tables load once here)."""
    if variants is None:
        variants = _variant_map(cfg)
    normalizers: dict[NormalizeOptions, Normalizer] = {}
    prep = Prepared(left.num_rows, right.num_rows, {}, {})
    for f in cfg.fields:
        a, b = _column(left, f.left, "left"), _column(right, f.right, "right")
        if f.normalize is not None:
            if f.normalize not in normalizers:
                normalizers[f.normalize] = Normalizer(f.normalize, variants)
            norm = normalizers[f.normalize]
            a, b = norm(_as_string(a, f.name)), norm(_as_string(b, f.name))
        prep.left[f.name], prep.right[f.name] = a, b
        if f.method in ("jaro_winkler", "levenshtein"):
            prep.strings[f.name] = (StringColumn(_as_string(a, f.name)),
                                    StringColumn(_as_string(b, f.name)))
        elif f.method == "exact":
            prep.codes[f.name] = exact_codes(_blank_to_null(a), _blank_to_null(b))
    return prep


def _as_string(arr: pa.Array, name: str) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise MatchConfigError(f"field {name}: cannot use {arr.type} as text") from None
    return arr


def _blank_to_null(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    return arr


def _part_arrays(part: KeyPart, prep: Prepared, left: pa.Table, right: pa.Table):
    if part.field is not None:
        a, b = prep.left[part.field], prep.right[part.field]
    else:
        a, b = _column(left, part.left, "left"), _column(right, part.right, "right")
    if part.prefix is not None:
        a = pc.utf8_slice_codeunits(_as_string(a, "blocking"), 0, part.prefix)
        b = pc.utf8_slice_codeunits(_as_string(b, "blocking"), 0, part.prefix)
    return _blank_to_null(a), _blank_to_null(b)


def _rule_codes(rule, prep: Prepared, left: pa.Table, right: pa.Table):
    """One int64 code per row and side for a rule's combined key (-1: a part is null/blank)."""
    lc = rc = None
    for part in rule:
        a, b = exact_codes(*_part_arrays(part, prep, left, right))
        if lc is None:
            lc, rc = a, b
            continue
        width = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
        bad_l, bad_r = (lc < 0) | (a < 0), (rc < 0) | (b < 0)
        both = np.concatenate([lc * width + a, rc * width + b])
        _, inv = np.unique(both, return_inverse=True)  # compact before the next part
        inv = inv.astype(np.int64)
        lc, rc = inv[: len(lc)], inv[len(lc):]
        lc[bad_l] = -1
        rc[bad_r] = -1
    return lc, rc


def _join_codes(lc: np.ndarray, rc: np.ndarray, max_block_pairs: int):
    """All (left, right) row pairs with equal non-negative codes; blocks over the cap skipped."""
    k = int(max(lc.max(initial=-1), rc.max(initial=-1))) + 1
    if k == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, 0
    count_l = np.bincount(lc[lc >= 0], minlength=k)
    count_r = np.bincount(rc[rc >= 0], minlength=k)
    size = count_l.astype(np.int64) * count_r
    too_big = size > max_block_pairs
    skipped = int(size[too_big].sum())
    order_l = np.argsort(lc, kind="stable")
    start_l = np.concatenate([[0], np.cumsum(count_l)])[:-1] + int((lc < 0).sum())
    rows_r = np.nonzero(rc >= 0)[0]
    rows_r = rows_r[~too_big[rc[rows_r]]]
    reps = count_l[rc[rows_r]]
    ri = np.repeat(rows_r, reps)
    first = np.repeat(start_l[rc[rows_r]], reps)
    within = np.arange(len(ri), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    li = order_l[first + within]
    return li.astype(np.int64), ri.astype(np.int64), skipped


@dataclass
class Blocks:
    li: np.ndarray  # candidate pairs (union over rules), sorted by (right, left)
    ri: np.ndarray
    per_rule: list[tuple[np.ndarray, np.ndarray]]
    skipped_pairs: int
    levels: np.ndarray | None = None  # comparison levels of (li, ri), once computed


def block(cfg: MatchConfig, prep: Prepared, left: pa.Table, right: pa.Table) -> Blocks:
    """Candidate pairs: the union over blocking rules of pairs that agree on the rule's key."""
    per_rule = []
    skipped = 0
    for rule in cfg.blocking:
        lc, rc = _rule_codes(rule, prep, left, right)
        li, ri, sk = _join_codes(lc, rc, cfg.max_block_pairs)
        per_rule.append((li, ri))
        skipped += sk
    # each rule's pairs come sorted by (right, left) and unique, so the union is a merge
    keys = np.concatenate([ri * prep.n_left + li for li, ri in per_rule] or [np.zeros(0, np.int64)])
    if len(per_rule) > 1 and len(keys):
        keys.sort(kind="stable")  # timsort: linear on the sorted runs
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return Blocks(keys % max(prep.n_left, 1), keys // max(prep.n_left, 1), per_rule, skipped)


# --- comparison and the Fellegi–Sunter model --------------------------------------------------


def comparison_levels(cfg: MatchConfig, prep: Prepared, li, ri) -> np.ndarray:
    """Comparison vectors: an int8 matrix (pairs × fields) of levels, -1 where a value is null."""
    out = np.empty((len(li), len(cfg.fields)), dtype=np.int8)
    for j, f in enumerate(cfg.fields):
        if f.method in ("jaro_winkler", "levenshtein"):
            a, b = prep.strings[f.name]
            out[:, j] = string_levels(a, b, li, ri, f.method, f.thresholds)[1]
        elif f.method == "exact":
            a, b = prep.codes[f.name]
            out[:, j] = exact_levels(a, b, li, ri)
        else:
            out[:, j] = date_levels(prep.left[f.name], prep.right[f.name], li, ri)
    return out


@dataclass
class Model:
    """m and u per field and level (index = level), and the prior of a random pair matching."""

    fields: tuple[str, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    notes: list[str] = field(default_factory=list)

    def weights(self) -> list[np.ndarray]:
        return [np.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def to_dict(self) -> dict:
        return {
            "prior": self.prior,
            "fields": {
                name: {"m": m.round(6).tolist(), "u": u.round(6).tolist(),
                       "weight": np.log2(m / u).round(4).tolist()}
                for name, m, u in zip(self.fields, self.m, self.u, strict=True)
            },
            "notes": list(self.notes),
        }


_FLOOR = 1e-6


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, _FLOOR)
    return p / p.sum()


def _initial_m(n: int) -> np.ndarray:
    return _normalise(4.0 ** np.arange(n))


def _patterns(levels: np.ndarray):
    """Unique comparison vectors and their counts."""
    if len(levels) == 0:
        return levels, np.zeros(0, np.int64)
    if levels.shape[1] <= 15:
        code = np.zeros(len(levels), np.int64)
        for j in range(levels.shape[1]):
            code = code * 16 + (levels[:, j].astype(np.int64) + 1)
        uniq, first, counts = np.unique(code, return_index=True, return_counts=True)
        return levels[first], counts
    uniq, counts = np.unique(levels, axis=0, return_counts=True)
    return uniq, counts


def _log_probs(pat: np.ndarray, probs: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(pat))
    for j, p in enumerate(probs):
        lv = pat[:, j].astype(np.int64)
        total += np.where(lv >= 0, np.log(p[np.maximum(lv, 0)]), 0.0)
    return total


def _em(levels, m, u, free_m, lam, max_iter, tol):
    """EM over comparison vectors (splink's expectation–maximisation, on unique patterns).

    Updates m of the ``free_m`` fields, u of every field and the match share ``lam``. u here
    describes the non-matches *among the candidates* (blocking makes them agree more often than
    random pairs); the caller scores with the u of random pairs.
    """
    pat, counts = _patterns(levels)
    if len(pat) == 0:
        return m, u, lam, 0
    counts = counts.astype(np.float64)
    m = [x.copy() for x in m]
    u = [x.copy() for x in u]
    it = 0
    while it < max_iter:
        it += 1
        lm = math.log(lam) + _log_probs(pat, m)
        lu = math.log(1 - lam) + _log_probs(pat, u)
        g = 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))  # P(match | pattern)
        wm, wu = counts * g, counts * (1.0 - g)
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_lam - lam)
        for j in range(pat.shape[1]):
            lv = pat[:, j].astype(np.int64)
            ok = lv >= 0
            for probs, weights, update in ((m, wm, j in free_m), (u, wu, True)):
                if not update:
                    continue
                num = np.bincount(lv[ok], weights=weights[ok], minlength=len(probs[j]))
                if num.sum() > 0:
                    new = _normalise(num / num.sum())
                    change = max(change, float(np.abs(new - probs[j]).max()))
                    probs[j] = new
        lam = new_lam
        if change < tol:
            break
    return m, u, lam, it


MIN_KEY_PAIRS = 30


def _m_from_pairs(levels: np.ndarray, fields, m0):
    m = []
    for j, f in enumerate(fields):
        if f.m is not None:
            m.append(m0[j])
            continue
        lv = levels[:, j]
        counts = np.bincount(lv[lv >= 0].astype(np.int64), minlength=f.n_levels)
        m.append(_normalise((counts + 0.5) / (counts.sum() + 0.5 * f.n_levels)))
    return m


def estimate_model(cfg: MatchConfig, prep: Prepared, blocks: Blocks,
                   key_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> Model:
    """u from random pairs; m from the pairs linked by key, or by EM over the candidates.

    With ``m_from: keys`` (or ``auto`` and at least ``MIN_KEY_PAIRS`` key pairs) m is the level
    distribution of the pairs whose keys agree — labelled data, as splink's
    ``estimate_m_from_label_column`` — re-estimated once without the key pairs the first model
    rejects (keys typed wrongly). Otherwise EM:

    As in splink, u comes from random pairs, which are almost all non-matches. m comes from
    EM over the union of the blocking rules' candidates, where matches are frequent; EM also
    fits a u for the non-matching candidates, so that agreement caused by blocking is not
    mistaken for evidence of a match. Scores use m from EM and u from random pairs.
    """
    rng = np.random.default_rng(cfg.seed)
    names = tuple(f.name for f in cfg.fields)
    notes: list[str] = []
    n_u = cfg.u_random_pairs if prep.n_left and prep.n_right else 0
    rand_levels = None
    if n_u and any(f.u is None for f in cfg.fields):
        li = rng.integers(0, prep.n_left, n_u, dtype=np.int64)
        ri = rng.integers(0, prep.n_right, n_u, dtype=np.int64)
        rand_levels = comparison_levels(cfg, prep, li, ri)
    u = []
    for j, f in enumerate(cfg.fields):
        if f.u is not None:
            u.append(np.array(f.u))
        elif rand_levels is not None:
            lv = rand_levels[:, j]
            counts = np.bincount(lv[lv >= 0].astype(np.int64), minlength=f.n_levels)
            u.append(_normalise((counts + 0.5) / (counts.sum() + 0.5 * f.n_levels)))
        else:
            u.append(_normalise(4.0 ** -np.arange(f.n_levels)))
            notes.append(f"{f.name}: no random pairs, default u")
    m0 = [np.array(f.m) if f.m is not None else _initial_m(f.n_levels) for f in cfg.fields]
    expected = cfg.expected_match_rate * min(prep.n_left, prep.n_right)
    pairs_total = max(prep.n_left * prep.n_right, 1)
    prior = float(np.clip(expected / pairs_total, 1e-12, 0.5))
    if not cfg.em or all(f.m is not None for f in cfg.fields):
        return Model(names, m0, u, prior, notes)
    n_key = 0 if key_pairs is None else len(key_pairs[0])
    if cfg.m_from == "keys" or (cfg.m_from == "auto" and n_key >= MIN_KEY_PAIRS):
        if n_key == 0:
            notes.append("no pairs linked by key: m not estimated (default)")
            return Model(names, m0, u, prior, notes)
        levels = comparison_levels(cfg, prep, *key_pairs)
        model = Model(names, _m_from_pairs(levels, cfg.fields, m0), u, prior, notes)
        score, _ = _score(model, levels)
        keep = score >= _logit2(cfg.possible_probability)
        model.m = _m_from_pairs(levels[keep], cfg.fields, m0)
        notes.append(f"m from {int(keep.sum())} of {n_key} pairs linked by key")
        return model
    li, ri, levels = blocks.li, blocks.ri, blocks.levels
    if len(li) == 0:
        notes.append("no candidate pairs: m not estimated (default)")
        return Model(names, m0, u, prior, notes)
    if len(li) > cfg.em_max_pairs:
        pick = np.sort(rng.choice(len(li), cfg.em_max_pairs, replace=False))
        li, ri = li[pick], ri[pick]
        levels = None if levels is None else levels[pick]
    free = [j for j, f in enumerate(cfg.fields) if f.m is None]
    if levels is None:
        levels = comparison_levels(cfg, prep, li, ri)
    lam0 = float(np.clip(min(prep.n_left, prep.n_right) / len(li), 1e-6, 0.5))
    m, _, lam, it = _em(levels, m0, u, free, lam0, cfg.max_iterations, cfg.tolerance)
    notes.append(f"EM: {len(li)} candidate pairs, {it} iterations, match share {lam:.4f}")
    return Model(names, m, u, prior, notes)


# --- linking ---------------------------------------------------------------------------------


@dataclass
class MatchResult:
    links: pa.Table
    review: pa.Table
    unmatched: pa.Table
    counts: dict
    model: Model


def _field_weights(model: Model, levels: np.ndarray) -> np.ndarray:
    """Per pair and field, the weight log2(m/u) of its level (0 for a null)."""
    per_field = np.zeros(levels.shape, dtype=np.float64)
    for j, wj in enumerate(model.weights()):
        table = np.append(wj, 0.0)  # index -1 (null) reads the appended 0
        per_field[:, j] = table[levels[:, j]]
    return per_field


def _score(model: Model, levels: np.ndarray):
    """Match weight of each pair: log2 prior odds + the sum of the field weights."""
    total = np.full(len(levels), model.prior_weight)
    for j, wj in enumerate(model.weights()):
        total += np.append(wj, 0.0)[levels[:, j]]
    return total, None


def _logit2(p: float) -> float:
    return math.log2(p / (1.0 - p))


def _ids(table: pa.Table, column: str | None, rows: np.ndarray, side: str) -> pa.Array:
    if column is None:
        return pa.array(rows, pa.int64())
    return _column(table, column, side).take(pa.array(rows, pa.int64()))


def _best_per_run(ri: np.ndarray, score: np.ndarray):
    """For each run of equal ``ri`` (sorted): index of the best score (first on ties), the run's
    right row, the best score and the runner-up score (-inf when the run has one pair)."""
    if len(ri) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.concatenate([[True], ri[1:] != ri[:-1]]))
    run = np.cumsum(np.concatenate([[False], ri[1:] != ri[:-1]]))
    top = np.maximum.reduceat(score, starts)
    idx = np.arange(len(ri))
    best = np.minimum.reduceat(np.where(score == top[run], idx, len(ri)), starts)
    rest = score.copy()
    rest[best] = -np.inf
    runner = np.maximum.reduceat(rest, starts)
    return best, ri[starts], top, runner


def key_pairs(cfg: MatchConfig, left: pa.Table, right: pa.Table):
    """Pairs whose keys agree: right rows whose key names exactly one left row.

    Returns ``(left rows, right rows, number of right keys naming several left rows)``.
    """
    key_l = np.zeros(0, np.int64)
    key_r = np.zeros(0, np.int64)
    key_ambiguous = 0
    if cfg.left_key is not None:
        lk, rk = exact_codes(_blank_to_null(_column(left, cfg.left_key, "left")),
                             _blank_to_null(_column(right, cfg.right_key, "right")))
        k = int(max(lk.max(initial=-1), rk.max(initial=-1))) + 1
        count_l = np.bincount(lk[lk >= 0], minlength=k)
        row_of = np.full(k, -1, np.int64)
        row_of[lk[lk >= 0]] = np.nonzero(lk >= 0)[0]
        has = rk >= 0
        unique = has & (count_l[np.maximum(rk, 0)] == 1)
        key_ambiguous = int((has & (count_l[np.maximum(rk, 0)] > 1)).sum())
        key_r = np.nonzero(unique)[0].astype(np.int64)
        key_l = row_of[rk[key_r]]
    return key_l, key_r, key_ambiguous


def link(cfg: MatchConfig, left: pa.Table, right: pa.Table,
         variants: dict[int, int] | None = None, model: Model | None = None) -> MatchResult:
    """Link each right record to at most one left record (see the module docstring)."""
    prep = prepare(cfg, left, right, variants)
    blocks = block(cfg, prep, left, right)
    # 1. exact key linkage (pairs whose keys agree), checked by the model below
    key_l, key_r, key_ambiguous = key_pairs(cfg, left, right)
    if len(key_r) == 0:  # every candidate is scored below: compare them once
        blocks.levels = comparison_levels(cfg, prep, blocks.li, blocks.ri)
    if model is None:
        model = estimate_model(cfg, prep, blocks, (key_l, key_r))
    w_match = _logit2(cfg.match_probability)
    w_possible = _logit2(cfg.possible_probability)
    n_r = prep.n_right

    key_levels = comparison_levels(cfg, prep, key_l, key_r)
    key_score, _ = _score(model, key_levels)
    ok = key_score >= w_possible
    key_rejected = int((~ok).sum())
    key_l, key_r, key_levels, key_score = key_l[ok], key_r[ok], key_levels[ok], key_score[ok]
    resolved = np.zeros(n_r, bool)
    resolved[key_r] = True

    # 2. fuzzy linkage for the rest: best candidate per right record
    keep = ~resolved[blocks.ri]
    li, ri = blocks.li[keep], blocks.ri[keep]
    if blocks.levels is not None:
        levels = blocks.levels[keep]
    else:
        levels = comparison_levels(cfg, prep, li, ri)
    score, _ = _score(model, levels)
    # Pairs are sorted by (right, left): per right record (a run), the best score (ties: the
    # lowest left row) and the runner-up, by segment reductions instead of a sort.
    best, group_r, top, runner = _best_per_run(ri, score)
    keep_best = top >= w_possible
    best, b_top, b_runner = best[keep_best], top[keep_best], runner[keep_best]
    b_li, b_ri, b_lv, b_sc = li[best], ri[best], levels[best], b_top
    ambiguous = (b_sc >= w_match) & (b_runner >= w_match)

    # codes: method 0 key / 1 fuzzy; decision 0 match / 1 possible
    decision_fuzzy = np.where((b_sc >= w_match) & ~ambiguous, 0, 1).astype(np.int8)
    all_l = np.concatenate([key_l, b_li])
    all_r = np.concatenate([key_r, b_ri])
    all_lv = np.concatenate([key_levels, b_lv])
    all_sc = np.concatenate([key_score, b_sc])
    method = np.concatenate([np.zeros(len(key_r), np.int8), np.ones(len(b_ri), np.int8)])
    decision = np.concatenate([np.zeros(len(key_r), np.int8), decision_fuzzy])
    amb = np.concatenate([np.zeros(len(key_r), bool), ambiguous])
    order = np.argsort(all_r, kind="stable")
    all_fw = _field_weights(model, all_lv[order])
    cols = {
        "right_row": pa.array(all_r[order], pa.int64()),
        "left_row": pa.array(all_l[order], pa.int64()),
        "right_id": _ids(right, cfg.right_id, all_r[order], "right"),
        "left_id": _ids(left, cfg.left_id, all_l[order], "left"),
        "method": pa.DictionaryArray.from_arrays(method[order], pa.array(["key", "fuzzy"])),
        "decision": pa.DictionaryArray.from_arrays(decision[order],
                                                   pa.array(["match", "possible"])),
        "ambiguous": pa.array(amb[order]),
        "score": pa.array(all_sc[order], pa.float64()),
        "probability": pa.array(1.0 / (1.0 + np.exp2(-np.clip(all_sc[order], -1000, 1000)))),
    }
    for j, f in enumerate(cfg.fields):
        lv = all_lv[order, j]
        cols[f"level_{f.name}"] = pa.array(lv, pa.int8(), mask=lv == LEVEL_NULL)
        cols[f"weight_{f.name}"] = pa.array(all_fw[:, j], pa.float64())
    links = pa.table(cols)
    links = links.replace_schema_metadata({"ikou.match.name": cfg.name})
    review = links.filter(pc.equal(links["decision"].combine_chunks().dictionary_decode(),
                                   "possible"))
    linked = np.zeros(n_r, bool)
    linked[all_r] = True
    un_rows = np.nonzero(~linked)[0].astype(np.int64)
    best_any = np.full(n_r, np.nan)
    best_any[group_r] = top
    unmatched = pa.table({
        "right_row": pa.array(un_rows, pa.int64()),
        "right_id": _ids(right, cfg.right_id, un_rows, "right"),
        "best_score": pa.array(best_any[un_rows], pa.float64(), mask=np.isnan(best_any[un_rows])),
    })
    n_match = int((decision == 0).sum())
    counts = {
        "left_records": prep.n_left,
        "right_records": n_r,
        "key_links": int(len(key_r)),
        "key_rejected": key_rejected,
        "key_ambiguous": key_ambiguous,
        "candidate_pairs": int(len(blocks.ri)),
        "skipped_block_pairs": blocks.skipped_pairs,
        "match": n_match,
        "possible": int(len(decision) - n_match),
        "ambiguous": int(ambiguous.sum()),
        "unmatched": int(len(un_rows)),
    }
    return MatchResult(links, review, unmatched, counts, model)


def write_outputs(result: MatchResult, folder: str | Path) -> dict:
    """Write ``links.arrow``, ``review.arrow`` and ``unmatched.arrow`` (Arrow IPC files) into
    ``folder``; returns a summary for a manifest (counts, model, file names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in (("links", result.links), ("review", result.review),
                        ("unmatched", result.unmatched)):
        path = folder / f"{name}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        files[name] = {"file": path.name, "rows": table.num_rows}
    return {"counts": dict(result.counts), "model": result.model.to_dict(), "files": files}


def read_inputs(cfg: MatchConfig, base: str | Path = ".") -> tuple[pa.Table, pa.Table]:
    """Read the two inputs named by ``path`` in the config (Arrow IPC files)."""
    out = []
    for side, path in (("left", cfg.left_path), ("right", cfg.right_path)):
        if path is None:
            raise MatchConfigError(f"the configuration names no {side} path")
        full = Path(base) / path
        try:
            with pa.memory_map(str(full)) as source:
                out.append(pa.ipc.open_file(source).read_all())
        except FileNotFoundError:
            raise MatchConfigError(f"{full}: file not found") from None
    return out[0], out[1]

