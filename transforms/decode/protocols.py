"""What the decoding transforms need of the objects the pipeline hands them.

The pipeline parses layouts (``ikou.pipeline.config.layout.Layout``) and builds mappers
(``ikou.pipeline.steps.mapping.MappingStep``); the transforms must not import the pipeline, so
they name only the members they use, as :class:`typing.Protocol` classes. Any object with those
members will do (``runtime_checkable``: ``isinstance`` checks that the members exist, not their
types; the type checker checks the types).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from ikou.kernels import DecodePlan, RecordFormat

__all__ = ["FramingLike", "KindLike", "LayoutLike", "Mapper", "Rejects"]

#: What a mapper could not convert: ``(row index in its input table, [reason dicts])``, each
#: reason with ``field``, ``code``, ``message`` and ``position`` (as the quarantine stores them).
Rejects = Sequence[tuple[int, Sequence[Mapping[str, Any]]]]


@runtime_checkable
class FramingLike(Protocol):
    """How a layout's records are framed (``F`` / ``FB`` fixed, ``V`` / ``VB`` behind RDWs)."""

    @property
    def extra_bytes(self) -> str:
        """``error`` or ``ignore``: what happens to a V / VB record longer than the layout's."""

    def kernel_format(self) -> RecordFormat:
        """The index pass's record format (V / VB only)."""


@runtime_checkable
class KindLike(Protocol):
    """One record kind of a layout."""

    @property
    def code(self) -> bytes | str | None:
        """The record-type code of the kind's records (None: a single-kind layout)."""


@runtime_checkable
class LayoutLike(Protocol):
    """A parsed record layout, as blocks are planned and decoded with it."""

    @property
    def name(self) -> str: ...
    @property
    def record_length(self) -> int: ...
    @property
    def separator(self) -> bytes:
        """Bytes after every record (b"" for none)."""
    @property
    def record_type(self) -> tuple[int, int] | None:
        """``(offset, length)`` of the record-type field; None for a single-kind file."""
    @property
    def kinds(self) -> Mapping[str, KindLike]: ...
    @property
    def framing(self) -> FramingLike: ...
    @property
    def variable(self) -> bool:
        """V or VB: records of varying length behind record descriptor words."""
    @property
    def shape(self) -> str:
        """``flat`` or ``nested`` (struct / list columns rebuilt from the copybook tree)."""
    @property
    def occurs_shrink(self) -> bool:
        """V / VB records hold only the counter's elements of their OCCURS DEPENDING ON table."""

    def structure_of(self, kind: str) -> tuple[Any, ...]:
        """The copybook tree of ``kind``'s rows."""

    def kind_for_code(self, code: bytes) -> str | None:
        """The kind of a record-type code (None: no kind has it)."""

    def plan(self, kind: str, gaiji: dict | None = None, gaiji_fallback: bool = False
             ) -> DecodePlan:
        """The decoding kernel's plan for one record kind."""

    def arrow_schema(self, kind: str = "data", gaiji: dict | None = None) -> pa.Schema:
        """The Arrow schema of ``kind``'s decoded columns, with the legacy items' metadata."""


@runtime_checkable
class Mapper(Protocol):
    """Maps a block's decoded legacy rows to standard rows inside the decoding DoFn; picklable."""

    @property
    def schema(self) -> pa.Schema:
        """The schema of the tables it returns."""

    def __call__(self, table: pa.Table) -> tuple[pa.Table, Rejects]:
        """``(standard rows, rejects)`` for the legacy rows of ``table`` (lineage included)."""
