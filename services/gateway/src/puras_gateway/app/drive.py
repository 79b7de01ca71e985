"""The drive API (D2-D7) as the gateway serves it: authenticate, then hand the request
to the drive service, which owns the files (:class:`~puras_gateway.app.ports.Drive`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import Drive, DriveReply
from puras_gateway.domain.errors import ApiError

__all__ = ["UPLOAD_OVERHEAD_BYTES", "DriveService"]

UPLOAD_OVERHEAD_BYTES = 1024 * 1024
"""Room for the multipart framing and the ``path`` field around a file at the cap."""


class DriveService:
    def __init__(self, drive: Drive | None, *, public_url: str, max_upload_bytes: int) -> None:
        self._drive = drive
        self._public_url = public_url.rstrip("/")
        self._max_upload = max_upload_bytes

    def public_base(self, request_base: str) -> str:
        """Where signed URLs point: the configured public address, else the one the
        caller used."""
        return self._public_url or request_base.rstrip("/")

    async def forward(
        self,
        p: Principal | None,
        method: str,
        path: str,
        *,
        query: str,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | None,
        request_base: str,
    ) -> DriveReply:
        """The drive's answer to the request, for ``p``'s project (``None``: a signed
        file URL, which carries its own proof)."""
        if self._drive is None:
            raise ApiError.unavailable("the drive is not configured on this gateway")
        if path == "/v1/drive/upload":
            declared = headers.get("content-length")
            if (
                declared
                and declared.isdigit()
                and int(declared) > (self._max_upload + UPLOAD_OVERHEAD_BYTES)
            ):
                raise ApiError.too_large(
                    f"upload is larger than the drive's {self._max_upload} byte cap"
                )
        try:
            return await self._drive.forward(
                method,
                path,
                query=query,
                headers=headers,
                body=body,
                project_id=p.project_id if p is not None else None,
                public_base=self.public_base(request_base),
            )
        except ConnectionError as exc:
            raise ApiError.unavailable(f"the drive is unavailable, try again: {exc}") from None
