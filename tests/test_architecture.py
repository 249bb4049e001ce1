"""The folder tree is the architecture: these tests keep it so.

- core/ never imports Qt or the window (the CLI and the tests drive it without one);
- no import circle anywhere in the package, counting imports inside functions and under
  ``TYPE_CHECKING`` too (a circle dodged with a late import is still a circle);
- a core package imports only packages below it, in the order docs/architecture.md states
  (the test reads that line, so the document and the code cannot drift apart);
- every core module lives in a package: no loose modules beside them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import llama_launcher

ROOT = Path(llama_launcher.__file__).parent
CORE = ROOT / "core"
DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "qtpy")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # "from pkg import module"
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def package_order() -> list[str]:
    m = re.search(r"^Package order, lowest first: (.+)$", DOC.read_text(encoding="utf-8"), re.M)
    assert m, "docs/architecture.md must state the package order ('Package order, lowest first: a < b < ...')"
    return [p.strip(" `.") for p in m.group(1).split("<")]


def core_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "core" else None


def test_core_never_imports_qt_or_the_window() -> None:
    offenders = []
    for f in sorted(CORE.rglob("*.py")):
        for name in imports_of(f):
            if name.split(".")[0] in QT_MODULES or name.startswith(("llama_launcher.ui", "llama_launcher.cli")):
                offenders.append(f"{f.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_importing_all_of_core_does_not_load_qt() -> None:
    code = ("import sys, pkgutil, importlib, llama_launcher.core as c\n"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(c.__path__, 'llama_launcher.core.')]\n"
            "print(len([k for k in sys.modules if k.startswith('llama_launcher.core.')]),"
            " any(k.startswith('PySide6') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, qt = out.stdout.split()
    assert int(count) > 40 and qt == "False"


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                circles.append(path[path.index(m):] + [m])
            elif m not in state:
                visit(m)
        path.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    assert circles == [], "\n".join(" -> ".join(c) for c in circles)


def test_core_packages_import_only_lower_ones() -> None:
    order = package_order()
    packages = sorted(p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(order) == packages, "docs/architecture.md's order must name every core package exactly once"
    rank = {p: i for i, p in enumerate(order)}
    wrong = []
    for module, targets in graph().items():
        src = core_package(module)
        if src is None:
            continue
        for t in targets:
            dst = core_package(t)
            if dst is not None and rank[dst] > rank[src]:
                wrong.append(f"{module} ({src}) imports {t} ({dst})")
    assert wrong == [], "\n".join(sorted(wrong))


def test_every_core_module_lives_in_a_package() -> None:
    loose = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert loose == []
