"""The playground: a form built from a skill's input_schema (SPEC K6), checked in the
browser before anything is sent, run streamed, and the result shown against the
output_schema (a drive image through a signed link)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from playwright.sync_api import FilePayload, Page, expect

from dash import screenshot, sign_in
from puras_cli.devstack import Stack
from stackapi import Api

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "playground_project"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def open_skill(page: Page, stack: Stack, api: Api, skill: str) -> None:
    r = api.push(project_dir=PROJECT, notes="playground")
    assert r.status_code == 200, r.text
    sign_in(page, stack.api_base, api.key)
    page.get_by_role("link", name="Playground").click()
    picker = page.get_by_label("Skill", exact=True)
    expect(picker).to_be_visible()
    picker.select_option(skill)
    expect(page).to_have_url(re.compile(rf"#/playground/{skill}$"))


def test_playground_validates_uploads_runs_and_shows_the_image(
    page: Page, stack: Stack, api: Api
) -> None:
    open_skill(page, stack, api, "stamp")
    caption = page.get_by_label("Caption")
    style = page.get_by_label("Style")
    copies = page.get_by_label("Copies")
    expect(caption).to_have_attribute("placeholder", "A few words")
    expect(copies).to_have_value("1")  # the schema's default
    # help and description of the photo, linked to its controls
    photo_file = page.get_by_label("Choose or drop a file for Photo")
    expect(photo_file).to_have_accessible_description(
        re.compile("The picture to copy.*A small PNG")
    )
    expect(photo_file).to_have_attribute("accept", "image/png,image/jpeg")

    # Nothing filled but a number out of range: every problem shows before anything is sent.
    copies.fill("9")
    page.get_by_role("button", name="Run").click()
    summary = page.get_by_role("alert").filter(has_text="problems to fix")
    expect(summary).to_contain_text("4 problems")
    for control in (caption, style, copies):
        expect(control).to_have_attribute("aria-invalid", "true")
    expect(caption).to_have_accessible_description("This field is required.")
    expect(style).to_have_accessible_description("This field is required.")
    expect(copies).to_have_accessible_description(re.compile("Must be at most 5"))
    expect(page.get_by_label("or a URL for Photo")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("status").filter(has_text="Status:")).to_have_count(0)  # not run

    # The summary's entries take the keyboard to their field.
    summary.get_by_role("button", name="Caption").click()
    expect(caption).to_be_focused()

    # A bad number is flagged as typed; fixing it clears the error at once.
    copies.fill("abc")
    expect(copies).to_have_accessible_description(re.compile("“abc” is not a number"))
    copies.fill("2")
    expect(copies).not_to_have_attribute("aria-invalid", "true")
    caption.fill("Sunset")
    expect(caption).not_to_have_attribute("aria-invalid", "true")
    style.select_option("bold")
    page.get_by_role("group", name="Tags", exact=True).get_by_role(
        "button", name="Add tags"
    ).click()
    page.get_by_role("textbox", name="Tags 1", exact=True).fill("sky")

    # A file over max_size_mb is refused before any upload.
    photo_file.set_input_files(
        files=[
            FilePayload(name="huge.png", mimeType="image/png", buffer=b"\0" * (1024 * 1024 + 10))
        ]
    )
    expect(photo_file).to_have_accessible_description(re.compile(r"huge\.png is .* at most 1 MB"))
    listed = api.http.get("/v1/drive/list", params={"prefix": "uploads/"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["files"] == [], listed.text

    image = png(160, 96, (220, 90, 30))
    photo_file.set_input_files(
        files=[FilePayload(name="sunset.png", mimeType="image/png", buffer=image)]
    )
    preview = page.get_by_role("img", name="Preview of sunset.png")
    expect(preview).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"Uploaded to the drive as uploads/.+\.png"))
    ).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="to fix")).to_have_count(0)
    expect(page.locator(".pg-request")).to_contain_text('"drive_path": "uploads/')
    screenshot(page, "playground")

    page.get_by_role("button", name="Run").click()
    result = page.get_by_role("region", name="Result", exact=True)
    expect(result.get_by_text("succeeded")).to_be_visible(timeout=60_000)
    events = page.get_by_role("log", name="Events of the run")
    expect(events).to_contain_text("started")
    expect(events).to_contain_text(f"copied {len(image)} bytes to playground/")
    job_link = page.get_by_role("link", name=re.compile(r"^Job "))
    expect(job_link).to_have_attribute("href", re.compile(r"^#/jobs/[^/]+$"))
    job_id = (job_link.get_attribute("href") or "").removeprefix("#/jobs/")

    # The result: the copy the skill wrote, shown through a signed drive link, and JSON.
    shown = result.get_by_role("img")
    expect(shown).to_have_attribute(
        "src", re.compile(r"/v1/drive/file/.+playground/.+\.png\?.*sig=")
    )
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 160", arg=shown.element_handle()
    )
    expect(result.get_by_role("region", name="Caption")).to_contain_text('"Sunset"')
    expect(result.get_by_role("region", name="Tags")).to_contain_text('"sky"')
    expect(result).to_contain_text("drive/playground/")
    screenshot(page, "playground-result")

    job = api.http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    assert job["inputs"]["photo"]["drive_path"].startswith("uploads/"), job["inputs"]
    assert set(job["inputs"]["photo"]) == {"drive_path"}
    assert job["inputs"]["copies"] == 2, job["inputs"]
    assert job["inputs"]["tags"] == ["sky"], job["inputs"]
    assert job["result"]["bytes"] == len(image)


def test_playground_picks_from_the_drive_and_sends_small_files_inline(
    page: Page, stack: Stack, api: Api
) -> None:
    up = api.http.post(
        "/v1/drive/upload",
        files={"file": ("notes.txt", b"twelve bytes", "text/plain")},
        data={"path": "docs/notes.txt"},
    )
    assert up.status_code == 200, up.text
    open_skill(page, stack, api, "collect")
    page.set_viewport_size({"width": 360, "height": 800})

    page.get_by_role("button", name="Browse drive for Drive file").click()
    drive = page.get_by_role("group", name="Drive files for Drive file")
    drive.get_by_role("button", name="docs/").click()
    drive.get_by_role("button", name="notes.txt").click()
    source = page.get_by_role("textbox", name="Drive file", exact=True)
    expect(source).to_have_value("docs/notes.txt")
    expect(source).to_be_focused()

    page.get_by_label("Choose or drop files for Clips").set_input_files(
        files=[
            FilePayload(name="a.bin", mimeType="application/octet-stream", buffer=b"a" * 5),
            FilePayload(name="b.bin", mimeType="application/octet-stream", buffer=b"b" * 7),
        ]
    )
    clips = page.get_by_role("group", name="Clips", exact=True)
    expect(clips).to_contain_text("a.bin")
    expect(clips).to_contain_text("b.bin")
    clips.get_by_role("button", name="Remove a.bin").click()
    expect(clips).not_to_contain_text("a.bin")

    extra = page.get_by_label("Extra", exact=True)
    extra.fill("{not json")
    expect(extra).to_have_accessible_description(re.compile("Not valid JSON"))
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert").filter(has_text="to fix")).to_contain_text("Extra")
    extra.fill('{"k": 1}')
    expect(extra).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Level").fill("0.5")
    page.get_by_label("Loud").check()

    # At phone width the page still fits without sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="Run").click()
    result = page.get_by_role("region", name="Result", exact=True)
    expect(result.get_by_text("succeeded")).to_be_visible(timeout=60_000)
    expect(result).to_contain_text('"source": 12')
    expect(result).to_contain_text('"clip0": 7')

    job_id = (
        page.get_by_role("link", name=re.compile(r"^Job ")).get_attribute("href") or ""
    ).removeprefix("#/jobs/")
    inputs = api.http.get(f"/v1/jobs/{job_id}").json()["inputs"]
    assert inputs["source"] == "docs/notes.txt"
    assert inputs["clips"] == [{"base64": "YmJiYmJiYg==", "media_type": "application/octet-stream"}]
    assert inputs["options"] == {"loud": True, "level": 0.5}
    assert inputs["extra"] == {"k": 1}


def test_playground_shows_the_gateways_refusal_at_the_field(
    page: Page, stack: Stack, api: Api, tmp_path: Path
) -> None:
    """The form checks the schema it loaded; when the gateway still refuses (here, a
    deployment with a stricter schema went live meanwhile) its 422 problems show at
    their fields as well."""
    open_skill(page, stack, api, "stamp")
    # a URL of the dashboard's own origin: previewed, and never fetched by the job
    page.get_by_label("or a URL for Photo").fill(f"{stack.api_base}/ui/favicon.svg")
    expect(page.get_by_role("img", name="Preview of Photo")).to_be_visible()
    page.get_by_label("Caption").fill("Sunset")
    page.get_by_label("Style").select_option("plain")

    stricter = tmp_path / "project"
    shutil.copytree(PROJECT, stricter)
    manifest = stricter / "skills" / "stamp" / "skill.yaml"
    text = manifest.read_text()
    manifest.write_text(
        text.replace("      minLength: 1\n", "      minLength: 1\n      maxLength: 3\n", 1)
    )
    r = api.push(project_dir=stricter, notes="stricter")
    assert r.status_code == 200, r.text

    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert").filter(has_text="Error 422")).to_be_visible()
    caption = page.get_by_label("Caption")
    expect(caption).to_have_attribute("aria-invalid", "true")
    expect(caption).to_have_accessible_description(re.compile("too long"))
    expect(page.get_by_role("alert").filter(has_text="to fix")).to_contain_text("Caption")
    jobs = api.http.get("/v1/jobs").json()["jobs"]
    assert jobs == [], jobs


def test_schema_form_rules_in_node() -> None:
    """The pure parts (widget choice, defaults, paths, file limits, validation and the
    mapping of errors to fields) checked by node, no browser needed."""
    script = (HERE / "schema_form_check.mjs").read_text()
    out = subprocess.run(
        ["node", "--input-type=module"],
        input=script,
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok" in out.stdout
