"""The type stubs (``kernels/_*.pyi``) describe the compiled kernels as they are.

Each stub lists the compiled module's public names (``__all__`` plus ``CYTHON_MODULE``) and, for
every function, the parameters (names, kinds, defaults) of both the compiled function and its
pure-Python twin, so a kernel whose signature changes without its stub fails here. The stubs are
read with ``ast``; the compiled signatures come from Cython's ``binding`` functions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from ikou.kernels._loader import pure_python_requested

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
NAMES = ["_decode", "_compare", "_normalize", "_records"]
NO_DEFAULT = "<no default>"


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, object]]:
    a = fn.args
    out: list[tuple[str, str, object]] = []
    positional = [(p, "POSITIONAL_ONLY") for p in a.posonlyargs]
    positional += [(p, "POSITIONAL_OR_KEYWORD") for p in a.args]
    defaults = [NO_DEFAULT] * (len(positional) - len(a.defaults))
    defaults += [ast.literal_eval(d) for d in a.defaults]
    out += [(p.arg, kind, d) for (p, kind), d in zip(positional, defaults, strict=True)]
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", NO_DEFAULT))
    out += [(p.arg, "KEYWORD_ONLY", NO_DEFAULT if d is None else ast.literal_eval(d))
            for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", NO_DEFAULT))
    return out


def _stub(name: str):
    """``(__all__, public names, {function: parameters})`` of ``kernels/<name>.pyi``."""
    tree = ast.parse((KERNELS / f"{name}.pyi").read_text(encoding="utf-8"))
    dunder_all, names, functions = None, set(), {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _stub_params(node)
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                "__all__"]:
            dunder_all = ast.literal_eval(node.value)
    return dunder_all, {n for n in names if not n.startswith("_")}, functions


def _params(fn) -> list[tuple[str, str, object]]:
    return [(p.name, p.kind.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
            for p in inspect.signature(fn).parameters.values()]


def _compiled(name: str):
    try:
        return importlib.import_module(f"ikou.kernels.{name}")
    except ImportError:
        if pure_python_requested():
            pytest.skip("pure-Python run without a compiled build")
        raise


@pytest.mark.parametrize("name", NAMES)
def test_stub_lists_the_compiled_modules_public_names(name):
    dunder_all, public, _ = _stub(name)
    mod = _compiled(name)
    assert dunder_all == mod.__all__
    assert public == set(mod.__all__) | {"CYTHON_MODULE"}
    assert mod.CYTHON_MODULE == 1


@pytest.mark.parametrize("name", NAMES)
def test_stub_signatures_are_the_compiled_and_the_twins(name):
    _, _, functions = _stub(name)
    compiled, twin = _compiled(name), importlib.import_module(f"ikou.kernels.{name}_py")
    assert functions, f"{name}.pyi declares no function"
    for fn, params in functions.items():
        assert fn in twin.__all__, f"{name}_py does not export {fn}"
        assert params == _params(getattr(twin, fn)), f"{name}.pyi: {fn} differs from the twin's"
        assert params == _params(getattr(compiled, fn)), f"{name}.pyi: {fn} differs from .pyx"


def test_the_check_reads_defaults_and_kinds():
    fn = ast.parse("def f(a, /, b: int = 2, *c, d=None, **e) -> None: ...").body[0]
    assert _stub_params(fn) == [("a", "POSITIONAL_ONLY", NO_DEFAULT),
                                ("b", "POSITIONAL_OR_KEYWORD", 2),
                                ("c", "VAR_POSITIONAL", NO_DEFAULT),
                                ("d", "KEYWORD_ONLY", None), ("e", "VAR_KEYWORD", NO_DEFAULT)]

    def g(a, /, b=2, *c, d=None, **e):
        pass

    assert _stub_params(fn) == _params(g)
