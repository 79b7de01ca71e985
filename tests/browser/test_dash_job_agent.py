"""An agent job's page in Chromium: the model's responses, its tool calls with their
results folded in, and the cost growing as billing prices each call, all arriving over
the job's SSE stream while the page is open. The stack's runner talks to the scripted
fake of the providers' APIs (see tests/fake_providers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_providers import FakeProviders, Gate, Usage, reply_tool
from playwright.sync_api import Page, expect

from dash import off_loop, screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api, start_stack, stop_stack

AGENT_PROJECT = Path(__file__).parents[1] / "e2e" / "agent_project"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    with FakeProviders.in_thread() as f:
        yield f


@pytest.fixture(scope="module")
def stack(fake: FakeProviders) -> Iterator[Stack]:
    """The module's stack with its runner pointed at the fake (overrides conftest's)."""
    env = {"ANTHROPIC_BASE_URL": fake.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-test-key"}
    s, work = off_loop(start_stack, env)
    try:
        yield s
    finally:
        off_loop(stop_stack, s, work)


def test_an_agent_jobs_steps_and_cost_arrive_live(
    page: Page, stack: Stack, api: Api, fake: FakeProviders
) -> None:
    fake.anthropic.reset()
    r = api.push(AGENT_PROJECT, notes="agents")
    assert r.status_code == 200, r.text
    gate = Gate()
    calls = Usage(input_tokens=1_000, output_tokens=100)
    fake.anthropic.script(
        reply_tool("double", {"n": 21}, text="Let me double it.", usage=calls),
        gate.hold(reply_tool("set_output", {"answer": "42"}, usage=calls)),
    )
    job_id = api.submit("ask", {"prompt": "What is 21 doubled?"}).json()["id"]
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/jobs/{job_id}")
    try:
        assert gate.reached.wait(60), "the second model call never came"
        events = page.get_by_role("list", name="Events")
        # The first step, shown while the second model call is still held.
        expect(events.get_by_text("Let me double it.")).to_be_visible()
        tool = events.locator("details").filter(has_text="double")
        expect(tool).to_have_attribute("open", "")
        expect(tool.get_by_label("input of double")).to_contain_text('"n": 21')
        expect(tool).to_contain_text("42")
        cost = page.locator("dl.facts .cost")
        expect(cost).not_to_have_text("$0.0000")
        first_cost = cost.inner_text()
        expect(page.locator("dl.facts").get_by_text("running")).to_be_visible()
    finally:
        gate.open()
    expect(page.get_by_text("Stream ended.")).to_be_visible(timeout=30_000)
    expect(page.locator("dl.facts").get_by_text("succeeded")).to_be_visible()
    expect(page.get_by_role("region", name="Result")).to_contain_text('"answer": "42"')
    # Both calls billed: the usage table and the grown cost say the same as the API.
    job = api.http.get(f"/v1/jobs/{job_id}").json()
    usage = api.http.get(f"/v1/jobs/{job_id}/usage").json()["usage"]
    assert len(usage) == 2
    assert job["cost_micros"] == sum(u["billed_micros"] for u in usage)
    expect(page.get_by_role("region", name="Usage").locator("tbody tr")).to_have_count(2)
    expect(cost).not_to_have_text(first_cost)
    screenshot(page, "job-agent")
