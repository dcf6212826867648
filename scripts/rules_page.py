#!/usr/bin/env python3
"""Writes the table of documented rules batchemu does not follow, or follows loosely on purpose, into
docs/differences.md, between the page's `<!-- documented-rules -->` and `<!-- /documented-rules -->` lines.

    scripts/rules_page.py           # rewrite the block from batchemu/model/documented_rules
    scripts/rules_page.py --check   # exit 1 when the page's block is not what the table gives

tests/test_documented_rules.py runs the check, so the page cannot drift from the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchemu.model.documented_rules import RULES, Status

PAGE = Path(__file__).resolve().parent.parent / "docs" / "differences.md"
START, END = "<!-- documented-rules -->", "<!-- /documented-rules -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The block: a count line, then one row per rule that is not enforced, by operation."""
    loose = sorted((rule for rule in RULES if rule.status is not Status.ENFORCED),
                   key=lambda rule: (rule.operations[0], rule.id))
    enforced = len(RULES) - len(loose)
    lines = [START,
             (f"Rules found by the audit: {len(RULES)}; followed: {enforced}; relaxed on purpose: "
              f"{sum(r.status is Status.RELAXED for r in loose)}; not followed: "
              f"{sum(r.status is Status.NOT_FOLLOWED for r in loose)}."),
             "",
             "| operations | rule | the reference says | batchemu | why |",
             "|---|---|---|---|---|"]
    lines += [f"| {', '.join(rule.operations)} | [`{rule.id}`]({rule.source}) | {_cell(rule.says)} | "
              f"{rule.status.value} | {_cell(rule.why)} |" for rule in loose]
    return "\n".join([*lines, END])


def current(page: str) -> str:
    """The page's block as it stands (empty when the markers are missing)."""
    if START not in page or END not in page:
        return ""
    return page[page.index(START):page.index(END) + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is current")
    args = parser.parse_args(argv)
    page = PAGE.read_text()
    block = current(page)
    if args.check:
        if block != render():
            print(f"{PAGE}: the documented-rules block is not current: run scripts/rules_page.py", file=sys.stderr)
            return 1
        return 0
    if not block:
        print(f"{PAGE}: no {START} ... {END} lines to write between", file=sys.stderr)
        return 1
    PAGE.write_text(page.replace(block, render()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
