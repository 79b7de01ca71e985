"""The drive's HTTP API (SPEC D2-D7) on real servers: the drive service started against
a nats-server, Postgres and each storage backend (a temporary folder, and a real
S3-compatible server on loopback), called over HTTP as the gateway calls it."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from drive_harness import (
    PUBLIC_BASE,
    TOKEN,
    DriveServer,
    drive_client,
    drive_settings,
    running_drive,
)
from pydantic import SecretStr

from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus
from puras_common.events.ids import drive_write_id
from puras_common.events.subjects import AGG_DRIVE
from puras_common.events.types import DriveFileWritten, DriveOrigin
from puras_common.ids import new_id
from puras_common.projection.rebuild import rebuild_and_compare
from puras_drive.adapters.projection import DriveFilesProjection
from puras_drive.domain.signing import file_url
from puras_drive.settings import DriveSettings

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MiB = 1024 * 1024


@pytest.fixture(params=["filesystem", "s3"])
def settings(
    request: pytest.FixtureRequest, nats_server: NatsServer, database_url: str, tmp_path: Path
) -> DriveSettings:
    s3 = None
    if request.param == "s3":
        s3 = (request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))
    return drive_settings(nats_server, database_url, root=tmp_path / "drive", s3=s3)


@pytest.fixture
async def drive(settings: DriveSettings, bus: Bus) -> AsyncIterator[DriveServer]:
    # ``bus`` first: the streams exist (as the harness's ops identity) before the drive.
    async with running_drive(settings) as server:
        yield server


@pytest.fixture
async def api(drive: DriveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with drive_client(drive, new_id()) as client:
        yield client


async def _upload(
    api: httpx.AsyncClient, data: bytes, name: str = "cat.png", path: str | None = None
) -> httpx.Response:
    form = {"path": path} if path is not None else None
    return await api.post("/v1/drive/upload", files={"file": (name, data)}, data=form)


def _project(api: httpx.AsyncClient) -> str:
    return api.headers["X-Puras-Project"]


# -- D2 upload -----------------------------------------------------------------------------


async def test_an_upload_without_a_path_goes_to_uploads_with_its_extension(
    api: httpx.AsyncClient,
) -> None:
    got = await _upload(api, PNG, "Cat.PNG")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["drive_path"].startswith("uploads/")
    assert body["drive_path"].endswith(".png")
    assert body["full_path"] == f"{_project(api)}/{body['drive_path']}"
    assert body["bytes"] == len(PNG)
    assert body["content_type"] == "image/png"
    assert body["signed_url"].startswith(f"{PUBLIC_BASE}/v1/drive/file/{_project(api)}/uploads/")


async def test_a_folder_path_takes_the_files_own_name(api: httpx.AsyncClient) -> None:
    got = await _upload(api, b"hello", "note.txt", path="docs/2024/")
    assert got.status_code == 200, got.text
    assert got.json()["drive_path"] == "docs/2024/note.txt"


async def test_a_file_path_is_taken_exactly(api: httpx.AsyncClient) -> None:
    got = await _upload(api, b"hello", "whatever.bin", path="a/b/exact name.txt")
    assert got.status_code == 200, got.text
    assert got.json()["drive_path"] == "a/b/exact name.txt"
    assert got.json()["content_type"] == "text/plain"


async def test_a_path_field_sent_before_the_file_streams_straight_to_storage(
    api: httpx.AsyncClient,
) -> None:
    boundary = "xyzBOUNDARYxyz"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\nfirst/\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="é.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + b"streamed"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    got = await api.post(
        "/v1/drive/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert got.status_code == 200, got.text
    assert got.json()["drive_path"] == "first/é.txt"
    assert got.json()["bytes"] == len(b"streamed")


async def test_a_path_field_sent_after_the_file_still_places_it(api: httpx.AsyncClient) -> None:
    boundary = "afterBOUNDARY"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="late.txt"'
            "\r\n\r\n"
        ).encode()
        + b"spooled first" * 100_000
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n'
            f"later/\r\n--{boundary}--\r\n"
        ).encode()
    )
    got = await api.post(
        "/v1/drive/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert got.status_code == 200, got.text
    assert got.json()["drive_path"] == "later/late.txt"
    assert got.json()["bytes"] == len(b"spooled first") * 100_000


async def test_an_upload_over_the_cap_streamed_without_a_length_is_413(
    api: httpx.AsyncClient,
) -> None:
    boundary = "capBOUNDARY"
    limit = 52_428_800

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.bin"\r\n\r\n'
        ).encode()
        sent = 0
        while sent < limit + 1:
            n = min(MiB, limit + 1 - sent)
            yield b"\x01" * n
            sent += n
        yield f"\r\n--{boundary}--\r\n".encode()

    got = await api.post(
        "/v1/drive/upload",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert got.status_code == 413, got.text
    assert got.json()["error"]["code"] == "payload_too_large"
    assert "52428800" in got.json()["error"]["message"]
    listed = await api.get("/v1/drive/list")
    assert listed.json()["files"] == []
    assert listed.json()["folders"] == []


async def test_a_declared_length_over_the_cap_is_413_before_the_body(
    api: httpx.AsyncClient, drive: DriveServer
) -> None:
    # Only the headers are sent: the answer must not wait for 200 MiB that never come.
    port = int(drive.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            (
                "POST /v1/drive/upload HTTP/1.1\r\nHost: drive\r\n"
                f"Authorization: Bearer {TOKEN}\r\nX-Puras-Project: {_project(api)}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {200 * MiB}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    assert status.split()[1] == b"413"


async def test_an_upload_without_a_file_part_says_to_send_one(api: httpx.AsyncClient) -> None:
    got = await api.post("/v1/drive/upload", files={"other": ("x.txt", b"x")}, data={"path": "a"})
    assert got.status_code == 400
    assert got.json()["error"]["code"] == "missing_file"
    assert "field named file" in got.json()["error"]["message"]
    plain = await api.post("/v1/drive/upload", json={"file": "x"})
    assert plain.status_code == 400
    assert "multipart/form-data" in plain.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    ["../x.txt", "a/../../x.txt", "%2e%2e/x.txt", "/etc/passwd", "a\\b.txt", "a\x00b", "a\x07b"],
)
async def test_a_traversal_in_the_upload_path_is_400(api: httpx.AsyncClient, path: str) -> None:
    got = await _upload(api, b"x", "x.txt", path=path)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["code"] == "invalid_path"
    assert (await api.get("/v1/drive/list")).json()["files"] == []


async def test_a_cut_off_body_stores_nothing(api: httpx.AsyncClient) -> None:
    boundary = "cutBOUNDARY"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\ncut.txt\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'
    ).encode() + b"half of it"
    got = await api.post(
        "/v1/drive/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert got.status_code == 400, got.text
    assert (await api.get("/v1/drive/list")).json()["files"] == []


# -- D3 list -------------------------------------------------------------------------------


async def test_list_shows_direct_children_sorted(api: httpx.AsyncClient) -> None:
    for path in ("b.txt", "a.txt", "pics/one.png", "pics/deep/two.png", "zed/x.txt"):
        assert (await _upload(api, b"x", "x.txt", path=path)).status_code == 200
    root = (await api.get("/v1/drive/list")).json()
    assert root["prefix"] == ""
    assert root["folders"] == [
        {"name": "pics", "path": "pics/"},
        {"name": "zed", "path": "zed/"},
    ]
    assert [(f["name"], f["path"], f["bytes"]) for f in root["files"]] == [
        ("a.txt", "a.txt", 1),
        ("b.txt", "b.txt", 1),
    ]
    assert root["files"][0]["created_at"].endswith("Z")
    pics = (await api.get("/v1/drive/list", params={"prefix": "./pics"})).json()
    assert pics["prefix"] == "pics/"
    assert pics["folders"] == [{"name": "deep", "path": "pics/deep/"}]
    assert [f["path"] for f in pics["files"]] == ["pics/one.png"]
    bad = await api.get("/v1/drive/list", params={"prefix": "../other"})
    assert bad.status_code == 400


async def test_list_shows_a_file_a_job_wrote_once_its_event_is_in_the_log(
    api: httpx.AsyncClient, drive: DriveServer, bus: Bus
) -> None:
    project = _project(api)
    await _job_wrote(bus, drive, project, "renders/out.png", PNG)
    listed = (await api.get("/v1/drive/list", params={"prefix": "renders/"})).json()
    assert [f["path"] for f in listed["files"]] == ["renders/out.png"]
    origin = (await api.get("/v1/drive/origin", params={"path": "renders/out.png"})).json()
    assert origin["job_id"] == "job-1"
    assert origin["skill_name"] == "painter"
    assert origin["tool"] == "media"
    assert origin["created_at"].endswith("Z")


async def _job_wrote(bus: Bus, drive: DriveServer, project: str, path: str, data: bytes) -> None:
    """What a runner does when a job writes a drive file: the file, then its event."""
    s = drive.settings
    if s.storage == "filesystem":
        target = s.root / project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    else:
        client = _s3_client(s)
        client.put_object(s.s3_bucket, f"drive/{project}/{path}", io.BytesIO(data), len(data))
    await bus.append(
        DriveFileWritten(
            path=path,
            bytes=len(data),
            sha256="",
            content_type="image/png",
            origin=DriveOrigin(job_id="job-1", skill="painter", tool="media"),
        ),
        project_id=project,
        aggregate=AGG_DRIVE,
        aggregate_id=project,
        event_id=drive_write_id(new_id()),
    )


def _s3_client(s: DriveSettings) -> Any:
    from minio import Minio

    host, secure = s.s3_location()
    return Minio(
        host,
        access_key=s.s3_access_key.get_secret_value(),
        secret_key=s.s3_secret_key.get_secret_value(),
        secure=secure,
    )


# -- D4 sign, share and the file route -----------------------------------------------------


def _local(url: str) -> str:
    """A signed URL as the gateway forwards it: path and query, on the drive."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_BASE
    return f"{parts.path}?{parts.query}"


