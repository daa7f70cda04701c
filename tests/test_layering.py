"""The layering of ARCHITECTURE.md, read from every import (top-level and inside functions):
stages import only downward, never the faces above them nor each other both ways, the kernel
(frugalml.core, frugalml.errors) imports no stage, and no two modules import each other
(directly or round a longer circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package folder -> its import name (setuptools package-dir mapping)
FOLDERS = {"export": "frugalml.export", "calibration": "frugalml.calibration",
           "quantize": "frugalml.quantize", "targets": "frugalml.targets",
           "runtime": "frugalml.runtime", "frugalml": "frugalml"}
STAGES = ("export", "calibration", "quantize", "targets", "runtime")
FACES = ("frugalml.deploy", "frugalml.sweep", "frugalml.cli", "frugalml.report",
         "frugalml.demo")
KERNEL = ("frugalml.core", "frugalml.errors")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, name in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([name, *parts])] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every frugalml module ``path`` imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n == "frugalml" or n.startswith("frugalml.")}


def _owner(module: str) -> str:
    """The known module a dotted import name refers to (a name imported from it drops off)."""
    while module not in MODULES and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def _ancestor(package: str, module: str) -> bool:
    """Python imports a module's packages before it: an import of one adds no order."""
    return module.startswith(package + ".")


GRAPH = {m: {o for o in map(_owner, _imports(p)) if o != m and not _ancestor(o, m)}
         for m, p in MODULES.items()}


def _stage(module: str) -> str | None:
    return next((s for s in STAGES if module == FOLDERS[s]
                 or module.startswith(FOLDERS[s] + ".")), None)


def test_stages_import_no_face_and_no_private_kernel() -> None:
    bad = sorted(f"{m} -> {i}" for m, deps in GRAPH.items() if _stage(m)
                 for i in deps if i.startswith(FACES) or i.startswith("frugalml._"))
    assert not bad, "\n".join(bad)


def test_the_kernel_imports_no_stage() -> None:
    bad = sorted(f"{m} -> {i}" for m, deps in GRAPH.items() if m.startswith(KERNEL)
                 for i in deps if not i.startswith(KERNEL))
    assert not bad, "\n".join(bad)


def test_no_two_stages_import_each_other_and_runtime_imports_no_stage() -> None:
    edges = {(_stage(m), _stage(i)) for m, deps in GRAPH.items() for i in deps
             if _stage(m) and _stage(i) and _stage(m) != _stage(i)}
    mutual = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not mutual, mutual
    assert not [e for e in edges if e[0] == "runtime"], sorted(edges)


def test_no_module_circles() -> None:
    """Tarjan's strongly connected components of the module graph: each must be one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in GRAPH.get(m, ()):
            if n not in MODULES:
                continue
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = []
            while True:
                n = stack.pop()
                group.append(n)
                if n == m:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for m in MODULES:
        if m not in index:
            visit(m)
    assert not circles, circles


def test_the_graph_was_read() -> None:
    assert len(MODULES) > 120 and GRAPH["frugalml.quantize.api"], len(MODULES)
