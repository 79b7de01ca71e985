"""One project's drive against another's, over the drive's HTTP API (the drive service
on real servers, called as the gateway calls it): traversal in every parameter and in
the signed file route, forged and moved signatures, links a job left in its drive, and a
project header that tries to name two projects. Nothing of the victim's is ever read,
listed, signed or deleted."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from drive_harness import DriveServer, drive_client, drive_settings, running_drive

from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus
from puras_common.ids import new_id

pytestmark = pytest.mark.integration

SECRET = b"victim's secret bytes"


@pytest.fixture
async def drive(
    nats_server: NatsServer, database_url: str, tmp_path: Path, bus: Bus
) -> AsyncIterator[DriveServer]:
    async with running_drive(drive_settings(nats_server, database_url, root=tmp_path / "d")) as s:
        yield s


@pytest.fixture
async def victim(drive: DriveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with drive_client(drive, f"victim{new_id()[:8]}") as client:
        got = await client.post(
            "/v1/drive/upload", files={"file": ("s.txt", SECRET)}, data={"path": "private/s.txt"}
        )
        assert got.status_code == 200, got.text
        yield client


@pytest.fixture
async def attacker(drive: DriveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with drive_client(drive, f"attacker{new_id()[:8]}") as client:
        yield client


def _no_leak(r: httpx.Response) -> None:
    assert r.status_code in (400, 403, 404), (r.status_code, r.text)
    assert SECRET not in r.content


def _pid(c: httpx.AsyncClient) -> str:
    return c.headers["X-Puras-Project"]


async def test_traversal_to_another_project_is_refused_in_every_parameter(
    victim: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    v = _pid(victim)
    for path in (
        f"../{v}/private/s.txt",
        f"%2e%2e/{v}/private/s.txt",
        f"%252e%252e/{v}/private/s.txt",
        f"..%2F{v}%2Fprivate%2Fs.txt",
        f"/{v}/private/s.txt",
        f"..\\{v}\\private\\s.txt",
        f"private/../../{v}/private/s.txt",
        f"a\x00/../../{v}/private/s.txt",
    ):
        q = {"path": path}
        _no_leak(await attacker.get("/v1/drive/sign", params=q))
        _no_leak(await attacker.post("/v1/drive/share", params=q))
        _no_leak(await attacker.get("/v1/drive/origin", params=q))
        _no_leak(await attacker.delete("/v1/drive/object", params=q))
        _no_leak(await attacker.get("/v1/drive/zip", params={"prefix": path}))
        _no_leak(await attacker.get("/v1/drive/list", params={"prefix": path}))
        up = await attacker.post("/v1/drive/upload", files={"file": ("x", b"x")}, data=q)
        _no_leak(up)
    # The victim's file is untouched.
    assert (await victim.get("/v1/drive/sign", params={"path": "private/s.txt"})).status_code == 200


async def test_a_project_header_naming_a_path_is_refused(
    drive: DriveServer, victim: httpx.AsyncClient
) -> None:
    for header in (f"x/../{_pid(victim)}", f"../{_pid(victim)}", "", ".staging", "a b"):
        async with drive_client(drive, header) as odd:
            got = await odd.get("/v1/drive/list", params={"prefix": "private/"})
            _no_leak(got)
            assert got.status_code == 400


async def test_forged_and_moved_signatures_are_403(
    drive: DriveServer, victim: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    v = _pid(victim)
    own = await attacker.post(
        "/v1/drive/upload", files={"file": ("m.txt", b"mine")}, data={"path": "private/s.txt"}
    )
    assert own.status_code == 200
    mine = urlsplit(own.json()["signed_url"])
    anonymous = httpx.AsyncClient(base_url=drive.base)
    # The attacker's own valid link, pointed at the victim's project: same path, same sig.
    moved = mine.path.replace(f"/file/{_pid(attacker)}/", f"/file/{v}/")
    _no_leak(await anonymous.get(f"{moved}?{mine.query}"))
    expires = "9999999999"
    for key in (b"", b"changeme", b"secret", b"dev"):
        msg = f"{v}\nprivate/s.txt\n{expires}".encode()
        sig = hmac.new(key, msg, hashlib.sha256).hexdigest()
        url = f"/v1/drive/file/{v}/private/s.txt?expires={expires}&sig={sig}"
        _no_leak(await anonymous.get(url))
    for sig in ("0" * 64, "", "zz", "A" * 10_000):
        _no_leak(
            await anonymous.get(f"/v1/drive/file/{v}/private/s.txt?expires={expires}&sig={sig}")
        )
    _no_leak(await anonymous.get(f"/v1/drive/file/{v}/private/s.txt"))
    # Traversal inside the signed route itself, with the attacker's own signature.
    for path in (
        f"%2e%2e/{v}/private/s.txt",
        f"..%2F{v}%2Fprivate%2Fs.txt",
        f"%252e%252e/{v}/private/s.txt",
    ):
        _no_leak(await anonymous.get(f"/v1/drive/file/{_pid(attacker)}/{path}?{mine.query}"))
    _no_leak(await anonymous.get(f"/v1/drive/file/..%2F{v}/private/s.txt?{mine.query}"))


async def test_a_link_a_job_left_in_its_drive_leads_nowhere(
    drive: DriveServer, victim: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    root = drive.settings.root
    mine = root / _pid(attacker)
    mine.mkdir(parents=True, exist_ok=True)
    # What a job's `ln -s` in its ./drive makes: links to the victim's folder and file.
    os.symlink(root / _pid(victim), mine / "loot")
    os.symlink(root / _pid(victim) / "private" / "s.txt", mine / "s.txt")
    for path in ("loot/private/s.txt", "s.txt"):
        _no_leak(await attacker.get("/v1/drive/sign", params={"path": path}))
        _no_leak(await attacker.post("/v1/drive/share", params={"path": path}))
    _no_leak(await attacker.get("/v1/drive/zip", params={"prefix": "loot/"}))
    zipped = await attacker.get("/v1/drive/zip")
    _no_leak(zipped)
    # Deleting through the link removes the link at most, never the victim's file.
    await attacker.delete("/v1/drive/object", params={"path": "loot/"})
    await attacker.delete("/v1/drive/object", params={"path": "loot/private/s.txt"})
    assert (root / _pid(victim) / "private" / "s.txt").read_bytes() == SECRET
