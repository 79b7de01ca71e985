"""``file_read`` and drive attachments over a real agent sandbox (the tool host inside
the runner's own template engine), so the reads, the caps and the refusals are the ones
a run gets, not a fake's."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_fakes import CLAUDE, GPT_4O, JPEG, PDF, FakeFetcher
from tool_host_helpers import AgentSandbox, agent_sandbox

from puras_common.events.types import FileBlock
from puras_runner.adapters.sandbox_session import ToolHostSession
from puras_runner.app.agent_files import file_read, resolve_attachments
from puras_runner.domain.agent.conversation import Document, Image, Text
from puras_runner.domain.agent.files import MAX_FILE_BYTES, AttachmentError

pytestmark = pytest.mark.integration

MODES = ["off"] + (["namespaces"] if os.geteuid() == 0 else [])


@pytest.fixture(params=MODES)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AgentSandbox]:
    async with agent_sandbox(tmp_path, sandbox=request.param) as sandbox:
        drive = sandbox.drive()
        (drive / "uploads").mkdir(parents=True)
        (drive / "uploads" / "photo.jpg").write_bytes(JPEG)
        (drive / "uploads" / "spec.pdf").write_bytes(PDF)
        (drive / "notes.md").write_text("# Notes\n")
        (drive / "uploads" / "huge.txt").write_bytes(b"a" * (MAX_FILE_BYTES + 1))
        yield sandbox


async def test_file_read_through_the_sandbox(env: AgentSandbox) -> None:
    session = await env.open()
    got = await file_read(
        {"paths": ["drive/uploads/photo.jpg", "notes.md", "uploads/huge.txt", "../etc/passwd"]},
        route=CLAUDE,
        sandbox=session,
    )
    assert got.content[:3] == (
        Text(f"=== uploads/photo.jpg (image/jpeg, {len(JPEG)}B) ==="),
        Image("image/jpeg", data=JPEG),
        Text("=== notes.md (text/markdown, 8B) ===\n# Notes\n"),
    )
    assert got.content[3] == Text(
        "=== uploads/huge.txt ===\nerror: uploads/huge.txt is 5242881 bytes, over the "
        "5242880-byte limit"
    )
    last = got.content[4]
    assert isinstance(last, Text)
    assert last.text.startswith("=== ../etc/passwd ===\nerror: ")
    assert got.refs == (
        FileBlock(
            kind="image",
            media_type="image/jpeg",
            drive_path="uploads/photo.jpg",
            size=len(JPEG),
            sha256=hashlib.sha256(JPEG).hexdigest(),
        ),
    )
    assert not got.is_error


async def test_drive_attachments_open_the_sandbox_once(env: AgentSandbox) -> None:
    opened: list[ToolHostSession] = []

    async def opener() -> ToolHostSession:
        opened.append(await env.open())
        return opened[-1]

    got = await resolve_attachments(
        [{"drive_path": "uploads/spec.pdf"}, {"drive_path": "drive/notes.md"}],
        route=CLAUDE,
        fetcher=FakeFetcher(),
        sandbox=opener,
    )
    assert len(opened) == 1
    assert got.blocks[1] == Document("application/pdf", data=PDF)
    assert got.blocks[2] == Text("=== notes.md (text/markdown, 8B) ===\n# Notes\n")
    with pytest.raises(
        AttachmentError, match=r"^attachment 1 \(uploads/spec.pdf\) is a PDF, and gpt/4o"
    ):
        await resolve_attachments(
            [{"drive_path": "uploads/spec.pdf"}],
            route=GPT_4O,
            fetcher=FakeFetcher(),
            sandbox=opener,
        )
    with pytest.raises(AttachmentError) as e:
        await resolve_attachments(
            [{"drive_path": "uploads/gone.png"}],
            route=CLAUDE,
            fetcher=FakeFetcher(),
            sandbox=opener,
        )
    assert str(e.value) == (
        "attachment 1 (uploads/gone.png): no such file in the drive: uploads/gone.png"
    )
