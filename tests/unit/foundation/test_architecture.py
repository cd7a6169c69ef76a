"""The layer rule as a test.

services/ imports nothing of ours above it; reports/ not web/ or workers/; workers/ not web/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT

BANNED: dict[str, set[str]] = {
    "services": {"web", "workers", "reports", "flask", "celery", "weasyprint", "kombu", "flask_login", "flask_wtf"},
    "reports": {"web", "workers", "flask", "celery"},
    "workers": {"web", "flask"},
}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """Top-level package names a module imports, with line numbers (relative imports excluded)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def violations(layer: str) -> list[str]:
    """Every import in layer that crosses the layer rule."""
    out = []
    for path in sorted((PROJECT_ROOT / layer).rglob("*.py")):
        for name, line in sorted(imported_top_levels(path)):
            if name in BANNED[layer]:
                out.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("layer", sorted(BANNED))
def test_layer_imports_point_inward_only(layer: str) -> None:
    assert violations(layer) == []


def test_the_checker_catches_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom web.app import create_app\nfrom . import sibling\n")
    assert imported_top_levels(bad) == {("os", 1), ("web", 2)}
