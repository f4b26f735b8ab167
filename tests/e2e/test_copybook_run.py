"""A layout imported from a COBOL copybook with three row kinds, run on Beam
(``ikou run --layout``): one published Arrow file per row kind, counts reconciled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from ikou.pipeline.config.copybook import CopybookOptions, copybook_layout, parse_kind
from ikou.pipeline.config.layout import parse_layout
from ikou.pipeline.run.single import run_migration

#: Cobrix's acceptance corpus (tests/data/cobrix; IKOU_COBRIX_DIR names another copy)
COBRIX = Path(os.environ.get("IKOU_COBRIX_DIR")
              or Path(__file__).resolve().parents[1] / "data" / "cobrix") / "fixed_segments_redefines"


@pytest.mark.skipif(not COBRIX.is_dir(), reason="Cobrix corpus not present")
def test_three_row_kinds_are_published_one_file_each(tmp_path):
    kinds = tuple(parse_kind(k) for k in ("company=C:COMPANY", "person=P:PERSON",
                                         "po_box=B:PO-BOX"))
    doc = copybook_layout(COBRIX / "test16_fix_len_segments.cob",
                          CopybookOptions(record_type="SEGMENT_ID", kinds=kinds, name="entity"))
    layout = parse_layout(doc, "entity.yaml")
    data = COBRIX / "ENTITY.DB.AUG12.DATA.FIX.LEN.dat"
    run_migration(layout, {}, [data], tmp_path / "out")
    current = tmp_path / "out" / "current"
    rows = {k: pa.ipc.open_file(current / f"entity.{k}.arrow").read_all().num_rows
            for k in ("company", "person", "po_box")}
    manifest = json.loads((current / "manifest.json").read_text())
    by_kind = manifest["inputs"][0]["records_by_kind"]
    assert rows == {k: by_kind[k] for k in rows} and sum(rows.values()) == 50
    assert not (current / "entity.arrow").exists()
