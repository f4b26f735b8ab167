"""Nested output: groups as Arrow struct columns, OCCURS as list columns, from flat columns.

The kernel decodes a record into flat columns (one per elementary item; an item inside
``OCCURS n`` gives ``NAME_1 … NAME_n``, nested OCCURS ``NAME_i_j``).  A layout imported from a
COBOL copybook also carries the copybook's tree (``structure``); :func:`nest_table` rebuilds
the tree from the flat columns of a decoded table, so both shapes come from one decode:

* a group becomes a struct column of its children;
* ``occurs: n`` becomes a list column of ``n`` elements;
* ``depending_on: COUNTER`` (OCCURS … DEPENDING ON) cuts each row's list to the counter's value.
  A counter that is null (the record does not carry it) gives a null list; a counter below 0
  or above ``n`` is an error of that record (:func:`occurs_errors`), which the decoder
  quarantines before the rows are nested.

A structure is a list of nodes, each a mapping::

    {"name": "SHORT_NAME", "column": "SHORT_NAME"}                 # a leaf: one flat column
    {"name": "CODES", "column": "CODES", "occurs": 3}              # a leaf in OCCURS
    {"name": "COMPANY", "children": [...]}                        # a group
    {"name": "ACCOUNT_DETAIL", "occurs": 80, "depending_on": "NUMBER_OF_ACCTS",
     "children": [...]}                                           # a group in OCCURS

Columns the structure does not name (lineage columns, record kinds' own fields) stay at the top
level, after the structure's columns, in their original order.  Flat columns the structure
names but the table lacks (a FILLER, a field of another record kind) are left out of the
struct; a group left with no child is left out too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import pyarrow as pa

__all__ = ["ShapeError", "flat_columns", "nest_schema", "nest_table", "occurs_errors"]


class ShapeError(ValueError):
    """A structure does not fit the table (a malformed node, a counter out of range)."""


def _suffix(indexes: tuple[int, ...]) -> str:
    return "".join(f"_{i}" for i in indexes)


def _children(node: Mapping) -> Sequence[Mapping]:
    kids = node.get("children")
    if kids is None:
        if "column" not in node:
            raise ShapeError(f"structure node {node.get('name')!r} has neither column nor children")
        return ()
    return kids


def flat_columns(structure: Sequence[Mapping], indexes: tuple[int, ...] = ()) -> list[str]:
    """Every flat column name the structure refers to, in structure order."""
    out: list[str] = []
    for node in structure:
        n = int(node.get("occurs", 0) or 0)
        reps = [indexes + (i,) for i in range(1, n + 1)] if n else [indexes]
        for ix in reps:
            if "children" in node:
                out.extend(flat_columns(node["children"], ix))
            else:
                out.append(node["column"] + _suffix(ix))
    return out


def _counter_name(node: Mapping, indexes: tuple[int, ...], names: set[str]) -> str:
    base = node["depending_on"]
    for k in range(len(indexes), -1, -1):  # a counter inside an outer OCCURS has its suffix
        candidate = base + _suffix(indexes[:k])
        if candidate in names:
            return candidate
    raise ShapeError(f"OCCURS {node.get('name')!r} depends on {base!r}, which is not a column")


def _counter_values(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values with nulls as 0, not-null mask) of a counter column (integer or decimal)."""
    col = table.column(name).combine_chunks()
    valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    filled = col.fill_null(0)
    if pa.types.is_decimal(filled.type):
        filled = filled.cast(pa.int64())
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64), valid


