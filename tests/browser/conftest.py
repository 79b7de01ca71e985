"""Browser tests of the dashboard: headless Chromium driven by Playwright against a real
stack (one per module, as the end-to-end tests), a fresh funded project per test.

Every page a test opens fails the test at teardown if the browser logged an error: a
Content-Security-Policy violation, a failed module import or an uncaught exception
shows up there even when the page still looks right.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from stack_fixtures import serve_stack

from dash import chromium_path, off_loop
from puras_cli.devstack import Stack
from stackapi import Api, new_api

__all__ = ["api", "browser", "page", "stack"]

_ANSWERED_4XX = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The end-to-end tests' module stack (``serve_stack``: its teardown also fails on any
    permission the NATS server refused a service), each step run off the Playwright loop
    (see off_loop)."""
    steps = serve_stack()
    yield off_loop(next, steps)
    off_loop(next, steps, None)


@pytest.fixture
def api(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A fresh funded project with the end-to-end test project deployed and active."""
    a = off_loop(new_api, stack, request.node.name)
    r = a.push(notes="browser")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module's tests. Per module, not per session: Playwright's
    sync API keeps its event loop marked running on the main thread while it is started,
    and every asyncio test collected after tests/browser (integration, security, unit)
    would then fail with "cannot be called from a running event loop"."""
    try:
        executable = chromium_path()
    except RuntimeError as e:
        # Every browser test errors with this one line rather than a launch traceback.
        pytest.fail(str(e), pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            # Root in a container has no user namespace for Chromium's own sandbox.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no session storage carried over) at laptop size; a test
    that wants a phone width sets ``page.set_viewport_size``."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # A 4xx the page asked for and handled (a wrong key, a missing job) is logged by
        # Chromium as a failed resource: that is the API answering, not the page failing.
        if msg.type == "error" and not _ANSWERED_4XX.match(msg.text):
            errors.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    try:
        yield pg
    finally:
        ctx.close()
    assert errors == [], "the browser logged errors:\n" + "\n".join(errors)
