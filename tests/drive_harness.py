"""The drive service on its own, in this process, for its HTTP tests: ``run`` of
``puras_drive.bootstrap`` against the test's nats-server (as the drive's own NATS
identity), its Postgres database and a storage backend (a temporary folder, or a bucket
of the session's S3 server), serving on a free loopback port.

The gateway is not involved: a client sends what the gateway would add (the internal
token, ``X-Puras-Project``, ``X-Puras-Public-Base``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from s3_fixtures import ACCESS_KEY, SECRET_KEY, S3Server

from puras_cli.infra.nats_server import NatsServer
from puras_cli.infra.ports import free_port
from puras_drive.bootstrap import run
from puras_drive.settings import DriveSettings

__all__ = [
    "PUBLIC_BASE",
    "TOKEN",
    "DriveServer",
    "drive_client",
    "running_drive",
]

TOKEN = "drive-internal-token-for-tests-0123456789"
PUBLIC_BASE = "https://api.puras.test:8443"
START_S = 30.0


@dataclass(frozen=True)
class DriveServer:
    base: str
    """``http://127.0.0.1:<port>``."""
    settings: DriveSettings


def drive_client(server: DriveServer, project: str | None, **kw: Any) -> httpx.AsyncClient:
    """A client sending what the gateway adds for ``project`` (none: no headers)."""
    headers = {}
    if project is not None:
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "X-Puras-Project": project,
            "X-Puras-Public-Base": PUBLIC_BASE,
        }
    return httpx.AsyncClient(base_url=server.base, headers=headers, timeout=60, **kw)


def drive_settings(
    nats: NatsServer,
    database_url: str,
    *,
    root: Path,
    s3: tuple[S3Server, str] | None = None,
    signing_secret: str = "signing-secret-of-the-tests-one",  # noqa: S107 - a test's
    **overrides: Any,
) -> DriveSettings:
    storage: dict[str, Any] = {"storage": "filesystem", "root": root}
    if s3 is not None:
        server, bucket = s3
        storage = {
            "storage": "s3",
            "s3_endpoint": server.endpoint,
            "s3_bucket": bucket,
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
        }
    creds = nats.credentials("drive")
    return DriveSettings(
        env="prod",
        nats_url=nats.address,
        nats_user=creds.user,
        nats_password=SecretStr(creds.password),
        database_url=database_url,
        http_host="127.0.0.1",
        http_port=free_port(),
        internal_token=SecretStr(TOKEN),
        signing_secret=SecretStr(signing_secret),
        **storage,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running_drive(settings: DriveSettings) -> AsyncIterator[DriveServer]:
    """The drive serving ``settings`` until the block ends; ready (every project
    provisioned, the file table caught up) when it is entered."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    server = DriveServer(base=f"http://127.0.0.1:{settings.http_port}", settings=settings)
    try:
        await _until_ready(server, task)
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(task, START_S)


async def _until_ready(server: DriveServer, task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_S
    async with httpx.AsyncClient(base_url=server.base, timeout=5) as client:
        while True:
            if task.done():
                task.result()  # its error, if it failed to start
                raise RuntimeError("the drive stopped before it was ready")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if loop.time() > deadline:
                raise TimeoutError(f"the drive was not ready after {START_S:.0f}s")
            # Each request is the condition waited on; the pause only paces the retries.
            await asyncio.sleep(0.05)