def _counts(table: pa.Table, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(lengths clipped to 0..n, valid mask) of a counter column."""
    values, valid = _counter_values(table, name)
    return np.clip(values, 0, n), valid & (values >= 0) & (values <= n)


def occurs_errors(table: pa.Table, structure: Sequence[Mapping]) -> list[tuple[int, str, str]]:
    """``(row, counter column, message)`` for every row whose OCCURS … DEPENDING ON counter is
    below 0 or above the maximum: such a record cannot be shaped and is quarantined."""
    names = set(table.column_names)
    out: list[tuple[int, str, str]] = []

    def walk(nodes: Sequence[Mapping], indexes: tuple[int, ...]) -> None:
        for node in nodes:
            n = int(node.get("occurs", 0) or 0)
            if n and node.get("depending_on"):
                name = _counter_name(node, indexes, names)
                v, _ = _counter_values(table, name)
                for row in np.nonzero((v < 0) | (v > n))[0].tolist():
                    out.append((row, name, f"OCCURS {node['name']} DEPENDING ON {name}: "
                                           f"{int(v[row])} is outside 0..{n}"))
            if "children" in node:
                reps = [indexes + (i,) for i in range(1, n + 1)] if n else [indexes]
                for ix in reps[:1]:  # counters of inner lists are checked once per shape
                    walk(node["children"], ix)

    walk(structure, ())
    return sorted(set(out))


def _list(elements: list[pa.Array], lengths: np.ndarray | None, valid: np.ndarray | None,
          rows: int) -> pa.Array:
    """A list array whose row r holds elements[0][r], elements[1][r], … cut to lengths[r]."""
    n = len(elements)
    values = pa.concat_arrays(elements) if n else None
    if lengths is None:
        lengths = np.full(rows, n, dtype=np.int64)
    # element i of row r sits at i*rows + r in `values`
    take = np.arange(n, dtype=np.int64)[None, :] * rows + np.arange(rows, dtype=np.int64)[:, None]
    keep = np.arange(n, dtype=np.int64)[None, :] < lengths[:, None]
    indexes = take[keep]
    offsets = np.zeros(rows + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(lengths)
    flat = cast(pa.Array, values).take(pa.array(indexes, type=pa.int64()))  # _build: n > 0
    mask = None if valid is None or valid.all() else pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), flat, mask=mask)


def _one(node: Mapping, ix: tuple[int, ...], table: pa.Table,
         fields: Mapping[str, pa.Field]) -> tuple[pa.Field, pa.Array] | None:
    """One occurrence (index suffix ``ix``) of a node: a leaf's column or a group's struct."""
    name = node["name"]
    if "children" not in node:
        col = node["column"] + _suffix(ix)
        if col not in fields:
            return None
        return fields[col].with_name(name), table.column(col).combine_chunks()
    built = _build(_children(node), table, fields, ix)
    if not built:
        return None
    sub_fields = [f for f, _ in built]
    return pa.field(name, pa.struct(sub_fields)), pa.StructArray.from_arrays(
        [a for _, a in built], fields=sub_fields)


def _build(nodes: Sequence[Mapping], table: pa.Table, fields: Mapping[str, pa.Field],
           indexes: tuple[int, ...]) -> list[tuple[pa.Field, pa.Array]]:
    names = set(fields)
    rows = table.num_rows
    out: list[tuple[pa.Field, pa.Array]] = []
    for node in nodes:
        name = node["name"]
        n = int(node.get("occurs", 0) or 0)
        if not n:
            got = _one(node, indexes, table, fields)
            if got is not None:
                out.append(got)
            continue
        elements = [_one(node, indexes + (i,), table, fields) for i in range(1, n + 1)]
        if any(e is None for e in elements):
            if all(e is None for e in elements):
                continue
            raise ShapeError(f"OCCURS {name!r}: some elements have columns, some do not")
        present = cast(list[tuple[pa.Field, pa.Array]], elements)  # none is None (just above)
        lengths = valid = None
        if node.get("depending_on"):
            lengths, valid = _counts(table, _counter_name(node, indexes, names), n)
        item = present[0][0]
        list_field = pa.field(name, pa.list_(pa.field("item", item.type, metadata=item.metadata)),
                              metadata=item.metadata)
        out.append((list_field, _list([a for _, a in present], lengths, valid, rows)))
    return out


def nest_table(table: pa.Table | pa.RecordBatch, structure: Sequence[Mapping]) -> pa.Table:
    """``table`` with the structure's flat columns replaced by struct / list columns."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    fields = {f.name: f for f in table.schema}
    built = _build(structure, table, fields, ())
    used = set(flat_columns(structure))
    rest = [f for f in table.schema if f.name not in used]
    columns = [a for _, a in built] + [table.column(f.name) for f in rest]
    schema = pa.schema([f for f, _ in built] + rest, metadata=table.schema.metadata)
    return pa.Table.from_arrays(columns, schema=schema)


def nest_schema(schema: pa.Schema, structure: Sequence[Mapping]) -> pa.Schema:
    """The schema :func:`nest_table` gives a table of ``schema``."""
    empty = pa.Table.from_batches([], schema=schema) if len(schema) else pa.table({})
    return nest_table(empty, structure).schema

