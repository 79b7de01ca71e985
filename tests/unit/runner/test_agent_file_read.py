"""The ``file_read`` tool (A5) and its replay for a resumed run, over a fake sandbox."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from agent_fakes import CLAUDE, GPT_4O, JPEG, PDF, PNG, TEXT_ONLY, ZIP, FakeSandbox

from puras_common.events.types import FileBlock, TextBlock
from puras_runner.app.agent_files import MAX_READ_PATHS, file_read, reread
from puras_runner.domain.agent.conversation import Document, Image, Text
from puras_runner.domain.agent.files import MAX_FILE_BYTES, MAX_TEXT_CHARS

DRIVE = {
    "uploads/photo.jpg": JPEG,
    "docs/spec.md": b"# Product spec\n",
    "renders/output.pdf": PDF,
    "uploads/a.zip": ZIP,
}


def ref(path: str, kind: str, media_type: str, data: bytes) -> FileBlock:
    return FileBlock(
        kind=kind,  # type: ignore[arg-type]
        media_type=media_type,
        drive_path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


async def test_each_file_gets_a_header_then_its_content() -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    got = await file_read(
        {"paths": ["uploads/photo.jpg", "drive/docs/spec.md", "renders/output.pdf"]},
        route=CLAUDE,
        sandbox=sandbox,
    )
    assert sandbox.reads == [["uploads/photo.jpg", "docs/spec.md", "renders/output.pdf"]]
    assert got.content == (
        Text(f"=== uploads/photo.jpg (image/jpeg, {len(JPEG)}B) ==="),
        Image("image/jpeg", data=JPEG),
        Text("=== docs/spec.md (text/markdown, 15B) ===\n# Product spec\n"),
        Text(f"=== renders/output.pdf (application/pdf, {len(PDF)}B) ==="),
        Document("application/pdf", data=PDF),
    )
    photo = ref("uploads/photo.jpg", "image", "image/jpeg", JPEG)
    pdf = ref("renders/output.pdf", "document", "application/pdf", PDF)
    assert got.refs == (photo, pdf)
    assert got.logged == (
        TextBlock(text=f"=== uploads/photo.jpg (image/jpeg, {len(JPEG)}B) ==="),
        photo,
        TextBlock(text="=== docs/spec.md (text/markdown, 15B) ===\n# Product spec\n"),
        TextBlock(text=f"=== renders/output.pdf (application/pdf, {len(PDF)}B) ==="),
        pdf,
    )
    assert not got.is_error


async def test_on_a_model_without_vision_images_are_skipped_and_text_comes_through() -> None:
    got = await file_read(
        {"paths": ["uploads/photo.jpg", "docs/spec.md", "renders/output.pdf"]},
        route=TEXT_ONLY,
        sandbox=FakeSandbox(dict(DRIVE)),
    )
    assert got.content == (
        Text(
            f"=== uploads/photo.jpg (image/jpeg, {len(JPEG)}B) ===\nerror: uploads/photo.jpg is "
            "an image, and local/llama3 takes no images (it has no vision); skipped"
        ),
        Text("=== docs/spec.md (text/markdown, 15B) ===\n# Product spec\n"),
        Text(
            f"=== renders/output.pdf (application/pdf, {len(PDF)}B) ===\nerror: renders/output.pdf "
            "is a PDF, and local/llama3 takes no PDF attachments (the claude/* models do); skipped"
        ),
    )
    assert got.refs == ()
    assert not got.is_error


async def test_a_pdf_on_gpt_is_skipped_but_its_image_is_shown() -> None:
    got = await file_read(
        {"paths": ["renders/output.pdf", "uploads/photo.jpg"]},
        route=GPT_4O,
        sandbox=FakeSandbox(dict(DRIVE)),
    )
    assert isinstance(got.content[0], Text)
    assert "gpt/4o takes no PDF" in got.content[0].text
    assert got.content[2] == Image("image/jpeg", data=JPEG)
    assert [r.drive_path for r in got.refs] == ["uploads/photo.jpg"]


async def test_per_file_errors_are_lines_and_the_call_fails_only_when_nothing_was_read() -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    got = await file_read(
        {"paths": ["uploads/missing.png", "uploads/a.zip", "docs/spec.md"]},
        route=CLAUDE,
        sandbox=sandbox,
    )
    assert got.content[:2] == (
        Text("=== uploads/missing.png ===\nerror: no such file in the drive: uploads/missing.png"),
        Text(
            f"=== uploads/a.zip (application/zip, {len(ZIP)}B) ===\nerror: application/zip is "
            "not supported; attach images (jpeg, png, gif, webp), PDFs or text files"
        ),
    )
    assert not got.is_error
    none = await file_read(
        {"paths": ["uploads/missing.png", "uploads/a.zip"]}, route=CLAUDE, sandbox=sandbox
    )
    assert none.is_error
    skipped = await file_read({"paths": ["uploads/photo.jpg"]}, route=TEXT_ONLY, sandbox=sandbox)
    assert skipped.is_error


async def test_paths_outside_the_drive_are_error_lines_and_never_read() -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    got = await file_read(
        {"paths": ["https://x.example/a.png", "../etc/passwd", "docs/spec.md"]},
        route=CLAUDE,
        sandbox=sandbox,
    )
    assert sandbox.reads == [["docs/spec.md"]]
    assert got.content[0] == Text(
        "=== https://x.example/a.png ===\nerror: https://x.example/a.png is a URL, not a drive "
        "path; call download_url to save it into the drive first"
    )
    assert isinstance(got.content[1], Text)
    assert "is refused: it contains a '..' segment" in got.content[1].text
    assert not got.is_error


async def test_files_at_and_over_5_mb() -> None:
    exact = b"a" * MAX_FILE_BYTES
    sandbox = FakeSandbox({"exact.txt": exact, "over.txt": exact + b"a"})
    got = await file_read({"paths": ["exact.txt", "over.txt"]}, route=CLAUDE, sandbox=sandbox)
    first, second = got.content
    assert isinstance(first, Text)
    assert first.text.startswith("=== exact.txt (text/plain, 5.0MB) ===")
    assert (
        "[truncated: the file has 5,242,880 characters; the first 100,000 are shown]" in first.text
    )
    assert len(first.text) < MAX_TEXT_CHARS + 200
    assert isinstance(second, Text)
    assert second.text.startswith(
        "=== over.txt ===\nerror: over.txt is 5242881 bytes, over the 5242880-byte limit"
    )


async def test_sniffing_beats_a_wrong_extension() -> None:
    got = await file_read(
        {"paths": ["renders/frame.txt"]},
        route=CLAUDE,
        sandbox=FakeSandbox({"renders/frame.txt": PNG}),
    )
    assert got.content[1] == Image("image/png", data=PNG)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, 'file_read takes {"paths": ['),
        ({"paths": [1, 2]}, "a list of drive paths"),
        ({"paths": []}, f"file_read takes 1 to {MAX_READ_PATHS} paths a call, got 0"),
        (
            {"paths": [f"f{i}.txt" for i in range(11)]},
            "file_read takes 1 to 10 paths a call, got 11",
        ),
    ],
)
async def test_bad_arguments_are_a_tool_error_the_model_sees(
    args: dict[str, Any], message: str
) -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    got = await file_read(args, route=CLAUDE, sandbox=sandbox)
    assert got.is_error
    [block] = got.content
    assert isinstance(block, Text)
    assert message in block.text
    assert got.logged == (TextBlock(text=block.text),)
    assert sandbox.reads == []


async def test_a_single_string_path_is_taken_as_one_path() -> None:
    got = await file_read({"paths": "docs/spec.md"}, route=CLAUDE, sandbox=FakeSandbox(dict(DRIVE)))
    assert not got.is_error


async def test_reread_rebuilds_the_recorded_result_from_the_drive() -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    first = await file_read(
        {"paths": ["uploads/photo.jpg", "docs/spec.md"]}, route=CLAUDE, sandbox=sandbox
    )
    assert await reread(first.logged, sandbox=sandbox) == first.content


async def test_reread_says_so_when_a_file_changed_since() -> None:
    sandbox = FakeSandbox(dict(DRIVE))
    first = await file_read({"paths": ["uploads/photo.jpg"]}, route=CLAUDE, sandbox=sandbox)
    sandbox.drive["uploads/photo.jpg"] = PNG
    again = await reread(first.logged, sandbox=sandbox)
    assert again[0] == first.content[0]
    assert isinstance(again[1], Text)
    assert "uploads/photo.jpg was shown here; it has changed" in again[1].text
    del sandbox.drive["uploads/photo.jpg"]
    gone = await reread(first.logged, sandbox=sandbox)
    assert isinstance(gone[1], Text)
    assert "changed or is gone" in gone[1].text
