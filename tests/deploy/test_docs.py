"""docs/DEPLOY.md stays true: every alert the code raises has a runbook row, every log line the runbook
quotes is still logged somewhere, every script it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from functions.health import HEALTH_ALERT_KINDS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MD = REPO_ROOT / "docs" / "DEPLOY.md"
SOURCE_DIRS = ("functions", "connector", "shared")


def _section(title: str) -> str:
    text = DEPLOY_MD.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _first_cells(table_text: str) -> list[str]:
    """The backticked text of each table row's first cell (header and rule rows skipped)."""
    cells = []
    for line in table_text.splitlines():
        if line.startswith("| `"):
            cells.append(line.split("|")[1].strip())
    return cells


def alert_kinds_raised() -> set[str]:
    """Every kind passed as a literal to ``raise_alert`` in functions/, plus the health check's kinds."""
    kinds = set(HEALTH_ALERT_KINDS)
    for path in (REPO_ROOT / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "raise_alert" and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                kinds.add(node.args[1].value)
    return kinds


def test_every_alert_kind_has_a_runbook_row() -> None:
    documented = {cell.strip("`") for cell in _first_cells(_section("## Runbook"))}
    raised = alert_kinds_raised()
    assert {"logged_out", "replaced", "fell_back", "restore_failed"} <= raised  # the scan still finds them
    missing = raised - documented
    assert not missing, f"docs/DEPLOY.md has no runbook row for alert kind(s) {sorted(missing)}"


def test_quoted_log_lines_are_still_logged() -> None:
    runbook = _section("## Runbook")
    log_table = runbook[runbook.index("Log lines worth"):runbook.index("Pub/Sub: ")]
    sources = "\n".join(
        path.read_text() for folder in SOURCE_DIRS for path in (REPO_ROOT / folder).rglob("*.py")
    )
    quoted = [q for cell in _first_cells(log_table) for q in re.findall(r"`([^`]+)`", cell)]
    assert len(quoted) >= 8
    for line in quoted:
        # Literal fragments around format placeholders ("alert ... stored") must each appear in the code.
        for fragment in (f.strip() for f in line.split("...")):
            assert fragment in sources, f"docs/DEPLOY.md quotes a log line no code writes: {fragment!r}"


def test_named_scripts_exist() -> None:
    text = DEPLOY_MD.read_text()
    for script in set(re.findall(r"deploy/[a-z_]+\.(?:sh|py)", text)):
        assert (REPO_ROOT / script).is_file(), script
