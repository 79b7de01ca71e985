"""Helpers for the dashboard's browser tests (tests/browser; here, next to stackapi, so
mypy and pytest find it by one name): Chromium (Debian's, through Playwright),
sign-in, and the screenshots the docs show (``docs/dashboard/<name>.png``)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Page, expect

__all__ = ["SHOTS_DIR", "chromium_path", "off_loop", "screenshot", "sign_in"]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
SHOTS_DIR = ROOT / "docs" / "dashboard"


def chromium_path() -> str:
    """The system Chromium (``scripts/ensure_browser.sh`` installs it; ``./dev test``
    runs that first). Playwright's own browser download is not used: the system's is
    kept up to date by the distribution and needs no download at test time."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "no Chromium on PATH for the dashboard's browser tests: run scripts/ensure_browser.sh "
        "as root (it installs Debian's chromium with apt-get), or install chromium yourself"
    )


def sign_in(page: Page, base: str, token: str) -> None:
    """Opens the dashboard and signs in with a project key or the admin token; returns
    once the signed-in shell shows."""
    page.goto(base + "/")
    page.get_by_label("Project API key or admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """Saves the page as ``docs/dashboard/<name>.png`` (the docs link these, so they
    follow the UI as it changes)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"screenshot name {name!r}: lower-case letters, digits, dashes")
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    out = SHOTS_DIR / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    return out


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Runs ``fn`` in a thread of its own. Playwright's sync API keeps an event loop
    running on the test's thread, and the stack's start, project bootstrap and stop call
    ``asyncio.run``, which refuses to run inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()
