"""What a file is and how the model is shown it (A5 to A7), without any I/O."""

from __future__ import annotations

import base64
import hashlib

import pytest
from agent_fakes import CLAUDE, GIF, GPT_4O, JPEG, PDF, PNG, TEXT_ONLY, WEBP, ZIP

from puras_common.events.types import FileBlock
from puras_runner.domain.agent.conversation import Document, Image, Text
from puras_runner.domain.agent.files import (
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    AttachmentError,
    DriveEntry,
    FileRefused,
    InlineEntry,
    MediaType,
    NotForModel,
    UrlEntry,
    check_size,
    drive_relative,
    format_size,
    header,
    inline_text,
    kind_of,
    parse_attachments,
    parse_media_type,
    show_bytes,
    show_url,
    sniff,
    url_label,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (b"GIF87a" + bytes(8), "image/gif"),
        (WEBP, "image/webp"),
        (PDF, "application/pdf"),
        (b"\xef\xbb\xbfjunk\n%PDF-1.4\n", "application/pdf"),
        (b"hello, world\n", "text/plain"),
        ("grüße\n".encode(), "text/plain"),
        (ZIP, "application/zip"),
        (b"\x1f\x8b\x08\x00" + bytes(8), "application/gzip"),
        (b"\x00\x01\x02\xff\xfe", "application/octet-stream"),
    ],
)
def test_sniff_reads_magic_numbers_then_text(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


def test_sniff_believes_the_bytes_over_a_wrong_extension() -> None:
    assert sniff(PNG, name="uploads/photo.txt") == "image/png"
    assert sniff(PDF, name="report.jpg") == "application/pdf"


def test_sniff_does_not_believe_an_image_extension_the_bytes_do_not_bear_out() -> None:
    # A "PNG" that is text is shown as text; one that is neither is not sent as an image.
    assert sniff(b"just words", name="photo.png") == "text/plain"
    assert sniff(b"\x00\x01\x02", name="photo.png") == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("docs/spec.md", "text/markdown"),
        ("conf/app.yaml", "application/yaml"),
        ("conf/app.yml", "application/yaml"),
        ("data.json", "application/json"),
        ("a.csv", "text/csv"),
        ("archive.zip", "application/zip"),
        ("notes.txt.gz", "application/gzip"),
        ("Makefile", "text/plain"),
    ],
)
def test_sniff_falls_back_to_the_name_for_text(name: str, expected: str) -> None:
    assert sniff(b"key: value\n", name=name) == expected


def test_sniff_takes_a_servers_content_type_over_the_name_and_ignores_generic_ones() -> None:
    assert sniff(b"{}", name="/export", declared="application/json") == "application/json"
    assert sniff(b"a,b\n", name="/x.csv", declared="application/octet-stream") == "text/csv"
    assert sniff(b"plain", declared="text/ html ; junk") == "text/plain"
    assert sniff(b"\x00\x01", declared="image/png") == "application/octet-stream"


def test_parse_media_type_keeps_the_charset_and_normalizes() -> None:
    assert parse_media_type("Text/Plain; charset=ISO-8859-1") == MediaType(
        "text/plain", "ISO-8859-1"
    )
    assert parse_media_type("image/jpg") == MediaType("image/jpeg")
    with pytest.raises(FileRefused, match="'png' is not a MIME type"):
        parse_media_type("png")


@pytest.mark.parametrize(
    ("media_type", "kind"),
    [
        ("image/jpeg", "image"),
        ("image/webp", "image"),
        ("application/pdf", "document"),
        ("text/markdown", "text"),
        ("application/json", "text"),
        ("application/xml", "text"),
        ("application/yaml", "text"),
        ("application/x-yaml", "text"),
        ("application/ld+json", "text"),
        ("application/atom+xml", "text"),
        ("image/svg+xml", "text"),
    ],
)
def test_kind_of_supported_types(media_type: str, kind: str) -> None:
    assert kind_of(media_type) == kind


def test_kind_of_refuses_anything_else_saying_what_works() -> None:
    with pytest.raises(FileRefused) as e:
        kind_of("application/zip")
    assert str(e.value) == (
        "application/zip is not supported; attach images (jpeg, png, gif, webp), PDFs or text files"
    )
    with pytest.raises(FileRefused, match=r"could not be recognized.*or set media_type"):
        kind_of("application/octet-stream")
    with pytest.raises(FileRefused, match="image/heic is not supported"):
        kind_of("image/heic")