async def test_a_signed_url_serves_the_file_until_it_expires(api: httpx.AsyncClient) -> None:
    assert (await _upload(api, PNG, path="pics/a cat?.png")).status_code == 200
    signed = await api.get("/v1/drive/sign", params={"path": "pics/a cat?.png", "ttl": "120"})
    assert signed.status_code == 200, signed.text
    body = signed.json()
    expires = int(parse_qs(urlsplit(body["url"]).query)["expires"][0])
    assert abs(expires - (time.time() + 120)) < 30
    assert body["expires_at"].endswith("Z")
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        got = await anonymous.get(_local(body["url"]))
        assert got.status_code == 200, got.text
        assert got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-length"] == str(len(PNG))
        assert got.headers["content-disposition"] == "inline; filename*=UTF-8''a%20cat%3F.png"
        tampered = _local(body["url"]).replace("sig=", "sig=0")
        assert (await anonymous.get(tampered)).status_code == 403
        other_file = _local(body["url"]).replace("a%20cat%3F.png", "b.png")
        refused = await anonymous.get(other_file)
        assert refused.status_code == 403
        assert "signature" in refused.json()["error"]["message"]


async def test_an_expired_link_is_403_even_with_a_good_signature(
    api: httpx.AsyncClient, drive: DriveServer
) -> None:
    assert (await _upload(api, b"x", path="old.txt")).status_code == 200
    secret = drive.settings.signing_secret.get_secret_value().encode()
    link = file_url(PUBLIC_BASE, secret, _project(api), "old.txt", int(time.time()) - 5)
    got = await httpx.AsyncClient(base_url=str(api.base_url)).get(_local(link.url))
    assert got.status_code == 403
    assert "expired" in got.json()["error"]["message"]


