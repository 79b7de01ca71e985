"""The drive service over HTTP: the gateway forwards ``/v1/drive/*`` to it.

The drive owns the files (ARCHITECTURE §1); the gateway owns the caller. A forwarded
request carries the drive's internal token and the caller's project as the gateway
authenticated it, and only the headers the drive needs: nothing a client sends can name
another project or pose as the gateway (``X-Puras-*`` headers of the client are never
passed on). Bodies stream both ways, so a 50 MB upload or a zip never sits whole in the
gateway's memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

import httpx

from puras_gateway.app.ports import DriveReply

__all__ = ["HttpDrive"]

FORWARDED_REQUEST_HEADERS: Final = ("content-type", "content-length", "range")
"""What of the client's request the drive sees besides the path and the query."""
FORWARDED_REPLY_HEADERS: Final = (
    "content-type",
    "content-length",
    "content-disposition",
    "cache-control",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-range",
)


class HttpDrive:
    """:class:`~puras_gateway.app.ports.Drive` over the drive service's HTTP API."""

    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient | None = None) -> None:
        self._token = token
        self._http = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            # Uploads and zips of 50 MB take a while on a slow link: the read timeout is
            # between chunks, not for the whole body.
            timeout=httpx.Timeout(connect=5.0, read=120.0, write=120.0, pool=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def forward(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | None,
        project_id: str | None,
        public_base: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> DriveReply:
        out = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := headers.get(k)) is not None}
        out["x-puras-public-base"] = public_base
        if project_id is not None:
            out["authorization"] = f"Bearer {self._token}"
            out["x-puras-project"] = project_id
        if extra_headers:
            out.update(extra_headers)
        request = self._http.build_request(
            method, path, params=httpx.QueryParams(query), headers=out, content=body
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"the drive service did not answer: {exc}") from exc
        reply_headers = {
            k: v for k in FORWARDED_REPLY_HEADERS if (v := response.headers.get(k)) is not None
        }
        return DriveReply(
            status=response.status_code,
            headers=reply_headers,
            body=response.aiter_raw(),
            close=response.aclose,
        )
