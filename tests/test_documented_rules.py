"""The audit of documented rules (batchemu/model/documented_rules/) is whole and every rule in it has a test.

A test names the rules it shows with `@pytest.mark.rule("<id>", ...)` (in tests/ or conformance/); this file
reads those markers from the source, so a rule added to the table without a test, or a marker naming no rule,
fails here with its id."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from batchemu.model.documented_rules import RULES, Status, by_id
from batchemu.model.documented_rules.rule import API_REFERENCE, USER_GUIDE
from batchemu.protocol.model import service_model

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = set(service_model("batch").operation_names)


def _is_rule_marker(node: ast.expr, aliases: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in aliases
    return (isinstance(node, ast.Attribute) and node.attr == "rule"
            and isinstance(node.value, ast.Attribute) and node.value.attr == "mark")


def marked_rules() -> dict[str, list[str]]:
    """Every rule id named by a `pytest.mark.rule(...)` in tests/ and conformance/, with where it is named."""
    found: dict[str, list[str]] = {}
    for path in sorted([*ROOT.glob("tests/**/*.py"), *ROOT.glob("conformance/**/*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                   and _is_rule_marker(node.value, set()) for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_rule_marker(node.func, aliases):
                for argument in node.args:
                    assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), \
                        f"{path}:{node.lineno}: rule markers name rules by literal id"
                    found.setdefault(argument.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_rule_ids_are_unique():
    ids = [rule.id for rule in RULES]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_every_operation_has_its_documented_rules_audited():
    audited = {operation for rule in RULES for operation in rule.operations}
    assert sorted(OPERATIONS - audited) == []


def test_every_rule_names_real_operations_and_a_source_page():
    for rule in RULES:
        assert rule.operations and set(rule.operations) <= OPERATIONS, rule.id
        assert rule.source.startswith((API_REFERENCE, USER_GUIDE)) and ".html" in rule.source, rule.id
        assert rule.says, rule.id


def test_every_rule_batchemu_does_not_follow_says_why():
    for rule in RULES:
        assert bool(rule.why) == (rule.status is not Status.ENFORCED), rule.id


def test_every_rule_has_a_test_and_every_marker_names_a_rule():
    marked = marked_rules()
    assert sorted(set(by_id()) - set(marked)) == [], "rules without a test that names them"
    assert {rule: where for rule, where in marked.items() if rule not in by_id()} == {}, "markers naming no rule"


def test_the_known_differences_page_lists_every_rule_batchemu_does_not_follow():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "rules_page.py"), "--check"],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