@pytest.mark.parametrize("ttl", ["0", "604801", "abc", "-5", "1.5"])
async def test_a_ttl_outside_a_week_is_400(api: httpx.AsyncClient, ttl: str) -> None:
    assert (await _upload(api, b"x", path="t.txt")).status_code == 200
    got = await api.get("/v1/drive/sign", params={"path": "t.txt", "ttl": ttl})
    assert got.status_code == 400
    assert got.json()["error"]["code"] == "invalid_ttl"


async def test_signing_a_missing_file_is_404(api: httpx.AsyncClient) -> None:
    got = await api.get("/v1/drive/sign", params={"path": "nope.txt"})
    assert got.status_code == 404
    assert (await api.post("/v1/drive/share", params={"path": "nope.txt"})).status_code == 404


async def test_a_signed_url_of_a_deleted_file_is_404(api: httpx.AsyncClient) -> None:
    assert (await _upload(api, b"x", path="gone.txt")).status_code == 200
    url = (await api.get("/v1/drive/sign", params={"path": "gone.txt"})).json()["url"]
    assert (await api.delete("/v1/drive/object", params={"path": "gone.txt"})).status_code == 200
    got = await httpx.AsyncClient(base_url=str(api.base_url)).get(_local(url))
    assert got.status_code == 404


