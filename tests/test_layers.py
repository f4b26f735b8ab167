"""Dependencies point one way: pipeline → transforms → kernels.

Every module's imports (at any depth in the module, lazy ones included) are read from its source
with ``ast``: a kernel imports no other ikou layer and neither Beam nor Great Expectations; a
transform imports no pipeline module and not Great Expectations; only the gates (and the
expectations package) import Great Expectations.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"kernels": "ikou.kernels", "transforms": "ikou.transforms",
          "pipeline": "ikou.pipeline", "expectations": "ikou.expectations"}
#: What each layer may not import (prefixes of module names).
FORBIDDEN = {
    "kernels": ("ikou.transforms", "ikou.pipeline", "ikou.expectations", "apache_beam",
                "great_expectations"),
    "transforms": ("ikou.pipeline", "ikou.expectations", "great_expectations"),
    "expectations": ("ikou.pipeline", "ikou.transforms", "apache_beam"),
    "pipeline": (),
}
#: The only pipeline modules that may import Great Expectations (the gates).
GX_MODULES = {"ikou.pipeline.steps.gates"}


def _module_name(folder: str, path: Path) -> str:
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([LAYERS[folder], *parts])


_PYX_IMPORT = re.compile(r"^\s*(?:from|c?import)\s+(\.*[\w.]*)", re.MULTILINE)


def _imports(path: Path, module: str) -> set[str]:
    if path.suffix == ".pyx":  # Cython: not Python syntax; its import lines are
        found = set()
        for name in _PYX_IMPORT.findall(path.read_text(encoding="utf-8")):
            found.add(LAYERS["kernels"] + name if name.startswith(".") else name)
        return found
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
    return found


def _modules():
    for folder in LAYERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path, _module_name(folder, path)
        for path in sorted((ROOT / folder).rglob("*.pyx")):
            yield folder, path, _module_name(folder, path)


MODULES = list(_modules())


def test_the_tree_is_read():
    names = {m for _, _, m in MODULES}
    assert {"ikou.kernels._decode", "ikou.transforms.decode.blocks",
            "ikou.pipeline.run.job", "ikou.pipeline.steps.gates"} <= names


@pytest.mark.parametrize("folder, path, module", MODULES, ids=[m for _, _, m in MODULES])
def test_imports_point_one_way(folder, path, module):
    imported = _imports(path, module)
    bad = sorted(i for i in imported for p in FORBIDDEN[folder]
                 if i == p or i.startswith(p + "."))
    assert bad == [], f"{module} ({folder}/) imports {bad}"
    if folder == "pipeline" and module not in GX_MODULES:
        gx = sorted(i for i in imported if i.split(".")[0] == "great_expectations")
        assert gx == [], f"{module} imports Great Expectations; only the gates may"


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from ikou.pipeline.config import layout\n", encoding="utf-8")
    assert "ikou.pipeline.config" in _imports(bad, "ikou.kernels.x")
