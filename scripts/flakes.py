"""Runs the whole suite (tests/ and conformance/ on every executor, as `make test` does) N times in a row and
prints every test that failed or skipped in any run, with its message: `make flakes N=5`.

Each run's JUnit reports are kept under build/flakes/run-K/. Exit status 1 when a test failed in any run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINES_SHOWN = 25


def outcomes(report_dir: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    """(tests run, test id -> (failed|error|skipped, message)) of every JUnit report in `report_dir`."""
    ran, found = 0, {}
    for report in sorted(report_dir.glob("*.xml")):
        suite = report.stem
        for case in ET.parse(report).getroot().iter("testcase"):
            ran += 1
            test_id = f"{suite}: {case.get('classname', '')}::{case.get('name', '')}"
            for kind in ("failure", "error", "skipped"):
                element = case.find(kind)
                if element is not None:
                    text = (element.get("message") or "") + "\n" + (element.text or "")
                    found[test_id] = ("failed" if kind == "failure" else kind, text.strip())
                    break
    return ran, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "flakes")
    args = parser.parse_args()
    bad: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    summary = []
    for run in range(1, args.runs + 1):
        report_dir = args.out / f"run-{run}"
        for old in report_dir.glob("*.xml"):
            old.unlink()
        began = time.monotonic()
        print(f"flakes: run {run} of {args.runs}", flush=True)
        status = subprocess.run(["bash", "scripts/test-suite.sh", str(report_dir)], cwd=ROOT, check=False).returncode
        minutes = (time.monotonic() - began) / 60
        ran, found = outcomes(report_dir)
        for test_id, (kind, text) in found.items():
            bad[test_id].append((run, kind, text))
        counts = {kind: sum(1 for k, _ in found.values() if k == kind) for kind in ("failed", "error", "skipped")}
        summary.append(f"run {run}: exit {status}, {ran} tests, {counts['failed']} failed, {counts['error']} errors, "
                       f"{counts['skipped']} skipped, {minutes:.1f} min")
    print("\nflakes: summary")
    for line in summary:
        print("  " + line)
    failing = {test_id: runs for test_id, runs in bad.items() if any(kind != "skipped" for _, kind, _ in runs)}
    skipped = {test_id: runs for test_id, runs in bad.items() if test_id not in failing}
    print(f"\nflakes: {len(failing)} test(s) failed at least once in {args.runs} run(s)")
    for test_id, runs in sorted(failing.items()):
        print(f"\n{test_id}: {', '.join(f'{kind} in run {run}' for run, kind, _ in runs)}")
        for line in runs[0][2].splitlines()[-LINES_SHOWN:]:
            print("    " + line)
    print(f"\nflakes: {len(skipped)} test(s) skipped at least once")
    for test_id, runs in sorted(skipped.items()):
        print(f"  {test_id}: runs {', '.join(str(run) for run, _, _ in runs)}: {runs[0][2].splitlines()[0][:200]}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
