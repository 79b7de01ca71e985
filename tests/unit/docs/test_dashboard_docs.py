"""docs/dashboard.md shows screenshots the browser tests take: each image it embeds is
written by a ``screenshot(page, "<name>")`` call in tests/browser, so a renamed or dropped
shot breaks here rather than leaving the doc pointing at a stale picture."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_embedded_screenshot_is_taken_by_a_browser_test() -> None:
    doc = (ROOT / "docs" / "dashboard.md").read_text()
    embedded = set(re.findall(r"!\[[^\]]*\]\(dashboard/([a-z0-9-]+)\.png\)", doc))
    taken: set[str] = set()
    for test in (ROOT / "tests" / "browser").glob("test_*.py"):
        taken |= set(re.findall(r"screenshot\(\s*\w+,\s*\"([a-z0-9-]+)\"", test.read_text()))
    assert embedded, "docs/dashboard.md embeds no screenshot"
    assert embedded - taken == set()
