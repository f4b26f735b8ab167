"""Job files: one YAML file describes a whole migration (see docs/jobs.md).

::

    name: wakaba-2025                 # optional label (manifest, summary)
    gaiji: gaiji.csv                  # the municipality's 外字 table (optional)
    sources:                          # legacy exports
      - {name: juki, layout: juki.layout.yaml, inputs: [juki.dat]}
      - {name: zei,  layout: zei.layout.yaml,  inputs: [zei.dat]}
      - {name: jutogai, layout: jutogai.layout.yaml, inputs: [jutogai.dat]}
    targets:                          # standard files: definition, mapping, which source
      - {standard: juki, mapping: juki.mapping.yaml, source: juki}
      - {standard: kojin_juminzei, mapping: zei.mapping.yaml, source: zei}
    references:                       # sources used only as key references (cross-file rule)
      - {source: jutogai}
    outputs: out                      # output folder
    gates: fail                       # fail (default) | warn
    block_size: 8388608               # optional, bytes per block

Paths are relative to the job file. :func:`load_job` checks everything it can before a run
starts — sources, layouts, the 外字 table, mappings against their source layouts, that every
input exists — and raises :class:`JobError` (a ``ValueError``) naming the job file and line, or
the layout / mapping file and line where the mistake is.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ikou.pipeline.config.gaiji import load_gaiji
from ikou.pipeline.config.inputs import Url, input_problem
from ikou.pipeline.config.layout import Layout, LayoutError, load_layout
from ikou.pipeline.config.mapping import Mapping, MappingError, load_mapping
from ikou.pipeline.config.standard import Standard, StandardError, load_standard
from ikou.pipeline.config.yamlio import ConfigError, LineDict, load_yaml, where
from ikou.transforms import fileio

__all__ = ["GATE_MODES", "Job", "JobError", "Reference", "Source", "Target", "load_job"]

GATE_MODES = ("fail", "warn")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP = {"name", "gaiji", "gaiji_fallback", "sources", "targets", "references", "outputs",
        "gates", "block_size", "matching", "file_mode", "folder_mode"}
_SOURCE = {"name", "layout", "inputs", "label"}
_TARGET = {"standard", "mapping", "source"}
_REFERENCE = {"source"}
#: The column a reference source must have (the key of the cross-file rule).
REFERENCE_KEY = "atena_no"


class JobError(ConfigError):
    """A job file is invalid (message names the file and line)."""


@dataclass(frozen=True)
class Source:
    name: str
    layout: Layout
    layout_path: Path
    inputs: tuple[Path, ...]
    line: int = 0


@dataclass(frozen=True)
class Target:
    standard: Standard
    mapping: Mapping
    mapping_path: Path
    source: str
    line: int = 0

    @property
    def name(self) -> str:
        """The output name (``juki`` → ``juki.arrow``) and the suite name."""
        return self.standard.name


@dataclass(frozen=True)
class Reference:
    source: str
    line: int = 0


@dataclass(frozen=True)
class Job:
    path: Path
    name: str
    gaiji_path: Path | None
    gaiji: dict
    sources: dict[str, Source]
    targets: tuple[Target, ...]
    references: tuple[Reference, ...]
    outputs: Path | None
    gates: str = "fail"
    block_size: int | None = None
    matching: tuple = ()          # ikou.pipeline.steps.matching.MatchEntry per matched target
    gaiji_fallback: bool = False  # write the 外字 table's fallback characters
    #: Sources published as decoded, every row kind of their layout as ``<layout>[.<kind>].arrow``
    #: (no mapping, no gates): the single-layout run ``ikou run --layout`` is such a job.
    decoded: tuple[str, ...] = ()
    #: Permissions of published files and reports (owner only unless the job says otherwise).
    file_mode: int = 0o600
    folder_mode: int = 0o700

    @property
    def inputs(self) -> list[tuple[str, Path]]:
        """(source name, path) of every input, in job order (the global input indexes)."""
        return [(s.name, p) for s in self.sources.values() for p in s.inputs]


def _err(path, node, msg) -> JobError:
    return JobError(f"{where(path, node)}: {msg}")


def _keys(path, node, allowed: set, required: set, what: str) -> None:
    if not isinstance(node, dict):
        raise _err(path, node, f"{what} must be a mapping")
    unknown = sorted(map(str, set(node) - allowed))
    if unknown:
        raise _err(path, node, f"{what}: unknown keys: {', '.join(unknown)} "
                               f"(allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(node))
    if missing:
        raise _err(path, node, f"{what}: missing {', '.join(missing)}")


def _list(path, parent, key) -> list:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(path, parent, f"'{key}' must be a list")
    return value


def _file(base: Path, path, node, value, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(path, node, f"{what} must be a file path")
    if fileio.is_url(value):
        return Url(value)
    p = Path(value)
    return p if p.is_absolute() else base / p


def _inputs(base: Path, path, node, value, what: str) -> tuple[Path, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _err(path, node, f"{what}: 'inputs' must be a file path or a non-empty list")
    out: list[Path] = []
    for v in items:
        p = _file(base, path, node, v, f"{what}: an input")
        if any(ch in str(v) for ch in "*?["):
            hits = ([Url(h) for h, _ in fileio.match(str(p))] if fileio.is_url(p)
                    else sorted(glob.glob(str(p))))
            if not hits:
                raise _err(path, node, f"{what}: no input matches {v!r}")
            for h in hits:
                problem = input_problem(h)
                if problem:
                    raise _err(path, node, f"{what}: {problem}")
            out.extend(h if isinstance(h, Url) else Path(h) for h in hits)
            continue
        problem = input_problem(p)
        if problem:
            raise _err(path, node, f"{what}: {problem}")
        out.append(p)
    if len(set(out)) != len(out):
        raise _err(path, node, f"{what}: an input is listed twice")
    return tuple(out)


def load_job(path: str | os.PathLike) -> Job:
    """Load and check a job file (see the module docstring)."""
    path = Path(path)
    doc = load_yaml(path, JobError)
    base = path.parent
    if not isinstance(doc, LineDict):
        raise _err(path, doc, "a job file must be a mapping with 'sources' and 'targets'")
    _keys(path, doc, _TOP, {"sources", "targets"}, "job")
    name = doc.get("name", path.stem)
    if not isinstance(name, str):
        raise _err(path, doc, "'name' must be a string")
    gates = doc.get("gates", "fail")
    if gates not in GATE_MODES:
        raise _err(path, doc, f"'gates' must be one of {', '.join(GATE_MODES)}, got {gates!r}")
    block_size = doc.get("block_size")
    if block_size is not None and (not isinstance(block_size, int) or isinstance(
            block_size, bool) or block_size <= 0):
        raise _err(path, doc, f"'block_size' must be a positive integer, got {block_size!r}")
    modes = {key: _mode(path, doc, key, default)
             for key, default in (("file_mode", 0o600), ("folder_mode", 0o700))}
    outputs = doc.get("outputs")
    outputs = _file(base, path, doc, outputs, "'outputs'") if outputs is not None else None

    gaiji_path, gaiji = None, {}
    if doc.get("gaiji") is not None:
        gaiji_path = _file(base, path, doc, doc["gaiji"], "'gaiji'")
        gaiji = load_gaiji(gaiji_path)  # GaijiError names the CSV file and line
    gaiji_fallback = doc.get("gaiji_fallback", False)
    if not isinstance(gaiji_fallback, bool):
        raise _err(path, doc, f"'gaiji_fallback' must be true or false, got {gaiji_fallback!r}")

    sources: dict[str, Source] = {}
    seen_inputs: dict[Path, str] = {}
    src_nodes = _list(path, doc, "sources")
    if not src_nodes:
        raise _err(path, doc, "'sources' must list at least one legacy export")
    for node in src_nodes:
        _keys(path, node, _SOURCE, {"name", "layout", "inputs"}, "a source")
        sname = node["name"]
        if not isinstance(sname, str) or not _NAME.match(sname):
            raise _err(path, node, f"source name {sname!r} must be lower-case ASCII "
                                   "([a-z][a-z0-9_]*)")
        if sname in sources:
            raise _err(path, node, f"source {sname!r} is defined twice (also on line "
                                   f"{sources[sname].line})")
        what = f"source {sname!r}"
        lpath = _file(base, path, node, node["layout"], f"{what}: 'layout'")
        if not lpath.exists():
            raise _err(path, node, f"{what}: layout not found: {lpath}")
        try:
            layout = load_layout(lpath)
        except LayoutError as exc:
            raise JobError(f"{where(path, node)}: {what}: {exc}") from None
        row_kinds = [k for k in layout.kinds if k not in ("header", "trailer")]
        if row_kinds != ["data"]:
            raise _err(path, node, f"{what}: a job source needs exactly one row kind, 'data' "
                                   f"(layout has {', '.join(row_kinds) or 'none'})")
        inputs = _inputs(base, path, node, node["inputs"], what)
        for p in inputs:
            if p.resolve() in seen_inputs:
                raise _err(path, node, f"{what}: input {p} is also an input of source "
                                       f"{seen_inputs[p.resolve()]!r}")
            seen_inputs[p.resolve()] = sname
        sources[sname] = Source(sname, layout, lpath, inputs, node.line)

    used: dict[str, str] = {}
    targets: list[Target] = []
    tgt_nodes = _list(path, doc, "targets")
    if not tgt_nodes:
        raise _err(path, doc, "'targets' must list at least one standard file")
    for node in tgt_nodes:
        _keys(path, node, _TARGET, _TARGET, "a target")
        src = node["source"]
        if src not in sources:
            raise _err(path, node, f"target: unknown source {src!r} (sources: "
                                   f"{', '.join(sources)})")
        if src in used:
            raise _err(path, node, f"target: source {src!r} is already used by {used[src]}")
        std_arg = node["standard"]
        if not isinstance(std_arg, str) or not std_arg:
            raise _err(path, node, "target: 'standard' must name a standard definition")
        std_ref = (_file(base, path, node, std_arg, "'standard'")
                   if std_arg.endswith((".yaml", ".yml")) else std_arg)
        try:
            standard = load_standard(std_ref)
        except StandardError as exc:
            raise _err(path, node, f"target {std_arg!r}: {exc}") from None
        mpath = _file(base, path, node, node["mapping"], f"target {std_arg!r}: 'mapping'")
        if not mpath.exists():
            raise _err(path, node, f"target {std_arg!r}: mapping not found: {mpath}")
        try:
            mapping = load_mapping(mpath, sources[src].layout)
        except MappingError as exc:
            raise JobError(f"{where(path, node)}: target {std_arg!r}: {exc}") from None
        if mapping.standard.name != standard.name:
            raise _err(path, node, f"target {std_arg!r}: mapping {mpath.name} fills "
                                   f"{mapping.standard.name!r}, not {standard.name!r}")
        if any(t.name == standard.name for t in targets):
            raise _err(path, node, f"target {standard.name!r} is listed twice")
        used[src] = f"target {standard.name!r}"
        targets.append(Target(standard, mapping, mpath, src, node.line))

    references: list[Reference] = []
    for node in _list(path, doc, "references"):
        if isinstance(node, str):
            node = LineDict(source=node)
            node.line = doc.line
        _keys(path, node, _REFERENCE, _REFERENCE, "a reference")
        src = node["source"]
        if src not in sources:
            raise _err(path, node, f"reference: unknown source {src!r}")
        if src in used:
            raise _err(path, node, f"reference: source {src!r} is already used by {used[src]}")
        if REFERENCE_KEY not in sources[src].layout.arrow_schema("data").names:
            raise _err(path, node, f"reference: source {src!r} has no field {REFERENCE_KEY!r} "
                                   "(the key of the cross-file rule)")
        if any(t.name == src for t in targets):
            raise _err(path, node, f"reference: source name {src!r} clashes with a target")
        used[src] = "a reference"
        references.append(Reference(src, getattr(node, "line", 0)))
    unused = [s for s in sources if s not in used]
    if unused:
        n = sources[unused[0]].line
        raise JobError(f"{path}:{n}: source {unused[0]!r} is neither a target's source nor a "
                       "reference")
    from ikou.pipeline.steps.matching import parse_matching  # record matching (名寄せ)

    matching = parse_matching(path, doc, path.parent, targets, sources, references,
                              lambda node, msg: _err(path, node, msg))
    return Job(path=path, name=name, gaiji_path=gaiji_path, gaiji=gaiji, sources=sources,
               targets=tuple(targets), references=tuple(references), outputs=outputs,
               gates=gates, block_size=block_size, matching=matching,
               gaiji_fallback=gaiji_fallback, **modes)


def _mode(path, doc, key: str, default: int) -> int:
    """An octal permission (``"0640"`` or YAML's ``0640``) that leaves the owner able to read."""
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        value = int(value, 8)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o777 \
            or not value & 0o400 or (key == "folder_mode" and not value & 0o300 == 0o300):
        raise _err(path, doc, f"'{key}' must be an octal permission the owner can use, such as "
                              f"{'0640' if key == 'file_mode' else '0750'}, got {value!r}")
    return value


# -- the generator's job set ------------------------------------------------------------------

#: Mapping files for the synthetic municipality's exports (package data).
DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"
#: Generated source → (standard definition, mapping file); ``jutogai`` is a reference.
DEMO_TARGETS = {
    "juki": ("juki", "juki.mapping.yaml"),
    "zei": ("kojin_juminzei", "zei.mapping.yaml"),
    "kokuho_setai": ("kokuho_setai", "kokuho_setai.mapping.yaml"),
    "kokuho_hihokensha": ("kokuho_kojin", "kokuho_hihokensha.mapping.yaml"),
}
DEMO_REFERENCES = ("jutogai",)
#: Sources whose target is matched against the residents (config ``<source>.match.yaml``).
DEMO_MATCHING = ("zei", "kokuho_setai", "kokuho_hihokensha")
JOB_FILE = "job.yaml"


def write_demo_job(folder: str | os.PathLike, sources, gaiji: str | None = "gaiji.csv",
                   outputs: str = "out", gates: str = "fail") -> Path:
    """Write the mapping files and ``job.yaml`` for a generated municipality in ``folder``.

    ``sources``: the generated exports (names → objects with ``export`` and ``layout`` paths,
    e.g. ``GeneratedSet.sources``). Returns the job file's path."""
    folder = Path(folder)
    lines = ["# A migration job for the synthetic municipality (written by ikou generate).",
             "# Run it with: ikou run job.yaml [--out DIR] [--gates fail|warn]",
             "# Format: docs/jobs.md",
             f"name: {folder.resolve().name or 'municipality'}"]
    if gaiji:
        lines.append(f"gaiji: {gaiji}")
    lines.append("sources:")
    for name in list(DEMO_TARGETS) + list(DEMO_REFERENCES):
        s = sources.get(name)
        if s is None:
            continue
        lines.append(f"  - {{name: {name}, layout: {Path(s.layout).name}, "
                     f"inputs: [{Path(s.export).name}]}}")
    lines.append("targets:")
    for name, (standard, mapping) in DEMO_TARGETS.items():
        if name not in sources:
            continue
        (folder / mapping).write_text((DEMO_DIR / mapping).read_text(encoding="utf-8"),
                                      encoding="utf-8")
        lines.append(f"  - {{standard: {standard}, mapping: {mapping}, source: {name}}}")
    refs = [r for r in DEMO_REFERENCES if r in sources]
    if refs:
        lines.append("references:")
        lines += [f"  - {{source: {r}}}" for r in refs]
    matched = [n for n in DEMO_MATCHING if n in sources] if "juki" in sources else []
    if matched:  # record matching (名寄せ): resolve missing or mistyped 宛名番号
        lines.append("matching:")
        for name in matched:
            config = f"{name}.match.yaml"
            (folder / config).write_text((DEMO_DIR / config).read_text(encoding="utf-8"),
                                         encoding="utf-8")
            lines.append(f"  - {{target: {DEMO_TARGETS[name][0]}, config: {config}}}")
    lines += [f"outputs: {outputs}", f"gates: {gates}"]
    path = folder / JOB_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job_for_layout(layout: Layout, gaiji: dict, inputs: Sequence[str | os.PathLike],
                   out_dir: str | os.PathLike, gaiji_fallback: bool = False,
                   block_size: int | None = None,
                   gaiji_path: str | os.PathLike | None = None) -> Job:
    """The one-source job of ``ikou run --layout``: the files of one layout, decoded, reconciled
    and published like any job (atomically, as ``OUT/current``), without mapping or gates."""
    paths = []
    for path in inputs:
        problem = input_problem(path)
        if problem:
            raise JobError(problem)
        paths.append(Path(os.fspath(path)).absolute())
    if not paths:
        raise JobError("no input files given")
    source = Source(layout.name, layout, Path(layout.path or layout.name), tuple(paths))
    return Job(path=Path(layout.path or layout.name), name=layout.name,
               gaiji_path=Path(gaiji_path) if gaiji_path else None, gaiji=dict(gaiji),
               sources={source.name: source}, targets=(), references=(),
               outputs=Path(out_dir), gates="fail", block_size=block_size,
               gaiji_fallback=gaiji_fallback, decoded=(source.name,))
