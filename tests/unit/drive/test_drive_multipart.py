"""The streaming multipart reader: parts in order whatever the chunking, data handed
out as it arrives, a body cut short refused (so a half file is never stored)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from puras_drive.domain.errors import DriveApiError
from puras_drive.entrypoints.multipart_stream import MultipartReader, boundary_of

B = b"BoUnDaRy"


def _body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += b"--" + B + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n"
        out += data + b"\r\n"
    return out + b"--" + B + b"--\r\n"


async def _chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _read(
    body: bytes, size: int, max_body: int = 10**9
) -> list[tuple[str, str | None, bytes]]:
    reader = MultipartReader(_chunked(body, size), B, max_body=max_body)
    out = []
    async for part in reader.parts():
        data = b"".join([c async for c in part.chunks()])
        out.append((part.name, part.filename, data))
    return out


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
async def test_parts_come_whole_and_in_order_whatever_the_chunks(size: int) -> None:
    parts = [("path", None, b"a/b/"), ("file", "é x.png", b"\x89PNG" + b"\r\n--" * 50)]
    assert await _read(_body(*parts), size) == parts


async def test_a_part_left_unread_is_skipped() -> None:
    body = _body(("skip", None, b"x" * 1000), ("path", None, b"p"))
    reader = MultipartReader(_chunked(body, 10), B, max_body=10**9)
    names = []
    async for part in reader.parts():
        names.append(part.name)
        if part.name == "path":
            assert await part.text() == "p"
    assert names == ["skip", "path"]


async def test_a_body_cut_short_raises_from_the_files_data() -> None:
    body = _body(("file", "f.bin", b"y" * 500))[:-40]
    with pytest.raises(DriveApiError) as cut:
        await _read(body, 50)
    assert cut.value.status == 400
    assert "closing boundary" in cut.value.message


async def test_a_body_over_its_ceiling_is_413() -> None:
    with pytest.raises(DriveApiError) as big:
        await _read(_body(("file", "f.bin", b"z" * 5000)), 100, max_body=1000)
    assert big.value.status == 413


async def _text_of_first_part(body: bytes) -> str:
    reader = MultipartReader(_chunked(body, 999), B, max_body=10**9)
    async for part in reader.parts():
        return await part.text()
    raise AssertionError("no part")


@pytest.mark.parametrize("data", [b"\xff\xfe", b"x" * 70_000])
async def test_a_field_that_is_not_utf8_or_too_long_is_400(data: bytes) -> None:
    with pytest.raises(DriveApiError) as bad:
        await _text_of_first_part(_body(("path", None, data)))
    assert bad.value.status == 400


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", "text/plain; boundary=x"]
)
def test_only_multipart_form_data_with_a_boundary_is_read(content_type: str | None) -> None:
    with pytest.raises(DriveApiError, match="multipart/form-data"):
        boundary_of(content_type)
    assert boundary_of("multipart/form-data; boundary=abc") == b"abc"
