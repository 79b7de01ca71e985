"""The dashboard's deployments page in Chromium against a real stack: the list with its
skills and schemas, a push through the file input, a rollback by activating the older
deployment, deleting, and the API's refusals shown as it words them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from dash import screenshot, sign_in
from puras_bundle import pack_project
from puras_cli.devstack import Stack
from stackapi import PROJECT_DIR, Api


def _deployments(api: Api) -> list[dict[str, Any]]:
    r = api.http.get("/v1/deployments")
    assert r.status_code == 200, r.text
    return r.json()["deployments"]  # type: ignore[no-any-return]


def test_push_activate_older_and_delete(page: Page, stack: Stack, api: Api, tmp_path: Path) -> None:
    (old,) = _deployments(api)
    bundle = tmp_path / "project.zip"
    bundle.write_bytes(pack_project(PROJECT_DIR).data)
    sign_in(page, stack.api_base, api.key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    item = page.get_by_role("listitem", name=f"deployment {old['id']}")
    expect(item.get_by_text("active", exact=True)).to_be_visible()
    expect(item).to_contain_text("browser")
    expect(item).to_contain_text("Echo the input back unchanged.")
    item.get_by_text("Schemas of echo").click()
    expect(item.get_by_label("input schema of echo")).to_contain_text('"text"')

    page.get_by_label("Bundle (.zip)").set_input_files(str(bundle))
    page.get_by_label("Notes").fill("pushed from the browser")
    page.get_by_role("button", name="Push").click()
    expect(page.get_by_role("status").filter(has_text="Pushed")).to_be_visible(timeout=60_000)
    listed = _deployments(api)
    assert len(listed) == 2
    new = listed[0]
    assert (new["notes"], new["active"]) == ("pushed from the browser", True)
    new_item = page.get_by_role("listitem", name=f"deployment {new['id']}")
    expect(new_item.get_by_text("active", exact=True)).to_be_visible()
    expect(item.get_by_text("active", exact=True)).to_have_count(0)
    screenshot(page, "deployments")

    # Rollback: activate the older one.
    item.get_by_role("button", name="Activate").click()
    expect(item.get_by_text("active", exact=True)).to_be_visible()
    expect(new_item.get_by_text("active", exact=True)).to_have_count(0)
    assert [d["active"] for d in _deployments(api)] == [False, True]

    # The active one cannot go: the API's own message says so.
    item.get_by_role("button", name="Delete").click()
    item.get_by_role("button", name="Yes, delete it").click()
    expect(item.get_by_role("alert")).to_contain_text("Error 409")
    assert len(_deployments(api)) == 2

    new_item.get_by_role("button", name="Delete").click()
    new_item.get_by_role("button", name="Yes, delete it").click()
    expect(new_item).to_have_count(0)
    assert [d["id"] for d in _deployments(api)] == [old["id"]]


def test_a_bundle_that_cannot_deploy_shows_its_problems(
    page: Page, stack: Stack, api: Api, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("skills/broken/skill.yaml", "description: no code\nentrypoint: main.py:run\n")
    bundle = tmp_path / "broken.zip"
    bundle.write_bytes(buf.getvalue())
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/deployments")
    page.get_by_label("Bundle (.zip)").set_input_files(str(bundle))
    page.get_by_role("button", name="Push").click()
    alert = page.locator("form.push").get_by_role("alert")
    expect(alert).to_contain_text("Error 400")
    expect(alert).to_contain_text("skills/broken/skill.yaml")
    expect(alert).to_contain_text("main.py")
    assert len(_deployments(api)) == 1

    # Nothing chosen: said before any request.
    page.get_by_label("Bundle (.zip)").set_input_files([])
    page.get_by_role("button", name="Push").click()
    expect(page.locator("form.push").get_by_role("alert")).to_contain_text(
        "Choose the project's .zip bundle first."
    )