async def test_a_share_link_lasts_ten_years_and_a_new_secret_revokes_it(
    settings: DriveSettings, bus: Bus
) -> None:
    project = new_id()
    async with running_drive(settings) as server, drive_client(server, project) as api:
        assert (await _upload(api, b"shared", path="s.txt")).status_code == 200
        shared = (await api.post("/v1/drive/share", params={"path": "s.txt"})).json()
        expires = int(parse_qs(urlsplit(shared["url"]).query)["expires"][0])
        assert expires - time.time() > 9.9 * 365 * 24 * 3600
        got = await httpx.AsyncClient(base_url=server.base).get(_local(shared["url"]))
        assert got.content == b"shared"
    rotated = settings.model_copy(
        update={"signing_secret": SecretStr("a-new-signing-secret-after-rotation")}
    )
    async with running_drive(rotated) as server:
        got = await httpx.AsyncClient(base_url=server.base).get(_local(shared["url"]))
        assert got.status_code == 403
        async with drive_client(server, project) as api:
            # The file is still there, under a new link.
            fresh = (await api.post("/v1/drive/share", params={"path": "s.txt"})).json()
            again = await httpx.AsyncClient(base_url=server.base).get(_local(fresh["url"]))
            assert again.content == b"shared"


# -- D5 delete -----------------------------------------------------------------------------


async def test_delete_a_file_a_folder_and_an_extensionless_folder(api: httpx.AsyncClient) -> None:
    for path in ("one.txt", "f/a.txt", "f/b/c.txt", "g/x.txt", "g/y.txt", "g/z/w.txt"):
        assert (await _upload(api, b"x", path=path)).status_code == 200
    got = await api.delete("/v1/drive/object", params={"path": "one.txt"})
    assert got.json() == {"deleted": 1}
    assert (await api.delete("/v1/drive/object", params={"path": "f/"})).json() == {"deleted": 2}
    assert (await api.delete("/v1/drive/object", params={"path": "g"})).json() == {"deleted": 3}
    root = (await api.get("/v1/drive/list")).json()
    assert root == {"prefix": "", "folders": [], "files": []}
    missing = await api.delete("/v1/drive/object", params={"path": "one.txt"})
    assert missing.status_code == 404
    assert (await api.delete("/v1/drive/object", params={"path": ""})).status_code == 400
    assert (await api.delete("/v1/drive/object", params={"path": "../x"})).status_code == 400


# -- D6 zip --------------------------------------------------------------------------------


