"""The dashboard's usage page in Chromium against a real stack: the balance, spend by day,
skill and model as charts with their figures as tables, the period in the hash, the jobs
that cost something opening to their billed calls, and the empty states of a project
whose jobs are all deterministic.

A billed call comes from the one deterministic path to a charge: a media generation
recorded on the job's subject as the media endpoint records it, which billing prices by
the slug's published table (openai/gpt-image-2, medium, 1024x1536: 0.050 USD an image)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from dash import off_loop, screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api, bill_media_call

MEDIA_MICROS = 100_000  # two images at 0.050 USD


def _bill_media_call(stack: Stack, api: Api, job_id: str) -> None:
    """Records two generated images for the job and waits until billing charged them."""
    inputs = {"prompt": "a dot", "quality": "medium", "size": "1024x1536", "num_images": 2}
    off_loop(bill_media_call, stack.nats_url, api.project_id, job_id, inputs)


def _until_ledger_shows(page: Page, api: Api, balance: int) -> None:
    """The balance and the usage rows are billing's ledger projection, a step behind the
    job's ``job.cost`` event and announced by nothing a test could wait on: ask the API
    until both show the charge (bounded), so the page opened next shows it from the start."""
    deadline = time.monotonic() + 30
    while True:
        bal = api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
        rows = api.http.get("/v1/usage").json()["usage"]
        if bal == balance and sum(r["billed_micros"] for r in rows) == MEDIA_MICROS:
            return
        assert time.monotonic() < deadline, f"the ledger still shows {bal} and {rows}"
        page.wait_for_timeout(100)


def test_usage_shows_balance_charts_and_a_jobs_billed_calls(
    page: Page, stack: Stack, api: Api
) -> None:
    billed = api.run("echo", {"text": "a picture, please"})["id"]
    free = api.run("echo", {"text": "costs nothing"})["id"]
    _bill_media_call(stack, api, billed)
    assert api.http.get(f"/v1/jobs/{billed}").json()["cost_micros"] == MEDIA_MICROS
    _until_ledger_shows(page, api, 10_000_000 - MEDIA_MICROS)
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/usage")
    expect(page.get_by_role("region", name="Credit balance")).to_contain_text("$9.90")
    expect(page.locator(".spend-total")).to_contain_text("$0.1000 in 1 billed call")
    # 30 UTC days, today the last: one slot per day, one of them with a bar's height.
    day = page.get_by_role("figure", name="Spend by day")
    expect(day.locator("rect.chart-slot")).to_have_count(30)
    expect(day.get_by_role("img")).to_have_accessible_name(
        re.compile(r"^Spend by day: \$0\.1000 over 30 days")
    )
    expect(day.locator("rect.chart-bar title").last).to_have_text(f"{today}: $0.1000, 1 call")
    day.get_by_text("Spend by day as a table").click()
    expect(day.get_by_role("row", name=f"{today} $0.1000 1")).to_be_visible()
    skill = page.get_by_role("figure", name="Spend by skill")
    expect(skill.get_by_role("img")).to_have_accessible_name("Spend by skill: echo $0.1000")
    model = page.get_by_role("figure", name="Spend by model")
    expect(model.get_by_role("img")).to_have_accessible_name(
        "Spend by model: openai/gpt-image-2 $0.1000"
    )

    items = page.get_by_role("region", name="Jobs that cost something")
    expect(items.get_by_role("link", name=billed)).to_have_attribute("href", f"#/jobs/{billed}")
    expect(items.get_by_role("link", name=free)).to_have_count(0)
    items.get_by_role("button", name="Show calls").click()
    call = items.get_by_role("table").get_by_role("row").filter(has_text="openai/gpt-image-2")
    expect(call).to_contain_text("fal")
    expect(call).to_contain_text("$0.1000")
    expect(items.get_by_role("button", name="Hide calls")).to_have_attribute(
        "aria-expanded", "true"
    )
    screenshot(page, "usage")

    # The period lives in the hash; the same call is inside the last 7 days too.
    page.get_by_label("Period").select_option("7")
    expect(page).to_have_url(re.compile(r"#/usage\?days=7$"))
    expect(day.locator("rect.chart-slot")).to_have_count(7)
    expect(page.locator(".spend-total")).to_contain_text("$0.1000 in 1 billed call")

    # At phone width the charts stack and nothing is wider than the screen.
    page.set_viewport_size({"width": 360, "height": 740})
    expect(items.get_by_role("table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    items.get_by_role("link", name=billed).click()
    expect(page).to_have_url(re.compile(rf"#/jobs/{billed}$"))


def test_usage_of_a_project_without_billed_calls_says_so(
    page: Page, stack: Stack, api: Api
) -> None:
    api.run("echo", {"text": "deterministic"})
    assert api.http.get("/v1/usage").json()["usage"] == []
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/usage?days=90")
    expect(page.get_by_role("region", name="Credit balance")).to_contain_text("$10.00")
    expect(page.get_by_label("Period")).to_have_value("90")
    expect(page.get_by_text("No billed calls in this period.")).to_be_visible()
    expect(page.get_by_text("No job created in this period has cost anything yet")).to_be_visible()
    expect(page.get_by_role("figure")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