def test_size_cap_is_5_mb_inclusive() -> None:
    check_size(MAX_FILE_BYTES)
    with pytest.raises(FileRefused) as e:
        check_size(MAX_FILE_BYTES + 1)
    assert "5.0MB (5,242,881 bytes), over the 5 MB cap a file" in str(e.value)


def test_format_size_and_header_as_the_docs_show_them() -> None:
    assert format_size(512) == "512B"
    assert format_size(239_718) == "234.1KB"
    assert format_size(1_258_291) == "1.2MB"
    assert header("uploads/photo.jpg", "image/jpeg", 239_718) == (
        "=== uploads/photo.jpg (image/jpeg, 234.1KB) ==="
    )
    assert header("https://x/a.png", "image/png", None) == "=== https://x/a.png (image/png) ==="


def test_inline_text_up_to_100k_chars_then_says_it_was_cut() -> None:
    exact = "a" * MAX_TEXT_CHARS
    assert inline_text(exact.encode()) == exact
    long = inline_text(("b" * (MAX_TEXT_CHARS + 5)).encode())
    assert long.startswith("b" * MAX_TEXT_CHARS + "\n[truncated")
    assert "100,005 characters; the first 100,000 are shown" in long


def test_inline_text_decodes_the_charset_and_replaces_bad_bytes() -> None:
    assert inline_text("café".encode("latin-1"), "latin-1") == "café"
    assert inline_text(b"ok \xff", None) == "ok \ufffd"
    assert inline_text(b"ok", "no-such-charset") == "ok"


def test_show_text_is_one_block_with_a_header() -> None:
    shown = show_bytes(
        b"# Spec\n", MediaType("text/markdown"), label="docs/spec.md", subject="s", route=GPT_4O
    )
    assert shown.blocks == (Text("=== docs/spec.md (text/markdown, 7B) ===\n# Spec\n"),)
    assert shown.ref is None


def test_show_image_gives_the_bytes_and_a_reference_for_the_log() -> None:
    shown = show_bytes(
        PNG, MediaType("image/png"), label="a.png", subject="s", route=GPT_4O, drive_path="a.png"
    )
    assert shown.blocks == (
        Text(f"=== a.png (image/png, {len(PNG)}B) ==="),
        Image("image/png", data=PNG),
    )
    assert shown.ref == FileBlock(
        kind="image",
        media_type="image/png",
        drive_path="a.png",
        size=len(PNG),
        sha256=hashlib.sha256(PNG).hexdigest(),
    )


def test_show_pdf_on_claude_is_a_document() -> None:
    shown = show_bytes(PDF, MediaType("application/pdf"), label="x", subject="s", route=CLAUDE)
    assert shown.blocks[1] == Document("application/pdf", data=PDF)
    assert shown.ref is not None
    assert shown.ref.kind == "document"


def test_a7_pdf_on_gpt_names_the_file_the_model_and_what_works() -> None:
    with pytest.raises(NotForModel) as e:
        show_bytes(
            PDF,
            MediaType("application/pdf"),
            label="spec.pdf",
            subject="attachment 1 (spec.pdf)",
            route=GPT_4O,
        )
    assert str(e.value) == (
        "attachment 1 (spec.pdf) is a PDF, and gpt/4o takes no PDF attachments (the "
        "claude/* models do); convert its pages to images, or use a claude model"
    )


def test_a7_image_on_a_model_without_vision() -> None:
    with pytest.raises(NotForModel, match=r"^a\.png is an image, and local/llama3 takes no"):
        show_bytes(PNG, MediaType("image/png"), label="a.png", subject="a.png", route=TEXT_ONLY)


def test_show_url_passes_the_url_and_records_it() -> None:
    shown = show_url(
        "https://cdn.example.com/a.png?sig=s3cr3t", "image/png", subject="s", route=CLAUDE
    )
    assert shown.blocks == (
        Text("=== https://cdn.example.com/a.png (image/png) ==="),
        Image("image/png", url="https://cdn.example.com/a.png?sig=s3cr3t"),
    )
    assert shown.ref == FileBlock(
        kind="image", media_type="image/png", url="https://cdn.example.com/a.png?sig=s3cr3t"
    )
    with pytest.raises(NotForModel):
        show_url("https://x/s.pdf", "application/pdf", subject="s", route=GPT_4O)


