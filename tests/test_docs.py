"""README.md, CONTRIBUTING.md and the pages of docs/ stay true to the tree: every path they name exists, the
architecture page's "Layout" has a row for every package of batchemu/ naming only files of that package,
CONTRIBUTING.md names every import-linter contract that `make lint` enforces, the configuration page names
every flag of `batchemu serve` and every BATCHEMU_* variable the package reads, and the README stays short
(at most 200 lines) with links that resolve. No test here needs Docker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "CONTRIBUTING.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")))
README_LINES = 200
# A path from the repository's root: not the tail of a URL path (/_batchemu/health) or of another path.
ROOTED_PATH = re.compile(r"(?<![\w/.~-])(?:batchemu|tests|scripts|conformance|bench|examples|docs)/[\w./-]*")
# A file named in code text, with or without its folders (`loop.py`, `model/states.py`).
FILE_NAME = re.compile(r"`((?:[\w.-]+/)*[\w-]+\.(?:py|sh|md|toml))`")
TABLE_ROW = re.compile(r"^\| `(batchemu/(?:[\w/]+/)?)` \| (.+?) \|", re.MULTILINE)
CODE = re.compile(r"`([^`]+)`")


def text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def section(markdown: str, title: str) -> str:
    """The body of the `## title` section, up to the next section of the same level."""
    _, found, rest = markdown.partition(f"\n## {title}\n")
    assert found, f"no section '## {title}'"
    return rest.split("\n## ", 1)[0]


def repository_files() -> list[str]:
    return [p.relative_to(ROOT).as_posix() for top in ("batchemu", "tests", "scripts", "conformance", "bench", "examples", "docs")
            for p in (ROOT / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_named_from_the_root_exists(doc):
    named = {path.rstrip(".,;:") for path in ROOTED_PATH.findall(text(doc))}
    assert named or doc.startswith("docs/"), f"{doc} names no path: the pattern no longer reads it"
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_named_in_code_text_exists_somewhere_in_the_repository(doc):
    files = repository_files() + [p.name for p in ROOT.iterdir() if p.is_file()]
    named = set(FILE_NAME.findall(text(doc)))
    missing = [name for name in named if not any(f == name or f.endswith("/" + name) for f in files)]
    assert sorted(missing) == []


def test_contributing_is_linked_from_the_readme():
    assert "(CONTRIBUTING.md)" in text("README.md")
    assert (ROOT / "CONTRIBUTING.md").is_file()


def test_the_architecture_layout_has_a_row_for_every_package_naming_only_its_files():
    layout = section(text("docs/architecture.md"), "Layout")
    rows = dict(TABLE_ROW.findall(layout))
    packages = {p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "batchemu").glob("*/__init__.py")}
    assert sorted(packages - set(rows)) == []
    subpackages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "batchemu").glob("*/*/__init__.py")}
    for sub in subpackages:
        folder, name = sub.rsplit("/", 1)
        assert f"`{name}/`" in rows.get(folder + "/", ""), f"{sub}/ is not named in its package's Layout row"
    for folder, owns in rows.items():
        named = [code for code in CODE.findall(owns) if re.fullmatch(r"[\w-]+(?:\.py|/)", code)]
        assert named, f"the Layout row of {folder} names none of its files"
        assert [code for code in named if not (ROOT / folder / code).exists()] == [], folder


def test_contributing_names_every_import_linter_contract():
    pyproject = text("pyproject.toml")
    contracts = [re.search(r'^name = "(.+)"$', block, re.MULTILINE).group(1)
                 for block in pyproject.split("[[tool.importlinter.contracts]]")[1:]]
    assert len(contracts) >= 3
    contributing = text("CONTRIBUTING.md")
    assert [name for name in contracts if f'"{name}"' not in contributing] == []


def test_the_readme_is_short_and_its_links_resolve():
    readme = text("README.md")
    assert len(readme.splitlines()) <= README_LINES, f"README.md has {len(readme.splitlines())} lines"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links, "README.md links to no page"
    assert [link for link in links if "://" not in link and not (ROOT / link).exists()] == []
    assert "make test" in readme  # .ci/run runs the README's test command


def _serve_flags() -> set[str]:
    from batchemu.cli import build_parser
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    serve = commands.choices["serve"]
    return {flag for action in serve._actions for flag in action.option_strings if flag.startswith("--")} - {"--help"}


def _variables_read() -> set[str]:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "batchemu").rglob("*.py"))
    return set(re.findall(r"\bBATCHEMU_[A-Z0-9_]*[A-Z0-9]\b", source))


def test_the_configuration_page_names_every_flag_and_variable():
    page = text("docs/configuration.md")
    flags, variables = _serve_flags(), _variables_read()
    assert {"--port", "--executor", "--auth"} <= flags and {"BATCHEMU_STATE", "BATCHEMU_TICK"} <= variables
    assert sorted(flag for flag in flags if f"`{flag}" not in page) == []
    assert sorted(name for name in variables if f"`{name}" not in page) == []


def test_the_coverage_page_has_a_row_for_every_operation_of_botocores_model():
    import botocore.session
    operations = set(botocore.session.get_session().get_service_model("batch").operation_names)
    page = text("docs/coverage.md")
    table = page.split("<!-- coverage:start -->", 1)[1].split("<!-- coverage:end -->", 1)[0]
    rows = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))
    assert sorted(operations - rows) == [], "make conformance rewrites docs/coverage.md"


def test_the_benchmarks_page_is_one_table_of_a_runs_figures_against_their_targets():
    from bench.report import markdown_page
    run = {"started": 0, "seconds": 60, "notes": [],
           "machine": {"cpu": "cpu", "cores": 2, "python": "3.11", "docker": ""},
           "measurements": [
               {"name": "api.SubmitJob.p99", "value": 21.4, "unit": "ms", "target": "<= 20", "floor": None,
                "ratio": None, "pass": False},
               {"name": "latency.median", "value": 0.18, "unit": "s", "target": "<= 1.10", "floor": 0.38,
                "ratio": 0.47, "pass": True},
               {"name": "api.SubmitJob.p50", "value": 2.5, "unit": "ms", "target": None, "floor": None,
                "ratio": None, "pass": None}]}
    page = markdown_page(run)
    assert "| `api.SubmitJob.p99` | 21.40 ms |  |  | <= 20 | **miss** |" in page
    assert "| `latency.median` | 0.1800 s | 0.3800 s | 0.4700 | <= 1.10 | pass |" in page
    assert "api.SubmitJob.p50" not in page  # a figure without a target is not judged on the page
    assert text("docs/benchmarks.md").startswith(page.split("Run of", 1)[0])  # the committed page is generated
