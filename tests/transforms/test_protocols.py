"""The pipeline's layouts and mappers have every member the transforms' Protocols name.

``isinstance`` on a ``runtime_checkable`` Protocol checks that the members exist (mypy, in
``make lint``, checks their types inside transforms/), so renaming a ``Layout`` field the
transforms read, or a ``MappingStep`` losing its ``schema``, fails here.
"""

from __future__ import annotations

import pyarrow as pa
from test_mapping import MAPPING, legacy_table, write
from test_transforms import write_layout

from ikou.pipeline.config.mapping import load_mapping
from ikou.pipeline.steps.mapping import MappingStep
from ikou.transforms.decode.protocols import FramingLike, KindLike, LayoutLike, Mapper


def test_a_parsed_layout_is_layout_like(tmp_path):
    layout = write_layout(tmp_path)
    assert isinstance(layout, LayoutLike)
    assert isinstance(layout.framing, FramingLike)
    assert all(isinstance(k, KindLike) for k in layout.kinds.values())
    assert not isinstance(layout, Mapper)


def test_the_mapping_step_is_a_mapper(tmp_path):
    legacy = legacy_table(5)
    step = MappingStep(load_mapping(write(tmp_path, MAPPING), legacy.schema))
    assert isinstance(step, Mapper)
    assert not isinstance(step, LayoutLike)
    table, rejects = step(legacy)
    assert isinstance(table, pa.Table) and table.schema == step.schema
    assert all(isinstance(row, int) and all("code" in r for r in reasons)
               for row, reasons in rejects)
