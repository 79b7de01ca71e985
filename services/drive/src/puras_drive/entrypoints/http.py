"""The drive's HTTP API (SPEC D2-D7), served to the gateway only.

The gateway authenticates the caller's API key and forwards ``/v1/drive/*`` here as it
came, adding ``Authorization: Bearer <internal token>``, ``X-Puras-Project`` (the
caller's project, trusted because of the token) and ``X-Puras-Public-Base`` (the
address signed links must start with). Signed file links (``/v1/drive/file/...``) are
forwarded without a key or token: the link's signature is what admits them, and it
names the project.

Every error is ``{"error": {"code", "message"}}`` with a message saying what to fix;
bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from puras_common.drive_paths import DrivePathError
from puras_common.logging import get_logger
from puras_drive.app.service import DriveService, path_error, storage_error
from puras_drive.domain.errors import DriveApiError
from puras_drive.domain.objects import DriveStorageError, DriveTooLarge
from puras_drive.domain.paths import check_project_id
from puras_drive.domain.signing import FILE_ROUTE
from puras_drive.entrypoints.multipart_stream import MultipartReader, boundary_of
from puras_drive.entrypoints.spool import Spooled

__all__ = ["FORM_OVERHEAD", "PROJECT_HEADER", "PUBLIC_BASE_HEADER", "create_app"]

log = get_logger(__name__)

PROJECT_HEADER: Final = "x-puras-project"
PUBLIC_BASE_HEADER: Final = "x-puras-public-base"
FORM_OVERHEAD: Final = 1024 * 1024
"""Bytes of a multipart body beyond its file (boundaries, headers, the path field)."""


def create_app(service: DriveService, *, internal_token: str, ready: Callable[[], bool]) -> FastAPI:
    """The API over ``service``. An empty ``internal_token`` admits no call but signed
    file links (a drive started without one serves nothing else)."""
    app = FastAPI(
        title="Puras drive",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    token = internal_token.encode()

    def project_of(request: Request) -> str:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if (
            not token
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), token)
        ):
            raise DriveApiError.unauthorized(
                "this is the drive's internal API: call /v1/drive through the gateway "
                "with your API key"
            )
        project = request.headers.get(PROJECT_HEADER, "")
        try:
            return check_project_id(project)
        except ValueError:
            raise DriveApiError.bad_request(
                "the X-Puras-Project header does not name a project", code="invalid_project"
            ) from None

    caller = Depends(project_of)

    # -- errors --------------------------------------------------------------------------

    @app.exception_handler(DriveApiError)
    async def _api_error(_req: Request, exc: DriveApiError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(DrivePathError)
    async def _path_error(_req: Request, exc: DrivePathError) -> Response:
        err = path_error(exc)
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(DriveStorageError)
    async def _storage_error(_req: Request, exc: DriveStorageError) -> Response:
        err = storage_error(exc)
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_req: Request, _exc: ClientDisconnect) -> Response:
        err = DriveApiError.bad_request("the upload was cut off; send it again", "incomplete")
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        parts = [str(e.get("msg")) for e in exc.errors()]
        err = DriveApiError.bad_request("; ".join(parts) or "malformed request", "invalid_request")
        return JSONResponse(err.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> Response:
        log.exception("unhandled error", error=str(exc))
        return JSONResponse(
            {"error": {"code": "internal_error", "message": "internal error; see the drive log"}},
            status_code=500,
        )

    # -- health --------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    # -- D2 ------------------------------------------------------------------------------

    @app.post("/v1/drive/upload")
    async def upload(request: Request, project: str = caller) -> Response:
        limits = service.limits
        ceiling = limits.max_upload_bytes + FORM_OVERHEAD
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > ceiling:
            raise DriveApiError.too_large(_too_large(limits.max_upload_bytes))
        reader = MultipartReader(
            aiter(request.stream()),
            boundary_of(request.headers.get("content-type")),
            max_body=ceiling,
        )
        base = _public_base(request)
        path_field: str | None = None
        result: dict[str, Any] | None = None
        spooled: Spooled | None = None
        try:
            async for part in reader.parts():
                if part.name == "path" and part.filename is None:
                    path_field = await part.text()
                elif part.name == "file" and result is None and spooled is None:
                    if path_field is not None:
                        # The place is known: straight from the request to storage.
                        target = service.upload_target(path_field, part.filename)
                        result = await service.upload(project, target, part.chunks(), base)
                    else:
                        spooled = Spooled(part.filename)
                        await spooled.fill(part.chunks(), limits.max_upload_bytes)
            if spooled is not None:
                target = service.upload_target(path_field, spooled.filename)
                result = await service.upload(project, target, spooled.chunks(), base)
        except DriveTooLarge:
            raise DriveApiError.too_large(_too_large(limits.max_upload_bytes)) from None
        finally:
            if spooled is not None:
                spooled.close()
        if result is None:
            raise DriveApiError.bad_request(
                "no file in the upload; send it in a multipart field named file",
                code="missing_file",
            )
        return JSONResponse(result)

    # -- D3 ------------------------------------------------------------------------------

    @app.get("/v1/drive/list")
    async def list_(prefix: str = "", project: str = caller) -> Response:
        return JSONResponse(await service.list(project, prefix))

    # -- D4 ------------------------------------------------------------------------------

    @app.get("/v1/drive/sign")
    async def sign(
        request: Request, path: str = "", ttl: str | None = None, project: str = caller
    ) -> Response:
        return JSONResponse(await service.sign(project, path, ttl, _public_base(request)))

    @app.post("/v1/drive/share")
    async def share(request: Request, path: str = "", project: str = caller) -> Response:
        return JSONResponse(await service.share(project, path, _public_base(request)))

    @app.get(FILE_ROUTE + "/{project}/{path:path}")
    async def signed_file(
        project: str, path: str, expires: str | None = None, sig: str | None = None
    ) -> Response:
        try:
            check_project_id(project)
        except ValueError:
            raise DriveApiError.forbidden("the link names no project; ask for a new link") from None
        stack = AsyncExitStack()
        stream = await stack.enter_async_context(service.open_signed(project, path, expires, sig))
        info = stream.info

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream.chunks:
                    yield chunk
            finally:
                await stack.aclose()

        name = info.path.rsplit("/", 1)[-1]
        return StreamingResponse(
            body(),
            media_type=info.content_type,
            headers={
                "Content-Length": str(info.size),
                "Content-Disposition": f"inline; filename*=UTF-8''{quote(name, safe='')}",
                # The file is the project's, not the API's: never run as the API's page.
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "Cache-Control": "private, max-age=60",
            },
            # Also when the body is never sent (the client left first).
            background=BackgroundTask(stack.aclose),
        )

    # -- D5 ------------------------------------------------------------------------------

    @app.delete("/v1/drive/object")
    async def delete(path: str = "", project: str = caller) -> Response:
        return JSONResponse(await service.delete(project, path))

    # -- D6 ------------------------------------------------------------------------------

    @app.get("/v1/drive/zip")
    async def zip_(prefix: str = "", project: str = caller) -> Response:
        root, chunks = await service.zip(project, prefix)
        return StreamingResponse(
            chunks,
            media_type="application/zip",
            headers={"Content-Disposition": _attachment(f"{root}.zip")},
        )

    # -- D7 ------------------------------------------------------------------------------

    @app.get("/v1/drive/origin")
    async def origin(path: str = "", project: str = caller) -> Response:
        return JSONResponse(await service.origin(project, path))

    return app


def _too_large(limit: int) -> str:
    return f"the file is larger than the drive's upload limit of {limit} bytes; send a smaller one"


def _public_base(request: Request) -> str:
    """``scheme://host[:port]`` signed links start with: the gateway's public address
    from its header, else this server's own (a direct call in development)."""
    given = request.headers.get(PUBLIC_BASE_HEADER, "").strip()
    if not given:
        return str(request.base_url).rstrip("/")
    parts = urlsplit(given)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise DriveApiError.bad_request(
            "the X-Puras-Public-Base header is not scheme://host[:port]", code="invalid_base"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _attachment(filename: str) -> str:
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
