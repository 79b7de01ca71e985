"""``POST /v1/media/generate`` (SPEC S2): a job's media call, authenticated by the job's
service token and carried out by the runner running that job.

The runner holds what the call needs: the job's cost cap and its key's spend limit (Z1),
its drive, its usage events. The gateway only routes: it reads which runner minted the
token (:mod:`puras_common.job_tokens`), sends it the call, and that runner verifies the
token itself (its MAC key never leaves it). A verified answer names a file of the job's
project; the gateway adds the signed ``output_url`` the SDK returns.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlencode

import msgspec

from puras_common.job_tokens import InvalidJobToken, read_claims
from puras_gateway.app.ports import Drive, MediaRelay
from puras_gateway.domain.errors import ApiError

__all__ = ["MEDIA_FIELDS", "MediaService"]

MEDIA_FIELDS: Final = frozenset({"model", "inputs", "kind", "output_path", "output_url_path"})
OUTPUT_URL_TTL_S: Final = 3600
"""S2: the returned ``output_url`` lives about an hour."""


class MediaService:
    def __init__(
        self,
        relay: MediaRelay | None,
        drive: Drive | None,
        *,
        timeout_s: float,
        public_url: str,
    ) -> None:
        self._relay = relay
        self._drive = drive
        self._timeout = timeout_s
        self._public_url = public_url.rstrip("/")

    async def generate(
        self, authorization: str | None, body: bytes, request_base: str
    ) -> dict[str, Any]:
        token = _bearer(authorization)
        try:
            claims = read_claims(token)
        except InvalidJobToken as exc:
            raise ApiError.unauthorized(str(exc)) from None
        request = _parse(body)
        if self._relay is None:
            raise ApiError.unavailable("media generation is not available on this gateway")
        try:
            reply = await self._relay.generate(claims.runner, token, request, self._timeout)
        except LookupError:
            raise ApiError.unauthorized(
                "job token is not valid: the job it names is not running any more"
            ) from None
        except TimeoutError:
            raise ApiError(
                504, "timeout", f"the media call took longer than {self._timeout:g} s"
            ) from None
        if reply.status != 200:
            err = reply.body.get("error") if isinstance(reply.body, dict) else None
            code = str(err.get("code", "media_failed")) if isinstance(err, dict) else "media_failed"
            message = (
                str(err.get("message", "media call failed"))
                if isinstance(err, dict)
                else "media call failed"
            )
            raise ApiError(reply.status, code, message)
        out = dict(reply.body)
        out["output_url"] = await self._sign(
            claims.project_id, str(out["drive_path"]), request_base
        )
        return out

    async def _sign(self, project_id: str, path: str, request_base: str) -> str | None:
        """A signed URL of the saved output (``None`` if the drive cannot sign now: the
        file is saved and billed either way, and ``drive_path`` is authoritative)."""
        if self._drive is None:
            return None
        try:
            reply = await self._drive.forward(
                "GET",
                "/v1/drive/sign",
                query=urlencode({"path": path, "ttl": OUTPUT_URL_TTL_S}),
                headers={},
                body=None,
                project_id=project_id,
                public_base=self._public_url or request_base.rstrip("/"),
            )
        except ConnectionError:
            return None
        try:
            data = b"".join([chunk async for chunk in reply.body])
        finally:
            await reply.close()
        if reply.status != 200:
            return None
        try:
            url = json.loads(data).get("url")
        except (ValueError, AttributeError):
            return None
        return url if isinstance(url, str) else None


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise ApiError.unauthorized(
            "missing job token: send `Authorization: Bearer <PURAS_JOB_TOKEN>` (media.run "
            "does, from inside a job)"
        )
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError.unauthorized("the Authorization header must be `Bearer <job token>`")
    return value.strip()


def _parse(body: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError as exc:
        raise ApiError.bad_request(
            f"body is not valid JSON: {exc}", code="invalid_request"
        ) from None
    if not isinstance(data, dict):
        raise ApiError.bad_request(
            'send a JSON object: {"model": "<media slug>", "inputs": {...}}',
            code="invalid_request",
        )
    unknown = sorted(set(data) - MEDIA_FIELDS)
    if unknown:
        raise ApiError.bad_request(
            f"unknown field(s) {', '.join(unknown)}; the fields are "
            f"{', '.join(sorted(MEDIA_FIELDS))}",
            code="invalid_request",
        )
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError.bad_request(
            "`model` (a media slug, see GET /v1/pricing) is required", code="invalid_request"
        )
    inputs = data.get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise ApiError.bad_request("`inputs` must be an object", code="invalid_request")
    for field in ("kind", "output_path", "output_url_path"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise ApiError.bad_request(f"`{field}` must be a string", code="invalid_request")
    return data
