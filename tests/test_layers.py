"""The library's structure: packages by layer, each importing only the layers below it, and
module names that say which module is meant."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "ncl_core"
# Bottom to top. The root modules below the first package hold what every layer shares.
LAYERS = (
    "settings",
    "errors",
    "jsonconfig",
    "paths",
    "fsutil",
    "cpu",
    "analysis",
    "data",
    "evidence",
    "network",
    "models",
    "inference",
    "evaluation",
    "views",
    "training",
    "report",
    "cli",
    "clidoc",
    "__main__",
)
# Entry points may call the command line: torchrun starts `python -m ncl_core.training`.
ENTRY_POINTS = {"training/__main__.py"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ncl_core" else None


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported outside ``if TYPE_CHECKING:`` blocks (type hints load nothing)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ncl_core":
                found.extend(f"ncl_core.{alias.name}" for alias in node.names)
            else:
                found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_every_module_belongs_to_a_layer():
    names = {
        p.stem if p.parent == CORE else p.relative_to(CORE).parts[0] for p in CORE.rglob("*.py")
    }
    assert names - {"__init__"} <= set(LAYERS), names - set(LAYERS)


def test_no_layer_imports_one_above_it():
    upward = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE)
        if rel.as_posix() in ENTRY_POINTS or rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        own = LAYERS.index(rel.parts[0] if len(rel.parts) > 1 else rel.stem)
        for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _layer(module)
            if target in LAYERS and LAYERS.index(target) > own:
                upward.append(f"{rel}: {module}")
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_module_names_are_unique_outside_the_command_line():
    # The CLI's modules are named after their commands (cli/evaluate.py runs `evaluate`).
    stems = Counter(
        p.stem
        for p in CORE.rglob("*.py")
        if p.stem not in ("__init__", "__main__") and "cli" not in p.relative_to(CORE).parts
    )
    assert [s for s, n in stems.items() if n > 1] == []


def test_the_checks_see_an_upward_import():
    # The walker finds imports inside functions and skips type-only ones.
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ncl_core.report import x\n"
        "def f():\n    from ncl_core.views import y\n    from ncl_core import registry\n"
    )
    found = _runtime_imports(tree)
    assert "ncl_core.views" in found and "ncl_core.registry" in found
    assert "ncl_core.report" not in found
