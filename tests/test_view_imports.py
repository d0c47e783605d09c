"""The GUI's views stay apart: no view imports another view's modules.

What views share (display settings, the model state, jobs, widgets) lives in neutral modules
of ``app``; the main window composes the views and is the one place that imports them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
# Each view: its package or module, and the module names that belong to it.
VIEWS = {
    "analysis": "app.analysis",
    "batch": "app.batch",
    "training": "app.training",
    "models": "app.models_view",
}


def _view_of(module: str) -> str | None:
    for view, root in VIEWS.items():
        if module == root or module.startswith(root + "."):
            return view
    return None


def _files(view: str) -> list[Path]:
    root = VIEWS[view].removeprefix("app.")
    folder = APP / root
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [APP / f"{root}.py"]


def _imports(path: Path) -> list[tuple[int, str]]:
    """The modules a file imports (anywhere in it, lazily inside functions too), absolute."""
    package = "app." + ".".join(path.relative_to(APP).with_suffix("").parts[:-1])
    package = package.rstrip(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package upwards
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from app import batch``: the names may be modules of a view too.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _crossings() -> list[str]:
    crossings = []
    for view in VIEWS:
        for path in _files(view):
            for line, module in _imports(path):
                other = _view_of(module)
                if other is not None and other != view:
                    crossings.append(f"{path.relative_to(APP.parent)}:{line} imports {module}")
    return sorted(set(crossings))


def test_every_view_is_found():
    for view in VIEWS:
        assert _files(view) and all(p.is_file() for p in _files(view)), view


def test_no_view_imports_another_view():
    assert _crossings() == []


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    """A view importing another, directly, relatively or lazily, is caught."""
    fake = tmp_path / "app"
    (fake / "batch").mkdir(parents=True)
    (fake / "analysis").mkdir()
    (fake / "training").mkdir()
    (fake / "analysis" / "state.py").write_text("X = 1\n")
    (fake / "training" / "view.py").write_text("def f():\n    from app import models_view\n")
    (fake / "models_view.py").write_text("import app.display\n")
    (fake / "batch" / "view.py").write_text("from ..analysis.state import X\n")
    monkeypatch.setitem(globals(), "APP", fake)
    assert _crossings() == [
        "app/batch/view.py:1 imports app.analysis.state",
        "app/batch/view.py:1 imports app.analysis.state.X",
        "app/training/view.py:2 imports app.models_view",
    ]
