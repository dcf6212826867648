"""The house rules of CONTRIBUTING.md that import-linter and ruff do not check, read off batchemu/'s source: a
docstring on every module, no module over 600 lines and no class over 300, no two modules sharing a file name,
and no module outside batchemu/store/ importing sqlite3. No test here needs Docker."""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "batchemu"
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
SHARED_NAMES = {"__init__.py", "__main__.py"}  # a package's own files, not modules that collide


@functools.cache
def modules() -> dict[str, tuple[str, ast.Module]]:
    """Each module's path under batchemu/ -> (its source, its syntax tree)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        found[path.relative_to(PACKAGE.parent).as_posix()] = (source, ast.parse(source))
    return found


def test_every_module_has_a_docstring():
    assert [name for name, (_, tree) in modules().items() if not ast.get_docstring(tree)] == []


def test_no_module_over_600_lines_and_no_class_over_300():
    too_long = [f"{name}: {len(source.splitlines())} lines" for name, (source, _) in modules().items()
                if len(source.splitlines()) > MAX_MODULE_LINES]
    too_long += [f"{name}: class {node.name}, {node.end_lineno - node.lineno + 1} lines"
                 for name, (_, tree) in modules().items() for node in ast.walk(tree)
                 if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES]
    assert too_long == []


def test_no_two_modules_share_a_file_name():
    by_name = defaultdict(list)
    for name in modules():
        file_name = name.rsplit("/", 1)[-1]
        if file_name not in SHARED_NAMES:
            by_name[file_name].append(name)
    assert {file_name: paths for file_name, paths in by_name.items() if len(paths) > 1} == {}


def test_only_the_store_speaks_sqlite():
    importers = []
    for name, (_, tree) in modules().items():
        if name.startswith("batchemu/store/"):
            continue
        for node in ast.walk(tree):
            imported = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(module.split(".")[0] == "sqlite3" for module in imported):
                importers.append(name)
    assert importers == []
