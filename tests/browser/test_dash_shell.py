"""The dashboard's shell in a real browser: signing in and out, where the credential is
(and is not) kept, the navigation at phone width and from the keyboard, focus on
navigation, unknown routes and a page that fails to load.

The pages themselves are stood in for by one small module (``STUB_PAGE``), so what is
tested here is the shell's own behaviour whatever state the pages are in; each page has
tests of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from dash import off_loop, screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api, new_api

# Names its page after its own file, and shows the heading the shell focuses.
STUB_PAGE = """
import { html } from "../lib/ui.js";
import { PageTitle } from "../lib/components.js";
const name = new URL(import.meta.url).pathname.split("/").pop().replace(/\\.js$/, "");
export default function Stub() {
  return html`<${PageTitle}>${"Stub " + name}<//><p><a href="#/usage">usage link</a></p>`;
}
"""

TOKEN_FIELD = "Project API key or admin token"


def _stub_pages(route: Route) -> None:
    route.fulfill(status=200, content_type="text/javascript", body=STUB_PAGE)


@pytest.fixture
def shell(page: Page) -> Page:
    page.route(re.compile(r"/ui/pages/[a-z_]+\.js(\?.*)?$"), _stub_pages)
    return page


@pytest.fixture
def project(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A funded project's key; nothing deployed (the shell needs none)."""
    a = off_loop(new_api, stack, request.node.name)
    try:
        yield a
    finally:
        a.close()


def _hash(page: Page) -> str:
    return str(page.evaluate("location.hash"))


