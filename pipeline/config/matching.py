"""Record matching (名寄せ): link the records of one Arrow table to those of another.

Pure functions over Arrow tables, so a Beam transform or the CLI can wrap them (the engine lives
in :mod:`ikou.transforms.match.engine`, below the Beam transforms of :mod:`ikou.transforms.match.beam`;
this module loads the configuration and the variant tables and re-exports the engine):

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
    thresholds: {match: 0.99, possible: 0.5, margin: 5}   # probabilities; margin in bits
    estimation: {m_from: auto, u_random_pairs: 200000, seed: 0, max_block_pairs: 10000}
    surnames: default                               # list splitting unspaced names (part:)

Household options of a field (docs/architecture.md §6.1): ``part: surname|given`` (compare that
part of a name: split at the space, else as the other name of the pair, else by the
surname list), ``date_levels: fine`` (six
levels: same, swapped, one digit, same year and month, within a year, else), ``tf: true``
(term-frequency adjustment of the exact level from the left side, ``tf_minimum``),
``required: true`` (a ``match`` needs a level of positive weight on this field: a
disagreement, however weak, is never outweighed by the other fields; a missing value is no
evidence either way; ``required: strict``: a missing value keeps the link at ``possible`` too),
``remove: REGEX`` (removed from both sides
first, e.g. the prefecture a tax file omits).

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
   probability thresholds give ``match``/``possible``; a ``match`` whose runner-up's weight is
   within ``margin`` bits is downgraded to ``possible`` (ambiguous); each link names its
   runner-up and the gap. ``one_to_one: true`` (one right record per left record, as one tax
   record per resident and year): fuzzy ``match`` links to a left record that another
   ``match`` also takes, not ``margin`` bits ahead of it, are ``possible`` too.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pyarrow as pa

from ikou.kernels._match_common import check_thresholds
from ikou.kernels.normalize import (
    MatchConfigError,
    NormalizeOptions,
    VariantTableError,
    load_variant_table,
)
from ikou.transforms import arrowio
from ikou.transforms.match import engine as linkage
from ikou.transforms.match.engine import (  # the engine; re-exported for callers of this module
    Blocks,
    FieldSpec,
    KeyPart,
    MatchConfig,
    MatchResult,
    Model,
    Prepared,
    _best_per_run,  # noqa: F401 (tests)
    block,
    comparison_levels,
    estimate_model,
    key_pairs,
    write_outputs,
)

from .yamlio import ConfigError, load_yaml, where

__all__ = [
    "DEFAULT_VARIANT_DIR",
    "Blocks",
    "FieldSpec",
    "KeyPart",
    "MatchConfig",
    "MatchConfigFileError",
    "MatchResult",
    "Model",
    "Prepared",
    "VariantTableError",
    "block",
    "comparison_levels",
    "config_from_mapping",
    "load_surnames",
    "estimate_model",
    "key_pairs",
    "link",
    "load_config",
    "prepare",
    "read_inputs",
    "variant_map",
    "write_outputs",
]

DEFAULT_VARIANT_DIR = Path(__file__).resolve().parents[1] / "data" / "variants"
#: Common surnames with readings (TSV ``kanji``/``reading``): splits names written without a
#: space between 氏 and 名 (fields with ``part``); the file names its source.
DEFAULT_SURNAMES = Path(__file__).resolve().parents[1] / "data" / "match" / "surnames.tsv"
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
                       "m", "u", "date_levels", "part", "tf", "tf_minimum", "required",
                       "remove"},
                source, "a field")
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
    date_detail = node.get("date_levels", "basic")
    if date_detail not in ("basic", "fine") or (method != "date" and "date_levels" in node):
        raise MatchConfigFileError(
            f"{where(source, node)}: field {name}: date_levels is 'basic' or 'fine' (dates only)")
    part = node.get("part")
    if part not in (None, "surname", "given") or (part and method in ("date", "exact")):
        raise MatchConfigFileError(
            f"{where(source, node)}: field {name}: part is 'surname' or 'given' (string fields)")
    tf, required = node.get("tf", False), node.get("required", False)
    if not isinstance(tf, bool):
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: tf is true or false")
    if not isinstance(required, bool) and required != "strict":
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: required is true, "
                                   "false or strict")
    try:
        tf_minimum = float(node.get("tf_minimum", 0.0))
    except (TypeError, ValueError):
        tf_minimum = -1.0
    if not 0.0 <= tf_minimum <= 1.0:
        raise MatchConfigFileError(f"{where(source, node)}: field {name}: tf_minimum in [0, 1]")
    remove = node.get("remove")
    if remove is not None:
        if not isinstance(remove, str) or method == "date":
            raise MatchConfigFileError(f"{where(source, node)}: field {name}: remove is a "
                                       "regular expression (string fields)")
        try:
            re.compile(remove)
        except re.error as exc:
            raise MatchConfigFileError(
                f"{where(source, node)}: field {name}: remove: {exc}") from None
    extra = {"date_levels": date_detail, "part": part, "tf": tf, "tf_minimum": tf_minimum,
             "required": required, "remove": remove}
    spec = FieldSpec(name, str(left), str(right), method, thresholds, options, **extra)
    m = _probabilities(node.get("m"), spec.n_levels, source, node, f"field {name}: m")
    u = _probabilities(node.get("u"), spec.n_levels, source, node, f"field {name}: u")
    return FieldSpec(name, str(left), str(right), method, thresholds, options, m, u, **extra)


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
                       "variants", "surnames"}, source, "the configuration")
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
    _check_keys(th, {"match", "possible", "margin", "one_to_one"}, source, "thresholds")
    one_to_one = th.get("one_to_one", False)
    if not isinstance(one_to_one, bool):
        raise MatchConfigFileError(f"{where(source, th)}: one_to_one is true or false")
    match_p = float(th.get("match", 0.99))
    possible_p = float(th.get("possible", 0.5))
    margin = th.get("margin", 5.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise MatchConfigFileError(f"{where(source, th)}: margin is a number of bits >= 0")
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
    surnames: tuple[str, ...] = ()
    if any(f.part is not None for f in fields):
        spec = data.get("surnames", "default")
        path = DEFAULT_SURNAMES if spec == "default" else base / str(spec)
        surnames = load_surnames(path)
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
            margin=float(margin),
            one_to_one=one_to_one,
            surnames=surnames,
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


def load_surnames(path: str | Path) -> tuple[str, ...]:
    """The surnames (kanji and readings) of a TSV with a ``kanji``/``reading`` header ('#'
    lines are comments), in file order, each once."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MatchConfigFileError(f"{path}: cannot read the surname list: {exc}") from None
    rows = [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]
    if not rows or rows[0][:2] != ["kanji", "reading"]:
        raise MatchConfigFileError(f"{path}: the surname list needs the header 'kanji<TAB>reading'")
    out: dict[str, None] = {}
    for n, row in enumerate(rows[1:], 2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise MatchConfigFileError(f"{path}: row {n}: expected a surname and its reading")
        out[row[0].strip()] = None
        out[row[1].strip()] = None
    return tuple(out)


def variant_map(cfg: MatchConfig) -> dict[int, int]:
    """The kanji variant map of the config's ``variants`` (``default`` = the shipped tables)."""
    paths: list[Path] = []
    for v in cfg.variants:
        paths.extend(sorted(DEFAULT_VARIANT_DIR.glob("*.csv")) if v == "default" else [Path(v)])
    return load_variant_table(*paths) if paths else {}


def prepare(cfg: MatchConfig, left: pa.Table, right: pa.Table,
            variants: dict[int, int] | None = None) -> Prepared:
    """Normalise the compared columns of both tables (the variant tables load once here)."""
    return linkage.prepare(cfg, left, right, variant_map(cfg) if variants is None else variants)


def link(cfg: MatchConfig, left: pa.Table, right: pa.Table,
         variants: dict[int, int] | None = None, model: Model | None = None) -> MatchResult:
    """Link each right record to at most one left record, in this process (see the module
    docstring; ``ikou.transforms.match.beam`` runs the same engine on Beam)."""
    return linkage.link(cfg, left, right, variant_map(cfg) if variants is None else variants,
                        model)


def read_inputs(cfg: MatchConfig, base: str | Path = ".") -> tuple[pa.Table, pa.Table]:
    """Read the two inputs named by ``path`` in the config (Arrow IPC files)."""
    out = []
    for side, path in (("left", cfg.left_path), ("right", cfg.right_path)):
        if path is None:
            raise MatchConfigError(f"the configuration names no {side} path")
        full = Path(base) / path
        try:
            out.append(arrowio.read_table(full))
        except FileNotFoundError:
            raise MatchConfigError(f"{full}: file not found") from None
    return out[0], out[1]

