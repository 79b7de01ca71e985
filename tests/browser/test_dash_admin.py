"""The operator's pages in Chromium against a real stack, signed in with the admin token:
create a project, create its key (shown once), revoke it, grant credit."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from dash import screenshot, sign_in
from puras_cli.devstack import Stack


def _balance_with(stack: Stack, key: str) -> int:
    return httpx.get(
        f"{stack.api_base}/v1/billing/balance", headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_create_project_key_revoke_and_grant_credit(page: Page, stack: Stack) -> None:
    sign_in(page, stack.api_base, stack.admin_token)
    expect(page).to_have_url(re.compile(r"#/admin/projects$"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    expect(nav.get_by_role("link", name="Jobs")).to_have_count(0)

    page.get_by_label("New project name").fill("browser ops")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Project browser ops")).to_be_visible()
    project_id = page.url.rsplit("/", 1)[1]
    keys = page.get_by_role("region", name="API keys")
    expect(keys.get_by_text("No active keys.")).to_be_visible()

    # The key, once, with the warning; it works at once.
    keys.get_by_role("button", name="Create key").click()
    shown = keys.get_by_role("status")
    expect(shown).to_contain_text("it will not be shown again")
    key = shown.locator("code.secret").inner_text()
    assert key.startswith("puras_live_")
    expect(shown.get_by_role("button", name="Copy key")).to_be_visible()
    assert _balance_with(stack, key) == 200
    prefix = key.removeprefix("puras_live_").split(".", 1)[0]
    row = keys.get_by_role("row").filter(has_text=prefix)
    expect(row).to_have_count(1)
    keys.get_by_role("button", name="I have copied it").click()
    expect(page.get_by_text(key)).to_have_count(0)

    # Revoke, behind a confirmation; the key fails from the next request.
    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name=f"Yes, revoke {prefix}").click()
    expect(keys.get_by_text("No active keys.")).to_be_visible()
    assert _balance_with(stack, key) == 401

    # Credit: a bad amount is refused before any request, a good one lands.
    credit = page.get_by_role("region", name="Credit")
    amount = credit.get_by_label("Amount (USD)")
    amount.fill("ten")
    credit.get_by_role("button", name="Grant credit").click()
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(credit).to_contain_text("Enter an amount in dollars")
    amount.fill("2.5")
    credit.get_by_role("button", name="Grant credit").click()
    expect(credit.get_by_role("status")).to_contain_text("Granted $2.50")
    expect(credit.locator(".balance")).to_have_text("$2.50")
    listed = httpx.get(
        f"{stack.api_base}/v1/admin/projects",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    ).json()["projects"]
    mine = next(p for p in listed if p["id"] == project_id)
    assert (mine["credit_balance_micros"], mine["active_keys"]) == (2_500_000, 0)

    page.get_by_role("link", name="← Projects").click()
    row = page.get_by_role("row").filter(has_text="browser ops")
    expect(row).to_contain_text("$2.50")
    expect(row).to_contain_text(project_id)
    screenshot(page, "admin-projects")
