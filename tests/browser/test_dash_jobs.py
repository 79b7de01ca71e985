"""The dashboard's jobs list and job page, driven in Chromium against a real stack: the
list's filters and paging, a job's events arriving live over SSE, cancel, rerun,
feedback, and a job whose inputs hold markup showing as text."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, Page, expect

from dash import screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api

MARKUP = "<script>alert(1)</script>"


def _job_url(stack: Stack, job_id: str) -> str:
    return f"{stack.api_base}/#/jobs/{job_id}"


def test_jobs_list_filters_by_status_and_skill_and_pages(
    page: Page, stack: Stack, api: Api
) -> None:
    failed = api.run("boom", {})["id"]
    echoed = api.run("echo", {"text": "first"})["id"]
    for i in range(24):
        assert api.submit("echo", {"text": f"n{i}"}).status_code == 200
    assert api.submit("nap", {"seconds": 5}).status_code == 200  # 27 jobs: a page and 2
    sign_in(page, stack.api_base, api.key)
    expect(page).to_have_url(re.compile(r"#/jobs$"))
    rows = page.locator("table.jobs-table tbody tr")
    expect(rows).to_have_count(25)
    # The list follows the jobs still queued or running until they end, with no reload.
    expect(rows.first).to_contain_text("nap")
    expect(rows.first.locator(".st-queued, .st-running")).to_have_count(1)
    expect(rows.locator(".st-queued, .st-running")).to_have_count(0, timeout=60_000)
    expect(rows.locator(".st-ok")).to_have_count(25)
    page.get_by_role("button", name="Load older jobs").click()
    expect(rows).to_have_count(27)
    # The two oldest, in order, at the end of the list.
    expect(rows.nth(25).get_by_role("link")).to_have_accessible_name(f"job {echoed}")
    expect(rows.nth(26).get_by_role("link")).to_have_accessible_name(f"job {failed}")
    expect(page.get_by_role("button", name="Load older jobs")).to_have_count(0)
    screenshot(page, "jobs")

    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"#/jobs\?status=failed$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("boom")
    expect(rows.first).to_contain_text("failed")

    page.get_by_label("Status").select_option("")
    page.get_by_label("Skill").select_option("boom")
    expect(page).to_have_url(re.compile(r"#/jobs\?skill=boom$"))
    expect(rows).to_have_count(1)

    # The filtered view is a link: opened afresh it shows the same, with the filter set.
    page.goto(f"{stack.api_base}/#/jobs?skill=echo&status=failed")
    expect(page.get_by_text("No jobs match these filters.")).to_be_visible()
    expect(page.get_by_label("Skill")).to_have_value("echo")
    expect(page.get_by_label("Status")).to_have_value("failed")
    page.goto(f"{stack.api_base}/#/jobs?skill=echo")
    expect(rows).to_have_count(25)  # every echo job, on one page: nothing older to load
    expect(page.get_by_role("button", name="Load older jobs")).to_have_count(0)
    expect(rows.filter(has_text="boom")).to_have_count(0)


def test_jobs_page_at_phone_width_scrolls_the_table_and_collapses_the_nav(
    page: Page, stack: Stack, api: Api
) -> None:
    api.run("echo", {"text": "small screen"})
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, stack.api_base, api.key)
    expect(page.locator("table.jobs-table tbody tr")).to_have_count(1)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Jobs")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Deployments")).to_be_visible()
    page.get_by_role("button", name="Menu").click()
    # The page itself does not scroll sideways; the table does, inside its wrapper.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    assert wrap.evaluate("el => getComputedStyle(el).overflowX") == "auto"


def test_job_page_streams_events_live_and_reloads_at_the_end(
    page: Page, stack: Stack, api: Api
) -> None:
    r = api.submit("nap", {"seconds": 10})
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    sign_in(page, stack.api_base, api.key)
    page.goto(_job_url(stack, job_id))
    facts = page.locator("dl.facts")
    events = page.get_by_role("list", name="Events")
    # While the job still sleeps: the stream is live, the job running, its log line shown.
    expect(
        page.get_by_role("heading", name=re.compile("Events")).get_by_text("live")
    ).to_be_visible()
    expect(events.get_by_text("napping")).to_be_visible()
    expect(facts.get_by_text("running")).to_be_visible()
    assert api.http.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    # Then the end: the terminal event, the result, the stream closed.
    expect(events.locator("li.ev-succeeded")).to_have_count(1, timeout=30_000)
    expect(page.get_by_text("Stream ended.")).to_be_visible()
    expect(facts.get_by_text("succeeded")).to_be_visible()
    expect(page.get_by_role("region", name="Result")).to_contain_text("slept")
    types = events.locator(".ev-type").all_inner_texts()
    assert types[:3] == ["queued", "started", "log"], types
    assert types[-1] == "succeeded"
    expect(page.get_by_role("region", name="Usage")).to_contain_text("No billed model calls.")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(page.get_by_role("region", name="Feedback")).to_contain_text("No feedback yet.")
    screenshot(page, "job")


def test_cancel_a_running_job_from_its_page(page: Page, stack: Stack, api: Api) -> None:
    r = api.submit("nap", {"seconds": 30})
    job_id = r.json()["id"]
    api.wait_for_event(job_id, "started")
    sign_in(page, stack.api_base, api.key)
    page.goto(_job_url(stack, job_id))
    facts = page.locator("dl.facts")
    expect(facts.get_by_text("running")).to_be_visible()
    page.get_by_role("button", name="Cancel job").click()
    expect(facts.get_by_text("cancelled")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(page.get_by_text("Stream ended.")).to_be_visible()
    assert api.http.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_markup_shows_as_text_then_rerun_and_feedback(page: Page, stack: Stack, api: Api) -> None:
    dialogs: list[str] = []

    def on_dialog(d: Dialog) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    first = api.run("echo", {"text": MARKUP})
    assert first["result"] == {"echoed": MARKUP}
    sign_in(page, stack.api_base, api.key)
    page.goto(_job_url(stack, first["id"]))
    expect(page.get_by_role("region", name="Inputs")).to_contain_text(MARKUP)
    expect(page.get_by_role("region", name="Result")).to_contain_text(MARKUP)
    expect(page.get_by_text("Stream ended.")).to_be_visible()
    assert page.locator("#main script").count() == 0

    # Feedback: a thumb and a comment, listed once sent.
    page.get_by_label("Good").check()
    page.get_by_label("Comment").fill(f"spot on {MARKUP}")
    page.get_by_role("button", name="Send feedback").click()
    region = page.get_by_role("region", name="Feedback")
    expect(region.get_by_role("listitem")).to_have_count(1)
    expect(region.get_by_role("listitem")).to_contain_text(f"spot on {MARKUP}")
    expect(region.get_by_role("listitem")).to_contain_text("good")
    rows = api.http.get(f"/v1/jobs/{first['id']}/feedback").json()["feedback"]
    assert [(f["rating"], f["comment"]) for f in rows] == [(1, f"spot on {MARKUP}")]

    # Rerun: a new job with the same skill and inputs, and the page follows it.
    page.get_by_role("button", name="Rerun with the same inputs").click()
    expect(page).not_to_have_url(re.compile(re.escape(first["id"])))
    new_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("dl.facts").get_by_text("succeeded")).to_be_visible()
    expect(page.get_by_role("region", name="Inputs")).to_contain_text(MARKUP)
    expect(page.get_by_role("region", name="Feedback")).to_contain_text("No feedback yet.")
    again = api.http.get(f"/v1/jobs/{new_id}").json()
    assert (again["skill"], again["inputs"]) == ("echo", {"text": MARKUP})
    assert dialogs == []
