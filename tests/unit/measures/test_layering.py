import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = [ROOT / "services" / "measures", ROOT / "services" / "signals"]
BANNED = ("flask", "celery", "weasyprint", "web", "workers", "reports", "sqlalchemy")


@pytest.mark.parametrize("path", sorted(p for package in PACKAGES for p in package.rglob("*.py")), ids=str)
def test_pure_rules_import_no_framework_or_outer_layer(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in BANNED, f"{path.name} imports {name}"