async def test_a_zip_holds_every_file_under_its_root_folder(api: httpx.AsyncClient) -> None:
    files = {"album/2024/a.png": PNG, "album/2024/deep/b.txt": b"bee", "album/c.txt": b"sea"}
    for path, data in files.items():
        assert (await _upload(api, data, path=path)).status_code == 200
    assert (await _upload(api, b"out", path="other.txt")).status_code == 200
    got = await api.get("/v1/drive/zip", params={"prefix": "album/2024"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert got.headers["content-disposition"] == 'attachment; filename="2024.zip"'
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert sorted(z.namelist()) == ["2024/a.png", "2024/deep/b.txt"]
        assert z.read("2024/a.png") == PNG
        assert z.read("2024/deep/b.txt") == b"bee"
    whole = await api.get("/v1/drive/zip")
    assert whole.headers["content-disposition"] == 'attachment; filename="drive.zip"'
    with zipfile.ZipFile(io.BytesIO(whole.content)) as z:
        assert len(z.namelist()) == 4
        assert all(n.startswith("drive/") for n in z.namelist())


async def test_a_zip_of_nothing_is_404(api: httpx.AsyncClient) -> None:
    got = await api.get("/v1/drive/zip", params={"prefix": "empty/"})
    assert got.status_code == 404
    assert "no files" in got.json()["error"]["message"]


# -- D7 origin -----------------------------------------------------------------------------


async def test_an_uploads_origin_is_all_null(api: httpx.AsyncClient) -> None:
    assert (await _upload(api, b"x", path="up.txt")).status_code == 200
    got = await api.get("/v1/drive/origin", params={"path": "up.txt"})
    assert got.json() == {"job_id": None, "skill_name": None, "tool": None, "created_at": None}
    assert (await api.get("/v1/drive/origin", params={"path": "no.txt"})).status_code == 404


# -- tenancy and the token -----------------------------------------------------------------


async def test_another_project_sees_and_fetches_nothing(
    api: httpx.AsyncClient, drive: DriveServer
) -> None:
    assert (await _upload(api, b"secret", path="private/s.txt")).status_code == 200
    url = (await api.get("/v1/drive/sign", params={"path": "private/s.txt"})).json()["url"]
    other = new_id()
    async with drive_client(drive, other) as intruder:
        assert (await intruder.get("/v1/drive/list")).json()["folders"] == []
        q = {"path": "private/s.txt"}
        assert (await intruder.get("/v1/drive/sign", params=q)).status_code == 404
        assert (await intruder.get("/v1/drive/origin", params=q)).status_code == 404
        assert (await intruder.delete("/v1/drive/object", params=q)).status_code == 404
        assert (
            await intruder.get("/v1/drive/zip", params={"prefix": "private"})
        ).status_code == 404
        moved = _local(url).replace(f"/file/{_project(api)}/", f"/file/{other}/")
        assert (await intruder.get(moved)).status_code == 403
    assert (await api.get("/v1/drive/sign", params={"path": "private/s.txt"})).status_code == 200


async def test_calls_without_the_internal_token_are_401(drive: DriveServer) -> None:
    async with drive_client(drive, None) as anonymous:
        for method, path in (
            ("GET", "/v1/drive/list"),
            ("POST", "/v1/drive/upload"),
            ("GET", "/v1/drive/sign?path=a"),
            ("DELETE", "/v1/drive/object?path=a"),
            ("GET", "/v1/drive/zip"),
            ("GET", "/v1/drive/origin?path=a"),
            ("POST", "/v1/drive/share?path=a"),
        ):
            got = await anonymous.request(method, path, headers={"X-Puras-Project": "p1"})
            assert got.status_code == 401, (method, path)
            wrong = await anonymous.request(
                method, path, headers={"Authorization": "Bearer nope", "X-Puras-Project": "p1"}
            )
            assert wrong.status_code == 401
            assert wrong.json()["error"]["code"] == "unauthorized"


# -- the projection ------------------------------------------------------------------------


async def test_the_file_table_rebuilt_from_the_log_equals_the_live_one(
    api: httpx.AsyncClient, drive: DriveServer, bus: Bus
) -> None:
    for path in ("a.txt", "a.txt", "d/b.txt", "d/c.txt", "e/f.txt"):
        assert (await _upload(api, path.encode(), path=path)).status_code == 200
    assert (await api.delete("/v1/drive/object", params={"path": "d/"})).status_code == 200
    await _job_wrote(bus, drive, _project(api), "e/g.png", PNG)
    assert len((await api.get("/v1/drive/list", params={"prefix": "e"})).json()["files"]) == 2
    report = await rebuild_and_compare(
        drive.settings.database_dsn(), bus.js, DriveFilesProjection()
    )
    assert report.equal, report.render()
    assert report.tables[0].live_rows == 3
