"""The dashboard's drive page in Chromium against a real stack: uploads through the file
input with progress, folders browsed through links and breadcrumbs, a file a job wrote
with its origin linking to that job, downloads through a signed link and as a zip, a
share link that opens with no key, deletes of files and folders, and the page at phone
width."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from dash import screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api

PROJECT = Path(__file__).parent / "drive_project"
BIG = 3 * 1024 * 1024

# Records whether an upload's progress bar was ever on the page: an upload over loopback
# may finish before a locator looks, but not before the page drew its bar.
WATCH_PROGRESS = """() => {
  window.__sawProgress = false;
  new MutationObserver(() => {
    if (document.querySelector('.uploads progress')) window.__sawProgress = true;
  }).observe(document.body, {childList: true, subtree: true});
}"""


@pytest.fixture
def writer(api: Api) -> dict[str, str]:
    """The drive project deployed, and the job of its skill that wrote out/report.txt."""
    r = api.push(project_dir=PROJECT, notes="drive")
    assert r.status_code == 200, r.text
    job = api.run("writer", {"name": "report", "text": "written by a job"})
    assert job["status"] == "succeeded", job
    return job


def _row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has_text=name)


def test_upload_browse_origin_download_share_zip_and_delete(
    page: Page, stack: Stack, api: Api, writer: dict[str, str]
) -> None:
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/drive?prefix=inbox/")
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("Files to upload into inbox/").set_input_files(
        [
            FilePayload(name="big.bin", mimeType="application/octet-stream", buffer=b"\x01" * BIG),
            FilePayload(name="note.txt", mimeType="text/plain", buffer=b"uploaded by hand"),
        ]
    )
    uploads = page.locator("ul.uploads li")
    expect(uploads).to_have_count(2)
    expect(uploads.filter(has_text="inbox/big.bin")).to_contain_text("Uploaded 3.0 MiB")
    expect(uploads.filter(has_text="inbox/note.txt")).to_contain_text("Uploaded 16 B")
    assert page.evaluate("window.__sawProgress") is True
    expect(_row(page, "big.bin")).to_contain_text("3.0 MiB")
    expect(_row(page, "note.txt")).to_contain_text("16 B")
    listed = api.http.get("/v1/drive/list", params={"prefix": "inbox/"}).json()
    assert [f["path"] for f in listed["files"]] == ["inbox/big.bin", "inbox/note.txt"]

    note = _row(page, "note.txt")
    note.get_by_role("button", name="Origin").click()
    expect(page.get_by_text("Uploaded directly")).to_be_visible()

    # Up to the root by the breadcrumbs, down into the job's folder by its link.
    page.get_by_role("navigation", name="Folder").get_by_role("link", name="Drive").click()
    expect(page).to_have_url(re.compile(r"#/drive\?prefix=$|#/drive$"))
    expect(page.get_by_role("link", name="inbox/")).to_be_visible()
    page.get_by_role("link", name="out/").click()
    expect(page).to_have_url(re.compile(r"#/drive\?prefix=out%2F$"))
    report = _row(page, "report.txt")
    expect(report).to_contain_text("16 B")
    report.get_by_role("button", name="Origin").click()
    origin = page.get_by_role("link", name=writer["id"])
    expect(origin).to_have_attribute("href", f"#/jobs/{writer['id']}")
    expect(page.get_by_text("of skill writer")).to_be_visible()
    screenshot(page, "drive")

    with page.expect_download() as dl:
        report.get_by_role("button", name="Download", exact=True).click()
    assert dl.value.suggested_filename == "report.txt"
    assert Path(dl.value.path()).read_text() == "written by a job"

    report.get_by_role("button", name="Share").click()
    link = page.locator("code.share-url")
    expect(link).to_contain_text("/v1/drive/file/")
    shared = httpx.get(link.inner_text(), timeout=30)  # no key: the link is the credential
    assert shared.status_code == 200
    assert shared.text == "written by a job"
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()

    with page.expect_download() as dl:
        page.get_by_role("button", name="Download this folder as zip").click()
    assert dl.value.suggested_filename == "out.zip"
    with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as z:
        assert z.namelist() == ["out/report.txt"]
        assert z.read("out/report.txt") == b"written by a job"

    report.get_by_role("button", name="Delete").click()
    report.get_by_role("button", name="Yes, delete report.txt").click()
    expect(page.get_by_text("This folder is empty.")).to_be_visible()

    # A folder goes with everything in it.
    page.get_by_role("navigation", name="Folder").get_by_role("link", name="Drive").click()
    inbox = _row(page, "inbox/")
    inbox.get_by_role("button", name="Delete").click()
    inbox.get_by_role("button", name="Yes, delete inbox and everything in it").click()
    expect(page.get_by_text("The drive is empty.")).to_be_visible()
    assert api.http.get("/v1/drive/list").json()["files"] == []
    assert api.http.get("/v1/drive/list").json()["folders"] == []


def test_drive_at_phone_width_and_api_errors_shown_as_sent(
    page: Page, stack: Stack, api: Api, writer: dict[str, str]
) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, stack.api_base, api.key)
    page.goto(f"{stack.api_base}/#/drive?prefix=out/")
    report = _row(page, "report.txt")
    expect(report.get_by_role("button", name="Download", exact=True)).to_be_visible()
    expect(report.get_by_role("button", name="Delete")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    report.get_by_role("button", name="Origin").click()
    expect(page.get_by_role("link", name=writer["id"])).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # Files dropped on the upload area go into the folder shown, as chosen ones do.
    dropped = page.evaluate_handle(
        """() => {
          const dt = new DataTransfer();
          dt.items.add(new File(["dropped"], "dropped.txt", {type: "text/plain"}));
          return dt;
        }"""
    )
    page.get_by_role("region", name="Upload").dispatch_event("drop", {"dataTransfer": dropped})
    expect(_row(page, "dropped.txt")).to_contain_text("7 B")
    files = api.http.get("/v1/drive/list", params={"prefix": "out/"}).json()["files"]
    assert [f["path"] for f in files] == ["out/dropped.txt", "out/report.txt"]

    # A name the drive refuses: the upload fails with the API's own message.
    page.get_by_label("Files to upload into out/").set_input_files(
        [FilePayload(name="bad\\name.txt", mimeType="text/plain", buffer=b"x")]
    )
    expect(page.locator("ul.uploads").get_by_role("alert")).to_contain_text("Error 400")