def test_a_project_key_signs_in_to_the_jobs_page(shell: Page, stack: Stack, project: Api) -> None:
    shell.goto(stack.api_base + "/")
    expect(shell).to_have_title("Sign in · Puras")
    expect(shell.get_by_label(TOKEN_FIELD)).to_be_visible()
    screenshot(shell, "sign-in")
    sign_in(shell, stack.api_base, project.key)
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()
    assert _hash(shell) == "#/jobs"
    nav = shell.get_by_role("navigation", name="Main")
    for name in ("Jobs", "Deployments", "Playground", "Usage", "Drive", "API keys", "Secrets"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Projects")).to_have_count(0)
    expect(nav.get_by_role("link", name="Jobs")).to_have_attribute("aria-current", "page")


def test_the_admin_token_signs_in_to_the_projects_page(shell: Page, stack: Stack) -> None:
    sign_in(shell, stack.api_base, stack.admin_token)
    expect(shell.get_by_role("heading", name="Stub admin_projects")).to_be_visible()
    assert _hash(shell) == "#/admin/projects"
    nav = shell.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    expect(nav.get_by_role("link", name="Jobs")).to_have_count(0)
    expect(shell.get_by_text("operator", exact=True)).to_be_visible()


def test_a_wrong_token_is_refused_in_words(shell: Page, stack: Stack) -> None:
    shell.goto(stack.api_base + "/")
    shell.get_by_label(TOKEN_FIELD).fill("puras_live_nope.not-a-real-secret")
    shell.get_by_role("button", name="Sign in").click()
    expect(shell.get_by_role("alert")).to_contain_text("That key or token was not accepted.")
    expect(shell.get_by_role("button", name="Sign out")).to_have_count(0)
    assert shell.evaluate("sessionStorage.length") == 0


def test_any_other_refusal_shows_the_api_message(shell: Page, stack: Stack) -> None:
    def busy(route: Route) -> None:
        route.fulfill(
            status=429,
            content_type="application/json",
            body='{"error": {"code": "rate_limited", "message": "slow down: 3 requests a second"}}',
        )

    shell.route("**/v1/billing/balance", busy)
    shell.goto(stack.api_base + "/")
    shell.get_by_label(TOKEN_FIELD).fill("puras_live_x.y")
    shell.get_by_role("button", name="Sign in").click()
    expect(shell.get_by_role("alert")).to_contain_text("slow down: 3 requests a second")


def test_the_key_is_kept_in_session_storage_only(shell: Page, stack: Stack, project: Api) -> None:
    sign_in(shell, stack.api_base, project.key)
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()
    secret = project.key.split(".", 1)[-1]
    assert len(secret) >= 16
    href = shell.evaluate("location.href")
    assert project.key not in href
    assert secret not in href
    assert shell.evaluate("localStorage.length") == 0
    assert shell.evaluate("document.cookie") == ""
    dom = shell.evaluate("document.documentElement.outerHTML")
    assert secret not in dom
    assert project.key not in dom
    assert project.key in shell.evaluate("JSON.stringify(sessionStorage)")
    # The history entries the shell made carry no key either.
    assert secret not in str(shell.evaluate("JSON.stringify(history.state)"))


def test_sign_out_forgets_the_key(shell: Page, stack: Stack, project: Api) -> None:
    sign_in(shell, stack.api_base, project.key)
    shell.get_by_role("button", name="Sign out").click()
    expect(shell.get_by_label(TOKEN_FIELD)).to_be_visible()
    expect(shell.get_by_label(TOKEN_FIELD)).to_have_value("")
    assert shell.evaluate("sessionStorage.length") == 0
    shell.reload()
    expect(shell.get_by_label(TOKEN_FIELD)).to_be_visible()


def test_a_reload_stays_signed_in_a_new_browser_context_does_not(
    shell: Page, browser: Browser, stack: Stack, project: Api
) -> None:
    sign_in(shell, stack.api_base, project.key)
    shell.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(shell.get_by_role("heading", name="Stub usage")).to_be_visible()
    shell.reload()
    expect(shell.get_by_role("heading", name="Stub usage")).to_be_visible()
    expect(shell.get_by_role("button", name="Sign out")).to_be_visible()
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(stack.api_base + "/#/usage")
        expect(fresh.get_by_label(TOKEN_FIELD)).to_be_visible()
        assert fresh.evaluate("sessionStorage.length") == 0
    finally:
        other.close()


def test_a_link_opened_before_signing_in_is_kept(shell: Page, stack: Stack, project: Api) -> None:
    shell.goto(stack.api_base + "/#/secrets")
    shell.get_by_label(TOKEN_FIELD).fill(project.key)
    shell.get_by_role("button", name="Sign in").click()
    expect(shell.get_by_role("heading", name="Stub secrets")).to_be_visible()
    assert _hash(shell) == "#/secrets"


def test_unknown_routes_and_other_sessions_routes_go_home(
    shell: Page, stack: Stack, project: Api
) -> None:
    sign_in(shell, stack.api_base, project.key)
    shell.goto(stack.api_base + "/#/no/such/page")
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()
    expect(shell).to_have_url(re.compile(r"#/jobs$"))
    # A key never sees the operator's views, even by typing their route.
    shell.goto(stack.api_base + "/#/admin/projects")
    expect(shell).to_have_url(re.compile(r"#/jobs$"))
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()


def test_focus_moves_to_the_page_heading_on_navigation(
    shell: Page, stack: Stack, project: Api
) -> None:
    sign_in(shell, stack.api_base, project.key)
    expect(shell.locator("#page-title")).to_be_focused()
    shell.get_by_role("navigation", name="Main").get_by_role("link", name="Secrets").click()
    heading = shell.get_by_role("heading", name="Stub secrets")
    expect(heading).to_be_visible()
    expect(heading).to_be_focused()
    # A link inside the page too.
    shell.get_by_role("link", name="usage link").click()
    expect(shell.get_by_role("heading", name="Stub usage")).to_be_focused()


def test_the_skip_link_moves_focus_to_the_content(shell: Page, stack: Stack, project: Api) -> None:
    sign_in(shell, stack.api_base, project.key)
    # A fresh load leaves focus where the browser puts it, so Tab starts at the top.
    shell.reload()
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()
    expect(shell.locator("#page-title")).not_to_be_focused()
    shell.keyboard.press("Tab")
    skip = shell.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    shell.keyboard.press("Enter")
    expect(shell.locator("main#main")).to_be_focused()
    # The router kept its route: "#main" is not a page.
    assert _hash(shell) == "#/jobs"
    shell.keyboard.press("Tab")
    expect(shell.get_by_role("link", name="usage link")).to_be_focused()


def test_the_nav_folds_behind_menu_at_phone_width_and_works_by_keyboard(
    shell: Page, stack: Stack, project: Api
) -> None:
    shell.set_viewport_size({"width": 360, "height": 740})
    sign_in(shell, stack.api_base, project.key)
    shell.reload()
    expect(shell.get_by_role("heading", name="Stub jobs")).to_be_visible()
    menu = shell.get_by_role("button", name="Menu")
    usage = shell.get_by_role("navigation", name="Main").get_by_role("link", name="Usage")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(usage).to_be_hidden()
    # Nothing is wider than the phone's screen.
    assert shell.evaluate("document.documentElement.scrollWidth") <= 360
    for expected in ("Skip to content", "Puras"):
        shell.keyboard.press("Tab")
        expect(shell.get_by_role("link", name=expected, exact=True)).to_be_focused()
    shell.keyboard.press("Tab")
    expect(menu).to_be_focused()
    shell.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(usage).to_be_visible()
    usage.focus()
    shell.keyboard.press("Enter")
    expect(shell.get_by_role("heading", name="Stub usage")).to_be_focused()
    expect(usage).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    # At laptop width the links are simply there.
    shell.set_viewport_size({"width": 1280, "height": 800})
    expect(menu).to_be_hidden()
    expect(usage).to_be_visible()


def test_a_page_that_fails_to_load_says_so(shell: Page, stack: Stack, project: Api) -> None:
    shell.route(
        "**/ui/pages/usage.js",
        lambda route: route.fulfill(status=404, content_type="text/plain", body="gone"),
    )
    sign_in(shell, stack.api_base, project.key)
    shell.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(shell.get_by_role("alert")).to_contain_text("This page failed to load")
    # The rest of the dashboard still works.
    shell.get_by_role("navigation", name="Main").get_by_role("link", name="Secrets").click()
    expect(shell.get_by_role("heading", name="Stub secrets")).to_be_visible()
    expect(shell.get_by_role("alert")).to_have_count(0)
