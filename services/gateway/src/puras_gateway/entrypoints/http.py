"""The /v1 HTTP API (SPEC §13) as a FastAPI app over the gateway's use cases.

Handlers read raw bodies and answer with msgspec-encoded bytes: the submit path is the
product's hot path and pays for no model validation it does not need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from puras_common.logging import get_logger
from puras_gateway.app.admin import (
    CreateKeyBody,
    CreateProjectBody,
    GrantBody,
    PolicyBody,
    SpendLimitBody,
)
from puras_gateway.app.audit import parse_settle
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import DriveReply
from puras_gateway.app.secrets import MAX_SECRET_BODY_BYTES
from puras_gateway.bootstrap import Gateway
from puras_gateway.dashboard import mount_dashboard
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.feedback import MAX_FEEDBACK_BODY_BYTES, parse_feedback
from puras_gateway.domain.requests import (
    check_text_field,
    parse_bool,
    parse_idempotency_key,
    parse_json_body,
    parse_list_params,
    parse_submit_body,
    parse_submit_mode,
)
from puras_gateway.entrypoints.edge import EdgeGuardMiddleware
from puras_gateway.entrypoints.openapi import install_openapi
from puras_gateway.entrypoints.raw_route import RawRoute
from puras_gateway.entrypoints.tracing import TraceContextMiddleware

__all__ = ["create_app"]

log = get_logger(__name__)
_enc = msgspec.json.Encoder()


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _enc.encode(content)


def _sse(gen: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, read once: straight from ``receive`` (a small body, nearly every
    one the API takes, comes in one message), refused as soon as it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError.too_large(f"request body is larger than {limit} bytes")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError.too_large(f"request body is larger than {limit} bytes")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


T = TypeVar("T")

DRIVE_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/drive/upload"),
    ("GET", "/v1/drive/list"),
    ("GET", "/v1/drive/sign"),
    ("POST", "/v1/drive/share"),
    ("DELETE", "/v1/drive/object"),
    ("GET", "/v1/drive/zip"),
    ("GET", "/v1/drive/origin"),
)
"""The drive API (SPEC D2-D7), served by the drive service behind the gateway."""


def _streamed(reply: DriveReply) -> StreamingResponse:
    return StreamingResponse(
        reply.body,
        status_code=reply.status,
        headers=dict(reply.headers),
        background=BackgroundTask(reply.close),
    )


async def _optional_body(request: Request, typ: type[T]) -> T | None:
    """A JSON body that may be left out (no body, or an empty one)."""
    raw = await _body(request, 64 * 1024)
    return parse_json_body(raw, typ) if raw.strip() else None


def create_app(gw: Gateway) -> FastAPI:
    s = gw.settings
    app = FastAPI(
        title="Puras API",
        version="0.1.0",
        description="Skills as jobs: deployments, jobs, keys and credit (SPEC §13).",
        lifespan=gw.lifespan,
        # Our own middleware continues the caller's trace (TraceContextMiddleware, also
        # when nothing is exported); FastAPI's native telemetry would add per-request
        # spans, metrics and log records on the hot path on top of it.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    # Every handler parses its own request: no dependency solving per call.
    app.router.route_class = RawRoute

    app.add_middleware(TraceContextMiddleware)
    if s.cors_origins:
        # Browser apps on other origins (the TypeScript client): the headers a client
        # sends and the one a submit stream answers with must be allowed through.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=s.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key", "last-event-id"],
            expose_headers=["Puras-Job-Id"],
            max_age=600,
        )
    # Added last, so it runs first: a request it refuses never reaches routing.
    app.add_middleware(EdgeGuardMiddleware)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> Response:
        return JSON(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        err = ApiError.bad_request("; ".join(parts) or "malformed request", code="invalid_request")
        return JSON(err.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSON(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> Response:
        log.exception("unhandled error", error=str(exc))
        return JSON(
            {"error": {"code": "internal_error", "message": "internal error; see the gateway log"}},
            status_code=500,
        )

    # -- jobs (first: routes match in order, and submit is the hot path) -------------

    @app.post("/v1/jobs")
    async def submit_job(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        q = request.query_params
        mode = parse_submit_mode(q.get("wait"), q.get("stream"), q.get("timeout"), s.default_wait_s)
        body = parse_submit_body(await _body(request, s.max_body_bytes))
        key = parse_idempotency_key(request.headers.get("idempotency-key"))
        out = await gw.app.jobs.submit(p, body, mode, key)
        if isinstance(out, dict):
            return JSON(out)
        resp = _sse(out.frames)
        resp.headers["Puras-Job-Id"] = out.job_id
        return resp

    @app.get("/v1/jobs")
    async def list_jobs(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        q = request.query_params
        params = parse_list_params(q.get("status"), q.get("limit"), q.get("cursor"), q.get("skill"))
        return JSON(await gw.app.jobs.list_jobs(p, params))

    @app.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.jobs.get(p, job_id))

    @app.get("/v1/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.jobs.events(p, job_id))

    @app.get("/v1/jobs/{job_id}/usage")
    async def job_usage(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.jobs.usage(p, job_id))

    @app.post("/v1/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.jobs.cancel(p, job_id, s.cancel_wait_s))

    @app.post("/v1/jobs/{job_id}/feedback")
    async def give_feedback(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        fb = parse_feedback(await _body(request, MAX_FEEDBACK_BODY_BYTES))
        return JSON(await gw.app.feedback.give(p, job_id, fb))

    @app.get("/v1/jobs/{job_id}/feedback")
    async def list_feedback(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.feedback.list(p, job_id))

    @app.get("/v1/jobs/{job_id}/feedback/stats")
    async def feedback_stats(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.feedback.stats(p, job_id))

    @app.get("/v1/jobs/{job_id}/stream")
    async def job_stream(job_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        after = 0
        if last:
            if not last.strip().isdigit():
                raise ApiError.bad_request(
                    "Last-Event-ID must be the integer id of an event", code="invalid_request"
                )
            after = int(last)
        return _sse(await gw.app.jobs.attach(p, job_id, after))

    # -- health --------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSON({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        problems = gw.readiness_problems()
        if problems:
            return JSON({"status": "starting", "waiting_for": problems}, status_code=503)
        # Serving, but an operator is needed (quarantined events): 200, stay in rotation.
        details = gw.degraded()
        if details:
            return JSON({"status": "degraded", **details})
        return JSON({"status": "ready"})

    # -- drive (D2-D7) and media (S2) ---------------------------------------------------

    async def _to_drive(request: Request, p: Principal | None, path: str) -> Response:
        body = request.stream() if request.method in ("POST", "PUT") else None
        reply = await gw.app.drive.forward(
            p,
            request.method,
            path,
            query=request.url.query,
            headers=request.headers,
            body=body,
            request_base=str(request.base_url),
        )
        return _streamed(reply)

    def _drive_route(method: str, path: str) -> None:
        async def handler(request: Request) -> Response:
            p = gw.app.auth.key(request.headers.get("authorization"))
            return await _to_drive(request, p, path)

        handler.__name__ = f"drive_{path.rsplit('/', 1)[-1]}"
        app.add_api_route(path, handler, methods=[method])

    for _method, _path in DRIVE_ROUTES:
        _drive_route(_method, _path)

    @app.get("/v1/drive/file/{rest:path}")
    async def drive_file(rest: str, request: Request) -> Response:
        # A signed URL carries its own proof (checked by the drive): no key. The path goes
        # on as the client encoded it, so the signature is checked over the same bytes.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        return await _to_drive(request, None, raw.decode("latin-1"))

    @app.post("/v1/media/generate")
    async def media_generate(request: Request) -> Response:
        body = await _body(request, 1024 * 1024)
        out = await gw.app.media.generate(
            request.headers.get("authorization"), body, str(request.base_url)
        )
        return JSON(out)

    # -- deployments ---------------------------------------------------------------------

    @app.post("/v1/deployments")
    async def create_deployment(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError.bad_request(
                "send multipart/form-data with the zip in a `bundle` file field "
                "(and optional `notes`, `activate`)",
                code="invalid_request",
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > s.max_bundle_bytes + 1024 * 1024:
            raise ApiError.too_large(f"bundle is larger than {s.max_bundle_bytes} bytes")
        try:
            form = await request.form(max_files=2, max_fields=20, max_part_size=1024 * 1024)
        except Exception as exc:  # the multipart parser's errors are the client's fault
            raise ApiError.bad_request(
                f"malformed multipart body: {exc}", code="invalid_request"
            ) from exc
        try:
            bundle = form.get("bundle")
            if bundle is None or isinstance(bundle, str):
                raise ApiError.bad_request(
                    "multipart field `bundle` (the project zip, sent as a file) is required",
                    code="invalid_request",
                )
            data = await bundle.read(s.max_bundle_bytes + 1)
            if len(data) > s.max_bundle_bytes:
                raise ApiError.too_large(f"bundle is larger than {s.max_bundle_bytes} bytes")
            notes = form.get("notes") or ""
            activate = form.get("activate")
            # Z7: `wait=false` (form field or query parameter) answers before the build.
            wait_field = form.get("wait", request.query_params.get("wait"))
            if (
                not isinstance(notes, str)
                or (activate is not None and not isinstance(activate, str))
                or (wait_field is not None and not isinstance(wait_field, str))
            ):
                raise ApiError.bad_request(
                    "`notes`, `activate` and `wait` are text fields", code="invalid_request"
                )
            check_text_field("notes", notes)
            act = True if activate is None or activate == "" else parse_bool("activate", activate)
            wait = True if not wait_field else parse_bool("wait", wait_field)
        finally:
            await form.close()
        return JSON(await gw.app.deployments.create(p, data, notes, act, wait))

    @app.get("/v1/deployments")
    async def list_deployments(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.deployments.list(p))

    @app.post("/v1/deployments/{deployment_id}/activate")
    async def activate_deployment(deployment_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.deployments.activate(p, deployment_id))

    @app.delete("/v1/deployments/{deployment_id}")
    async def delete_deployment(deployment_id: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.deployments.delete(p, deployment_id))

    @app.get("/v1/skills")
    async def list_skills(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(gw.app.deployments.skills(p))

    # -- keys and balance ----------------------------------------------------------------

    @app.post("/v1/keys")
    async def create_key(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        body = await _optional_body(request, CreateKeyBody)
        return JSON(await gw.app.admin.create_key(p.project_id, by="key", body=body))

    @app.get("/v1/keys")
    async def list_keys(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.admin.list_keys(p.project_id))

    @app.delete("/v1/keys/{prefix}")
    async def revoke_key(prefix: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.admin.revoke_key(p.project_id, prefix))

    @app.put("/v1/keys/{prefix}/spend_limit")
    async def set_spend_limit(prefix: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        body = parse_json_body(await _body(request, 64 * 1024), SpendLimitBody, "spend limit")
        return JSON(await gw.app.admin.set_spend_limit(p.project_id, prefix, body))

    @app.delete("/v1/keys/{prefix}/spend_limit")
    async def lift_spend_limit(prefix: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.admin.set_spend_limit(p.project_id, prefix, None))

    @app.get("/v1/billing/policy")
    async def billing_policy(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(gw.app.admin.policy(p.project_id))

    @app.put("/v1/billing/policy")
    async def set_billing_policy(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        body = parse_json_body(await _body(request, 64 * 1024), PolicyBody, "billing policy")
        return JSON(await gw.app.admin.set_policy(p.project_id, body))

    @app.get("/v1/billing/balance")
    async def balance(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON({"credit_balance_micros": await gw.app.reads.balance(p.project_id)})

    @app.get("/v1/usage")
    async def usage(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.usage.report(p, request.query_params))

    # -- secrets (X1): names only, never a value ------------------------------------------

    @app.get("/v1/secrets")
    async def list_secrets(request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.secrets.list(p.project_id))

    @app.put("/v1/secrets/{name}")
    async def set_secret(name: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        raw = await _body(request, MAX_SECRET_BODY_BYTES)
        return JSON(await gw.app.secrets.set(p.project_id, name, raw))

    @app.delete("/v1/secrets/{name}")
    async def delete_secret(name: str, request: Request) -> Response:
        p = gw.app.auth.key(request.headers.get("authorization"))
        return JSON(await gw.app.secrets.delete(p.project_id, name))

    # -- pricing (public, T1) ------------------------------------------------------------

    @app.get("/v1/pricing")
    async def pricing() -> Response:
        return JSON(gw.app.pricing.listing())

    # -- admin ---------------------------------------------------------------------------

    @app.post("/v1/admin/projects")
    async def admin_create_project(request: Request) -> Response:
        gw.app.auth.admin(request.headers.get("authorization"))
        body = parse_json_body(await _body(request, 64 * 1024), CreateProjectBody)
        return JSON(await gw.app.admin.create_project(body))

    @app.post("/v1/admin/projects/{project_id}/keys")
    async def admin_create_key(project_id: str, request: Request) -> Response:
        gw.app.auth.admin(request.headers.get("authorization"))
        body = await _optional_body(request, CreateKeyBody)
        return JSON(await gw.app.admin.create_key(project_id, by="admin", body=body))

    @app.get("/v1/admin/projects")
    async def admin_list_projects(request: Request) -> Response:
        gw.app.auth.admin(request.headers.get("authorization"))
        return JSON(await gw.app.admin.list_projects())

    @app.get("/v1/admin/projects/{project_id}/keys")
    async def admin_list_keys(project_id: str, request: Request) -> Response:
        gw.app.auth.admin(request.headers.get("authorization"))
        gw.app.admin.require_project(project_id)
        return JSON(await gw.app.admin.list_keys(project_id))

    @app.delete("/v1/admin/projects/{project_id}/keys/{prefix}")
    async def admin_revoke_key(project_id: str, prefix: str, request: Request) -> Response:
        # A lost or leaked key, revoked by the operator without the project's own key.
        gw.app.auth.admin(request.headers.get("authorization"))
        return JSON(await gw.app.admin.revoke_key(project_id, prefix))

    @app.post("/v1/admin/projects/{project_id}/credits")
    async def admin_grant(project_id: str, request: Request) -> Response:
        gw.app.auth.admin(request.headers.get("authorization"))
        body = parse_json_body(await _body(request, 64 * 1024), GrantBody)
        return JSON(await gw.app.admin.grant(project_id, body))

    @app.post("/v1/admin/secrets/rotate")
    async def admin_rotate_secrets(request: Request) -> Response:
        # Re-seals every secret under PURAS_SECRETS_KEY (docs/operations.md).
        gw.app.auth.admin(request.headers.get("authorization"))
        return JSON(await gw.app.secrets.rotate())

    @app.post("/v1/admin/audit")
    async def admin_audit(request: Request) -> Response:
        # Z3: 200 with the report whether clean or not ("clean" says which); 503 when
        # the live projections did not reach the log within `settle` seconds.
        gw.app.auth.admin(request.headers.get("authorization"))
        settle = parse_settle(request.query_params.get("settle"))
        return JSON(await gw.app.audit.run(settle))

    # The handlers read raw bodies: their contract is described in entrypoints/openapi.py.
    install_openapi(app)
    # Last: its catch-all mount under /ui must not shadow an API route.
    mount_dashboard(app)
    return app
