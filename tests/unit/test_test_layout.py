"""The test tree itself: pytest imports test modules by basename (rootdir-relative
``prepend`` mode, no packages), so two test files with one name break collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []


def test_helper_modules_imported_by_name_are_unique() -> None:
    # Modules the tests import by bare name (stackapi, golden, runner_helpers, ...);
    # skill code inside test bundles (skills/<name>/main.py) is never imported by tests.
    helpers = Counter(
        p.name
        for p in TESTS.rglob("*.py")
        if not p.name.startswith(("test_", "conftest")) and "skills" not in p.parts
    )
    assert [n for n, c in helpers.items() if c > 1 and n != "__init__.py"] == []
