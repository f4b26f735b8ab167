"""YAML loading that remembers line numbers, so configuration errors can name file and line.

Every mapping comes back as a :class:`LineDict` (a ``dict`` with a ``line`` attribute, 1-based)
and every sequence as a :class:`LineList`. Values are otherwise plain YAML (safe loader).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ikou.pipeline.errors import UserError

__all__ = ["ConfigError", "LineDict", "LineList", "load_yaml", "where"]


class ConfigError(UserError):
    """A configuration file is invalid. The message names the file and, where known, the line."""


class LineDict(dict):
    line: int = 0


class LineList(list):
    line: int = 0


# libyaml's parser (PyYAML's C extension, in every wheel PyYAML ships) is several times faster
# than the pure-Python one and gives the same nodes and marks; the constructors below are ours.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):
    pass


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_sequence(loader, node, deep=False):
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: str | Path, error: type[ConfigError] = ConfigError):
    """Load a YAML file; a missing file or a syntax error raises ``error`` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}{line}: invalid YAML: {problem}") from None


def where(path: str | Path, node) -> str:
    """``file:line`` for a node loaded by :func:`load_yaml` (``file`` when the line is unknown)."""
    line = getattr(node, "line", 0)
    return f"{path}:{line}" if line else str(path)
