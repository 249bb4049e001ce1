"""core/ never imports Qt: the CLI and tests drive it without a window."""

import ast
from pathlib import Path

import llama_launcher.core as core

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "qtpy")


def test_core_modules_do_not_import_qt() -> None:
    root = Path(core.__file__).parent
    offenders = []
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in QT_MODULES or n.startswith("llama_launcher.ui"):
                    offenders.append(f"{f.name}: {n}")
    assert offenders == []


def test_importing_core_does_not_load_qt() -> None:
    import subprocess
    import sys

    code = ("import sys, pkgutil, importlib, llama_launcher.core as c\n"
            "[importlib.import_module('llama_launcher.core.'+m.name) for m in pkgutil.iter_modules(c.__path__)]\n"
            "print(any(k.startswith('PySide6') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
