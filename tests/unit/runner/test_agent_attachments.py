"""``inputs.attachments`` resolved for the first user message (A6, A7), over fakes of the
sandbox's drive and of the SSRF-safe fetcher."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
from agent_fakes import (
    CLAUDE,
    GPT_4O,
    JPEG,
    PDF,
    PNG,
    TEXT_ONLY,
    ZIP,
    FakeFetcher,
    FakeSandbox,
    no_sandbox,
)
from loopback_http import LoopbackServer, Reply, serve

from puras_common.events.types import FileBlock
from puras_runner.adapters.fetch import SafeFetcher
from puras_runner.app.agent_files import (
    ATTACHMENT_FETCH_TIMEOUT_S,
    ResolvedAttachments,
    resolve_attachments,
)
from puras_runner.app.ports import Fetched
from puras_runner.domain.agent.conversation import Document, Image, ModelRoute, Text
from puras_runner.domain.agent.errors import FetchFailed
from puras_runner.domain.agent.files import MAX_FILE_BYTES, MAX_TEXT_CHARS, AttachmentError


async def resolve(
    raw: object,
    *,
    route: ModelRoute = CLAUDE,
    fetcher: FakeFetcher | None = None,
    sandbox: FakeSandbox | None = None,
) -> ResolvedAttachments:
    return await resolve_attachments(
        raw,
        route=route,
        fetcher=fetcher or FakeFetcher(),
        sandbox=sandbox.open if sandbox is not None else no_sandbox,
    )


async def test_absent_or_empty_is_nothing_and_opens_no_sandbox() -> None:
    assert await resolve(None) == ResolvedAttachments()
    assert await resolve([]) == ResolvedAttachments()


async def test_drive_image_is_read_once_through_the_sandbox() -> None:
    sandbox = FakeSandbox({"uploads/shoe.jpg": JPEG, "docs/spec.md": b"# Spec\n"})
    got = await resolve(
        [{"drive_path": "uploads/shoe.jpg"}, {"drive_path": "drive/docs/spec.md"}], sandbox=sandbox
    )
    assert sandbox.opened == 1
    assert sandbox.reads == [["uploads/shoe.jpg", "docs/spec.md"]]
    assert got.blocks == (
        Text(f"=== uploads/shoe.jpg (image/jpeg, {len(JPEG)}B) ==="),
        Image("image/jpeg", data=JPEG),
        Text("=== docs/spec.md (text/markdown, 7B) ===\n# Spec\n"),
    )
    assert got.refs == (
        FileBlock(
            kind="image",
            media_type="image/jpeg",
            drive_path="uploads/shoe.jpg",
            size=len(JPEG),
            sha256=hashlib.sha256(JPEG).hexdigest(),
        ),
    )


async def test_a_missing_drive_file_names_the_path() -> None:
    with pytest.raises(AttachmentError) as e:
        await resolve([{"drive_path": "uploads/gone.png"}], sandbox=FakeSandbox())
    assert (
        str(e.value)
        == "attachment 1 (uploads/gone.png): no such file in the drive: uploads/gone.png"
    )


async def test_drive_files_at_and_over_5_mb() -> None:
    exact = PNG + bytes(MAX_FILE_BYTES - len(PNG))
    sandbox = FakeSandbox({"a.png": exact, "b.png": exact + b"\x00"})
    got = await resolve([{"drive_path": "a.png"}], sandbox=sandbox)
    assert got.refs[0].size == MAX_FILE_BYTES
    with pytest.raises(AttachmentError) as e:
        await resolve([{"drive_path": "a.png"}, {"drive_path": "b.png"}], sandbox=sandbox)
    assert str(e.value).startswith(
        "attachment 2 (b.png): b.png is 5242881 bytes, over the 5242880-byte limit"
    )


async def test_an_unsupported_type_is_refused_saying_what_works() -> None:
    sandbox = FakeSandbox({"uploads/a.zip": ZIP, "notes.txt": b"hi"})
    with pytest.raises(AttachmentError) as e:
        await resolve(
            [{"drive_path": "notes.txt"}, {"drive_path": "uploads/a.zip"}], sandbox=sandbox
        )
    assert str(e.value) == (
        "attachment 2 (uploads/a.zip): application/zip is not supported; attach images "
        "(jpeg, png, gif, webp), PDFs or text files"
    )


async def test_the_media_type_override_wins_over_sniffing() -> None:
    # PNG bytes under a .txt name: sniffed as the PNG they are; an override still wins.
    sandbox = FakeSandbox({"odd.txt": PNG, "page.bin": b"<p>caf\xe9</p>"})
    sniffed = await resolve([{"drive_path": "odd.txt"}], sandbox=sandbox)
    assert sniffed.blocks[1] == Image("image/png", data=PNG)
    forced = await resolve(
        [{"drive_path": "page.bin", "media_type": "text/html; charset=latin-1"}], sandbox=sandbox
    )
    assert forced.blocks == (Text("=== page.bin (text/html, 11B) ===\n<p>café</p>"),)


async def test_a7_image_on_a_model_without_vision_fails_before_anything_else() -> None:
    sandbox = FakeSandbox({"uploads/shoe.jpg": JPEG})
    with pytest.raises(AttachmentError) as e:
        await resolve([{"drive_path": "uploads/shoe.jpg"}], route=TEXT_ONLY, sandbox=sandbox)
    assert str(e.value).startswith(
        "attachment 1 (uploads/shoe.jpg) is an image, and local/llama3 takes no images"
    )
    assert "use a model with vision" in str(e.value)


async def test_a7_pdf_on_gpt() -> None:
    sandbox = FakeSandbox({"spec.pdf": PDF})
    with pytest.raises(AttachmentError) as e:
        await resolve([{"drive_path": "spec.pdf"}], route=GPT_4O, sandbox=sandbox)
    assert str(e.value) == (
        "attachment 1 (spec.pdf) is a PDF, and gpt/4o takes no PDF attachments (the claude/* "
        "models do); convert its pages to images, or use a claude model"
    )


async def test_a7_pdf_url_on_gpt_fails_without_a_fetch() -> None:
    fetcher = FakeFetcher()
    with pytest.raises(
        AttachmentError, match=r"attachment 1 \(https://x.example/spec.pdf\) is a PDF"
    ):
        await resolve([{"url": "https://x.example/spec.pdf"}], route=GPT_4O, fetcher=fetcher)
    assert fetcher.calls == []


async def test_image_and_pdf_urls_are_passed_as_urls_without_a_fetch() -> None:
    fetcher = FakeFetcher()
    got = await resolve(
        [
            {"url": "https://cdn.example.com/shoe.JPG?sig=abc"},
            {"url": "https://cdn.example.com/spec.pdf"},
            {"url": "https://cdn.example.com/render", "media_type": "image/webp"},
        ],
        fetcher=fetcher,
    )
    assert fetcher.calls == []
    assert got.blocks == (
        Text("=== https://cdn.example.com/shoe.JPG (image/jpeg) ==="),
        Image("image/jpeg", url="https://cdn.example.com/shoe.JPG?sig=abc"),
        Text("=== https://cdn.example.com/spec.pdf (application/pdf) ==="),
        Document("application/pdf", url="https://cdn.example.com/spec.pdf"),
        Text("=== https://cdn.example.com/render (image/webp) ==="),
        Image("image/webp", url="https://cdn.example.com/render"),
    )
    assert [r.url for r in got.refs] == [
        "https://cdn.example.com/shoe.JPG?sig=abc",
        "https://cdn.example.com/spec.pdf",
        "https://cdn.example.com/render",
    ]
    assert all(r.size == 0 and r.sha256 == "" for r in got.refs)


async def test_a_text_url_is_fetched_and_inlined() -> None:
    url = "https://docs.example.com/readme"
    body = "Grüße\n".encode("latin-1")
    fetcher = FakeFetcher(
        {url: Fetched(url=url, status=200, media_type="text/plain", data=body, charset="latin-1")}
    )
    got = await resolve([{"url": url}], fetcher=fetcher)
    assert fetcher.calls == [(url, MAX_FILE_BYTES, ATTACHMENT_FETCH_TIMEOUT_S)]
    assert got.blocks == (Text(f"=== {url} (text/plain, 6B) ===\nGrüße\n"),)
    assert got.refs == ()


async def test_a_fetched_url_that_is_an_image_after_all_is_passed_as_a_url() -> None:
    url = "https://img.example.com/avatar?id=7"
    fetcher = FakeFetcher(
        {url: Fetched(url=url, status=200, media_type="application/octet-stream", data=PNG)}
    )
    got = await resolve([{"url": url}], fetcher=fetcher)
    assert got.blocks[1] == Image("image/png", url=url)
    assert len(fetcher.calls) == 1


async def test_a_fetched_url_of_an_unsupported_type_is_refused() -> None:
    url = "https://x.example/download"
    fetcher = FakeFetcher(
        {url: Fetched(url=url, status=200, media_type="application/zip", data=ZIP)}
    )
    with pytest.raises(
        AttachmentError,
        match=r"attachment 1 \(https://x.example/download\): application/zip is not",
    ):
        await resolve([{"url": url}], fetcher=fetcher)


async def test_a_refused_or_failed_fetch_names_the_attachment() -> None:
    url = "http://127.0.0.1:8080/secret.txt?token=t0k3n"
    fetcher = FakeFetcher({url: FetchFailed("127.0.0.1 is a loopback address, which is refused")})
    with pytest.raises(AttachmentError) as e:
        await resolve([{"url": url}], fetcher=fetcher)
    assert str(e.value) == (
        "attachment 1 (http://127.0.0.1:8080/secret.txt): 127.0.0.1 is a loopback address, "
        "which is refused"
    )
    assert "t0k3n" not in str(e.value)


async def test_a_text_url_over_the_cap_is_refused_by_the_fetcher() -> None:
    url = "https://x.example/big.txt"
    data = b"a" * (MAX_FILE_BYTES + 1)
    fetcher = FakeFetcher({url: Fetched(url=url, status=200, media_type="text/plain", data=data)})
    with pytest.raises(
        AttachmentError, match=r"attachment 1 \(https://x.example/big.txt\): the response is over"
    ):
        await resolve([{"url": url}], fetcher=fetcher)


async def test_base64_image_is_referenced_by_its_entry_index() -> None:
    got = await resolve(
        [
            {"base64": base64.b64encode(b"note").decode(), "media_type": "text/plain"},
            {"base64": base64.b64encode(PNG).decode(), "media_type": "image/png"},
        ]
    )
    assert got.blocks == (
        Text("=== attachment 1 (text/plain, 4B) ===\nnote"),
        Text(f"=== attachment 2 (image/png, {len(PNG)}B) ==="),
        Image("image/png", data=PNG),
    )
    assert got.refs == (
        FileBlock(
            kind="image",
            media_type="image/png",
            base64_index=1,
            size=len(PNG),
            sha256=hashlib.sha256(PNG).hexdigest(),
        ),
    )


async def test_base64_without_media_type_is_sniffed_or_refused_saying_it_is_missing() -> None:
    got = await resolve([{"base64": base64.b64encode(PDF).decode()}])
    assert got.blocks[1] == Document("application/pdf", data=PDF)
    with pytest.raises(AttachmentError) as e:
        await resolve([{"base64": base64.b64encode(b"\x00\x01\x02").decode()}])
    assert str(e.value).startswith("attachment 1 (base64): media_type is missing")


async def test_text_attachments_are_truncated_at_100k_chars() -> None:
    sandbox = FakeSandbox({"big.md": b"x" * (MAX_TEXT_CHARS + 1)})
    got = await resolve([{"drive_path": "big.md"}], sandbox=sandbox)
    [block] = got.blocks
    assert isinstance(block, Text)
    assert block.text.endswith(
        "x" * MAX_TEXT_CHARS + "\n[truncated: the file has 100,001 characters; the first "
        "100,000 are shown]"
    )


async def test_shapes_are_all_checked_before_any_file_is_read() -> None:
    sandbox = FakeSandbox({"a.png": PNG})
    with pytest.raises(AttachmentError, match="attachment 2 has"):
        await resolve([{"drive_path": "a.png"}, {"file": "b.png"}], sandbox=sandbox)
    assert sandbox.opened == 0


async def test_resolution_is_deterministic_for_a_resumed_run() -> None:
    sandbox = FakeSandbox({"a.png": PNG, "b.txt": b"b"})
    raw = [{"drive_path": "a.png"}, {"drive_path": "b.txt"}, {"url": "https://x.example/c.gif"}]
    assert await resolve(raw, sandbox=sandbox) == await resolve(raw, sandbox=sandbox)


async def test_a_url_override_of_a_refused_type_is_refused_without_a_fetch() -> None:
    fetcher = FakeFetcher()
    with pytest.raises(
        AttachmentError, match=r"attachment 1 \(https://x.example/a\): application/zip"
    ):
        await resolve(
            [{"url": "https://x.example/a", "media_type": "application/zip"}], fetcher=fetcher
        )
    assert fetcher.calls == []


async def test_a_url_text_override_keeps_the_servers_charset() -> None:
    url = "https://x.example/data"
    fetcher = FakeFetcher(
        {
            url: Fetched(
                url=url, status=200, media_type="text/plain", data=b"caf\xe9", charset="latin-1"
            )
        }
    )
    got = await resolve([{"url": url, "media_type": "text/csv"}], fetcher=fetcher)
    assert got.blocks == (Text(f"=== {url} (text/csv, 4B) ===\ncafé"),)


# -- over the real SSRF-safe fetcher and a loopback HTTP server ---------------------------

LOOPBACK_ROUTES = {
    "/notes": lambda _: Reply(
        body="caf\u00e9\n".encode("latin-1"),
        headers={"Content-Type": "text/plain; charset=ISO-8859-1"},
    ),
    "/avatar": lambda _: Reply(body=PNG, headers={"Content-Type": "application/octet-stream"}),
    "/photo.png": lambda _: Reply(body=PNG, headers={"Content-Type": "image/png"}),
    "/big.txt": lambda _: Reply(body=b"x" * (MAX_FILE_BYTES + 1), content_length=False),
}


@pytest.fixture
def http() -> Iterator[LoopbackServer]:
    with serve(LOOPBACK_ROUTES) as srv:
        yield srv


async def test_real_fetch_inlines_text_and_passes_images_as_urls(http: LoopbackServer) -> None:
    fetcher = SafeFetcher(allow_networks=["127.0.0.0/8"])
    got = await resolve_attachments(
        [
            {"url": http.url("/notes")},
            {"url": http.url("/avatar")},
            {"url": http.url("/photo.png")},
        ],
        route=CLAUDE,
        fetcher=fetcher,
        sandbox=no_sandbox,
    )
    assert got.blocks[0] == Text(f"=== {http.url('/notes')} (text/plain, 5B) ===\ncafé\n")
    assert got.blocks[2] == Image("image/png", url=http.url("/avatar"))
    assert got.blocks[4] == Image("image/png", url=http.url("/photo.png"))
    # The image named by its URL went to the model as a URL: the server never saw it.
    assert [s.path for s in http.seen] == ["/notes", "/avatar"]


async def test_real_fetch_over_the_cap_is_the_jobs_error(http: LoopbackServer) -> None:
    with pytest.raises(AttachmentError, match=r"^attachment 1 \(http://127.0.0.1:\d+/big.txt\): "):
        await resolve_attachments(
            [{"url": http.url("/big.txt")}],
            route=CLAUDE,
            fetcher=SafeFetcher(allow_networks=["127.0.0.0/8"]),
            sandbox=no_sandbox,
        )


async def test_real_fetch_refuses_loopback_without_an_allowlist(http: LoopbackServer) -> None:
    with pytest.raises(AttachmentError) as e:
        await resolve_attachments(
            [{"url": http.url("/notes?token=s3cr3t")}],
            route=CLAUDE,
            fetcher=SafeFetcher(),
            sandbox=no_sandbox,
        )
    assert str(e.value).startswith(f"attachment 1 ({http.url('/notes')}): ")
    assert "refused" in str(e.value)
    assert "s3cr3t" not in str(e.value)
    assert http.seen == []
