"""The documentation in docs/ and README.md against the package: every public name has an API entry,
every relative link and every page of the site's navigation exists.

The strict build itself (``mkdocs build --strict``, the ``docs`` extra) runs in ``.ci/run``; these checks
need no mkdocs and take well under a second.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import quotient

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _directives():
    return {line[4:].strip() for page in PAGES for line in page.read_text().splitlines() if line.startswith("::: ")}


def _resolve(directive):
    """The object a ``::: quotient.a.b`` directive names (importing the modules ``import quotient`` does not load)."""
    parts = directive.split(".")
    assert parts[0] == "quotient", directive
    obj = quotient
    for index, part in enumerate(parts[1:], start=1):
        obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(".".join(parts[: index + 1]))
    return obj


def test_every_public_name_has_an_api_entry():
    """``::: quotient.X`` for every name of ``quotient.__all__``, or a ``::: module`` entry of the module defining it."""
    directives = _directives()
    modules = {obj.__name__ for obj in map(_resolve, directives) if inspect.ismodule(obj)}
    missing = []
    for name in quotient.__all__:
        obj = getattr(quotient, name)
        module = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if f"quotient.{name}" not in directives and module not in modules:
            missing.append(name)
    assert not missing, f"public names with no '::: quotient.NAME' in docs/*.md: {missing}"


def test_api_entries_name_objects_that_exist():
    for directive in _directives():
        _resolve(directive)


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda path: path.name)
def test_relative_links_point_to_files(path):
    broken = []
    for target, _ in LINK.findall(path.read_text()):
        if "://" in target:
            continue
        if not (path.parent / target).exists():
            broken.append(target)
    assert not broken, f"{path.name}: links to missing files {broken}"


def test_every_page_is_in_the_navigation_and_every_entry_exists():
    text = (ROOT / "mkdocs.yml").read_text()
    entries = re.findall(r"^\s+-\s+(?:[^:\n]+:\s+)?(\S+\.(?:md|ipynb))\s*$", text, flags=re.M)
    assert all((DOCS / entry).exists() for entry in entries), entries
    assert {page.name for page in PAGES} <= set(entries)
    notebooks = {f"notebooks/{path.name}" for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks <= set(entries)
