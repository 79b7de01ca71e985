"""The dashboard's API keys and secrets pages in Chromium against a real stack: a new key
shown once (copyable, gone once the page is left), listed by prefix, revoked and then
refused by the API; revoking the session's own key signs out; a secret set, listed by
name only (its value never in the page), and deleted."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from dash import screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api


def _prefix(key: str) -> str:
    return key.removeprefix("puras_live_").split(".")[0]


def _balance_status(stack: Stack, key: str) -> int:
    r = httpx.get(
        f"{stack.api_base}/v1/billing/balance",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return r.status_code


def test_a_new_key_is_shown_once_listed_by_prefix_and_revoked(
    page: Page, stack: Stack, api: Api
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.api_base)
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/keys")
    mine = page.get_by_role("row").filter(has_text=_prefix(api.key))
    expect(mine).to_contain_text("revoking it signs you out")

    page.get_by_role("button", name="Create key").click()
    once = page.get_by_role("region", name=re.compile(r"^New key "))
    expect(once).to_contain_text("it will not be shown again")
    key = once.locator("code").inner_text()
    assert re.fullmatch(r"puras_live_[^.]+\..+", key), key
    prefix = _prefix(key)
    assert _balance_status(stack, key) == 200
    once.get_by_role("button", name="Copy key").click()
    expect(once.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key

    row = page.get_by_role("row").filter(has_text=prefix)
    expect(row).to_have_count(1)
    screenshot(page, "keys")
    # Nothing keeps the key: not the tab's storage, and not the page once it was left.
    assert key not in page.evaluate("JSON.stringify(sessionStorage)")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page).to_have_url(re.compile(r"#/jobs$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(row).to_have_count(1)
    expect(page.get_by_role("region", name=re.compile(r"^New key "))).to_have_count(0)
    assert key not in page.content()

    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name="Yes, revoke").click()
    expect(row).to_have_count(0)
    assert _balance_status(stack, key) == 401
    # The session's own key still works, and still has its row.
    expect(mine).to_have_count(1)
    assert _balance_status(stack, api.key) == 200


def test_revoking_the_sessions_own_key_signs_out(page: Page, stack: Stack, api: Api) -> None:
    spare = api.http.post("/v1/keys")
    assert spare.status_code == 200, spare.text
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/keys")
    mine = page.get_by_role("row").filter(has_text=_prefix(api.key))
    other = page.get_by_role("row").filter(has_text=spare.json()["prefix"])
    expect(other).to_have_count(1)
    expect(other).not_to_contain_text("signs you out")
    mine.get_by_role("button", name="Revoke").click()
    mine.get_by_role("button", name="Revoke and sign out").click()
    expect(page.get_by_label("Project API key or admin token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert _balance_status(stack, api.key) == 401
    assert _balance_status(stack, spare.json()["key"]) == 200


def test_a_key_is_created_with_a_spend_limit(page: Page, stack: Stack, api: Api) -> None:
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/keys")
    before = len(api.http.get("/v1/keys").json()["keys"])
    page.get_by_label("Spend limit in USD (optional)").fill("0")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("a positive amount of USD")
    assert len(api.http.get("/v1/keys").json()["keys"]) == before  # nothing was sent

    page.get_by_label("Spend limit in USD (optional)").fill("2.5")
    page.get_by_label("Per").select_option("day")
    page.get_by_role("button", name="Create key").click()
    once = page.get_by_role("region", name=re.compile(r"^New key "))
    prefix = _prefix(once.locator("code").inner_text())
    expect(page.get_by_role("row").filter(has_text=prefix)).to_contain_text("of $2.50 a day")
    listed = {k["prefix"]: k for k in api.http.get("/v1/keys").json()["keys"]}
    assert listed[prefix]["spend_limit"] == {"micros": 2_500_000, "period": "day"}
    expect(page.get_by_label("Spend limit in USD (optional)")).to_have_value("")


def test_a_secret_is_set_listed_by_name_only_and_deleted(
    page: Page, stack: Stack, api: Api
) -> None:
    value = "hunter2-not-for-the-dom-4f1c"
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/secrets")
    expect(page.get_by_text("No secrets yet.")).to_be_visible()

    name = page.get_by_label("Name", exact=True)
    name.fill("api-token")
    page.get_by_label("Value", exact=True).fill(value)
    page.get_by_role("button", name="Save secret").click()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("(e.g. API_TOKEN)")).to_be_visible()
    name.fill("PATH")
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_text("PATH is set by the runner itself")).to_be_visible()
    assert api.http.get("/v1/secrets").json()["secrets"] == []  # nothing was sent

    name.fill("API_TOKEN")
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("status").filter(has_text="Saved API_TOKEN.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="API_TOKEN")
    expect(row).to_have_count(1)
    expect(page.get_by_label("Value", exact=True)).to_have_value("")
    expect(name).to_have_value("")
    assert value not in page.content()
    listed = api.http.get("/v1/secrets").json()["secrets"]
    assert [s["name"] for s in listed] == ["API_TOKEN"]
    screenshot(page, "secrets")

    # Replacing starts from the form with the name filled in; the API answers what it refuses.
    row.get_by_role("button", name="Replace API_TOKEN").click()
    expect(name).to_have_value("API_TOKEN")
    expect(page.get_by_label("Value", exact=True)).to_be_focused()
    page.get_by_label("Value", exact=True).fill("x" * (64 * 1024 + 1))
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("alert")).to_contain_text("Error 413")

    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Yes, delete API_TOKEN").click()
    expect(row).to_have_count(0)
    expect(page.get_by_text("No secrets yet.")).to_be_visible()
    assert api.http.get("/v1/secrets").json()["secrets"] == []
    assert value not in page.content()