def test_url_label_drops_the_query() -> None:
    assert (
        url_label("https://h.example/p/a.pdf?X-Amz-Signature=abc#p2") == "https://h.example/p/a.pdf"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("uploads/a.jpg", "uploads/a.jpg"),
        ("drive/uploads/a.jpg", "uploads/a.jpg"),
        ("./drive/x", "x"),
    ],
)
def test_drive_relative_strips_drive(path: str, expected: str) -> None:
    assert drive_relative(path) == expected


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("https://x/a.png", "call download_url"),
        ("/etc/passwd", "starts with /"),
        ("uploads/../../etc/passwd", "'..' segment"),
        ("drive/", "not a file path"),
        ("", "not a file path"),
    ],
)
def test_drive_relative_refuses_what_is_not_a_drive_path(path: str, why: str) -> None:
    with pytest.raises(FileRefused, match=why):
        drive_relative(path)


def test_parse_attachments_each_shape() -> None:
    b64 = base64.b64encode(PNG).decode()
    entries = parse_attachments(
        [
            {"drive_path": "drive/uploads/shoe.jpg"},
            {"url": "https://cdn.example.com/spec.pdf", "media_type": "application/pdf"},
            {"base64": b64, "media_type": "image/png"},
            {"base64": f"data:image/gif;base64,{base64.b64encode(GIF).decode()}"},
        ]
    )
    assert entries == [
        DriveEntry(0, "uploads/shoe.jpg"),
        UrlEntry(1, "https://cdn.example.com/spec.pdf", MediaType("application/pdf")),
        InlineEntry(2, PNG, MediaType("image/png")),
        InlineEntry(3, GIF, MediaType("image/gif")),
    ]
    assert parse_attachments(None) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"drive_path": "a"}, "inputs.attachments is a dict; expected a list of"),
        (["uploads/a.jpg"], "attachment 1 is a str; expected an object"),
        (
            [{"drive_path": "a", "url": "https://x/a"}],
            "attachment 1 has drive_path, url; expected exactly one of",
        ),
        ([{"media_type": "image/png"}], "attachment 1 has media_type; expected exactly one"),
        (
            [{"url": "https://x/a"}, {"path": "a.png"}],
            "attachment 2 has path; expected exactly one",
        ),
        ([{"drive_path": "a", "extra": 1}], "attachment 1 has drive_path, extra;"),
        ([{"drive_path": ""}], "attachment 1: drive_path must be a non-empty string"),
        ([{"url": 3}], "attachment 1: url must be a non-empty string"),
        ([{"drive_path": "a", "media_type": 5}], "attachment 1: media_type must be a string"),
        (
            [{"drive_path": "a", "media_type": "jpeg"}],
            "attachment 1: media_type 'jpeg' is not a MIME",
        ),
        (
            [{"url": "file:///etc/passwd"}],
            "attachment 1 \\(file:///etc/passwd\\): only http and https",
        ),
        ([{"url": "ftp://x.example/a.txt"}], "only http and https URLs can be attached"),
        (
            [{"drive_path": "../secrets"}],
            "attachment 1 \\(../secrets\\) is refused: it contains a '..' segment",
        ),
        (
            [{"base64": "not base64!!", "media_type": "image/png"}],
            "attachment 1 \\(base64\\): base64 is not valid",
        ),
        ([{"base64": "data:image/png,abc"}], "a data: URL must look like"),
    ],
)
def test_parse_attachments_refuses_malformed_entries(raw: object, message: str) -> None:
    with pytest.raises(AttachmentError, match=message):
        parse_attachments(raw)


def test_parse_attachments_refuses_base64_over_the_cap_before_decoding() -> None:
    big = base64.b64encode(bytes(MAX_FILE_BYTES + 1)).decode()
    with pytest.raises(AttachmentError, match=r"attachment 1 \(base64\): it is 5.0MB"):
        parse_attachments([{"base64": big, "media_type": "text/plain"}])
    exact = base64.b64encode(bytes(MAX_FILE_BYTES)).decode()
    [entry] = parse_attachments([{"base64": exact, "media_type": "text/plain"}])
    assert isinstance(entry, InlineEntry)
    assert len(entry.data) == MAX_FILE_BYTES


def test_base64_with_line_breaks_is_fine() -> None:
    wrapped = base64.encodebytes(PDF).decode()
    assert "\n" in wrapped
    [entry] = parse_attachments([{"base64": wrapped, "media_type": "application/pdf"}])
    assert isinstance(entry, InlineEntry)
    assert entry.data == PDF
