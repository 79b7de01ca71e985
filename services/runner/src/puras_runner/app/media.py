"""A job's media call (SPEC S2): priced, capped, generated upstream, saved into the
job's drive, recorded as usage, and billed to the job.

One use case for both ways in: the SDK's ``media.run`` (through ``POST
/v1/media/generate`` and the runner's media subject, with the job's token) and the
agent's built-in ``media`` tool. The order is the one model calls keep (Z1): before the
call, the job's cost cap and its key's spend limit are checked against the call's price
(a media price is known from its inputs; a per-second slug without ``duration`` is
held at :data:`UNKNOWN_SECONDS_HOLD`); the call is made; only then is the usage recorded,
so only a successful upstream call is billed (B5), and a failed one gives its hold back.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from puras_common.drive_paths import DrivePathError, normalize_file_path
from puras_common.events.ids import job_media_usage_id
from puras_common.events.types import DriveOrigin, MediaUsageRecorded
from puras_common.logging import get_logger
from puras_common.pricing import PricingError, Registry
from puras_runner.app.attempt import Attempt
from puras_runner.app.drive_changes import DriveFacts
from puras_runner.app.spend_guard import CapReached, SpendGuard
from puras_runner.domain.media import (
    MediaOutputError,
    check_requested_kind,
    extension_for,
    find_output_url,
    meta_of,
    outputs_for_pricing,
    resolve_kind,
)
from puras_runner.domain.media_routes import MediaRoutes

__all__ = ["UNKNOWN_SECONDS_HOLD", "MediaCalls", "MediaError", "MediaFiles", "Upstream"]

log = get_logger(__name__)

UNKNOWN_SECONDS_HOLD: Final = 60
"""Seconds a per-second call without ``duration`` is held at before it runs (its real
length is known only from the upstream's answer)."""
MEDIA_PROVIDER: Final = "media-upstream"


class MediaError(Exception):
    """A media call refused or failed: an HTTP status, a code, a message saying why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class UpstreamReply(Protocol):
    @property
    def request_id(self) -> str: ...

    @property
    def result(self) -> Mapping[str, Any]: ...


class Downloaded(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def content_type(self) -> str | None: ...


class Upstream(Protocol):
    """The upstream media API (``adapters.media_upstream``)."""

    async def generate(self, upstream_model: str, inputs: dict[str, Any]) -> UpstreamReply: ...

    async def download(self, url: str, dest: Path) -> Downloaded: ...


class MediaFiles(DriveFacts, Protocol):
    """Where outputs go: the project's drive folder, and the drive's log."""

    async def save(self, attempt: Attempt, path: str, source: Path) -> int:
        """Put ``source`` at ``path`` in the job's drive; its size (``ValueError``: the
        drive refuses the path)."""
        ...


@dataclass(frozen=True, slots=True)
class _Call:
    model: str
    inputs: dict[str, Any]
    kind: str
    output_path: str | None
    output_url_path: str | None


class MediaCalls:
    def __init__(
        self,
        *,
        upstream: Upstream | None,
        routes: MediaRoutes,
        pricing: Registry,
        margin_pct: int,
        spend: SpendGuard,
        files: MediaFiles,
        scratch: Path,
    ) -> None:
        self.upstream = upstream
        self.routes = routes
        self.pricing = pricing
        self.margin_pct = margin_pct
        self.spend = spend
        self.files = files
        self.scratch = scratch

    async def generate(
        self, attempt: Attempt, request: Mapping[str, Any], *, tool: str | None
    ) -> dict[str, Any]:
        """S2's dict for one call, ``output_url`` left to the caller (``None``)."""
        call = self._parse(request)
        route = self.routes.get(call.model)
        if route is None or call.model not in self.pricing.media_slugs():
            raise MediaError(
                400,
                "unknown_model",
                f"unknown media model {call.model!r}: GET /v1/pricing lists the media slugs",
            )
        if self.upstream is None:
            raise MediaError(
                503,
                "media_unavailable",
                "media generation is not configured on this Puras server (the operator sets "
                "PURAS_RUNNER_MEDIA_UPSTREAM_URL and PURAS_RUNNER_MEDIA_UPSTREAM_KEY)",
            )
        worst = self._worst_case(call)
        job = attempt.job
        number = await self._next_call(attempt)
        usage_id = job_media_usage_id(job.job_id, number)
        try:
            held = await self.spend.check_and_hold(attempt, usage_id, worst)
        except CapReached as exc:
            raise MediaError(409, "cost_cap_reached", str(exc)) from None
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="media-") as tmp:
            try:
                reply = await self.upstream.generate(route.upstream_model, call.inputs)
                url = find_output_url(dict(reply.result), call.output_url_path)
                got = await self.upstream.download(url, Path(tmp) / "output")
            except BaseException as exc:
                if held:
                    await self.spend.release(attempt, usage_id)  # not billed (B5)
                raise _as_media_error(exc) from None
            # Made and paid for from here on: what follows is recorded whatever happens.
            ext = extension_for(url, got.content_type)
            kind = resolve_kind(call.kind, route.kind, extension=ext, content_type=got.content_type)
            outputs = outputs_for_pricing(dict(reply.result), call.inputs)
            kept = recorded_inputs(call.inputs)
            try:
                # Priced from what is recorded: billing prices the same event.
                billed = self.pricing.media_cost(
                    call.model, kept, outputs=outputs, margin_pct=self.margin_pct
                )
            except PricingError as exc:
                log.error("media call made but not priceable", model=call.model, error=str(exc))
                billed = worst
            await attempt.record(
                MediaUsageRecorded(
                    call=number,
                    provider=MEDIA_PROVIDER,
                    model=call.model,
                    upstream_model=route.upstream_model,
                    inputs=kept,
                    outputs=outputs,
                    request_id=reply.request_id,
                    skill=job.skill,
                    key_prefix=job.key_prefix,
                ),
                usage_id,
            )
            attempt.spent += billed
            path = call.output_path or f"media/{_file_id(reply.request_id)}{ext}"
            try:
                await self.files.save(attempt, path, Path(tmp) / "output")
            except ValueError as exc:
                raise MediaError(
                    400, "invalid_output_path", f"cannot save the output at {path}: {exc}"
                ) from None
            attempt.announced.add(path)
            await self.files.written(
                attempt,
                path,
                size=got.size,
                content_type=got.content_type or "application/octet-stream",
                origin=DriveOrigin(job_id=job.job_id, skill=job.skill, tool=tool),
            )
        return {
            "model": call.model,
            "kind": kind,
            "drive_path": path,
            "output_url": None,
            "request_id": reply.request_id,
            "billed_micros": billed,
            "billed_usd": billed / 1_000_000,
            "meta": meta_of(dict(reply.result), call.output_url_path),
        }

    def _parse(self, request: Mapping[str, Any]) -> _Call:
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise MediaError(400, "invalid_request", "`model` (a media slug) is required")
        inputs = request.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise MediaError(400, "invalid_request", "`inputs` must be an object")
        kind = request.get("kind") or "auto"
        try:
            check_requested_kind(str(kind))
        except MediaOutputError as exc:
            raise MediaError(400, "invalid_request", str(exc)) from None
        output_path = request.get("output_path")
        if output_path is not None:
            try:
                output_path = normalize_file_path(str(output_path))
            except DrivePathError as exc:
                raise MediaError(400, "invalid_path", str(exc)) from None
        output_url_path = request.get("output_url_path")
        return _Call(
            model=model,
            inputs=dict(inputs),
            kind=str(kind),
            output_path=output_path,
            output_url_path=str(output_url_path) if output_url_path else None,
        )

    def _worst_case(self, call: _Call) -> int:
        """The call's price from its inputs, before it is made (an unknown duration is
        held at :data:`UNKNOWN_SECONDS_HOLD` seconds)."""
        try:
            return self.pricing.media_cost(
                call.model,
                call.inputs,
                outputs={"inference_time": UNKNOWN_SECONDS_HOLD},
                margin_pct=self.margin_pct,
            )
        except PricingError as exc:
            raise MediaError(400, "invalid_inputs", f"{call.model}: {exc}") from None

    async def _next_call(self, attempt: Attempt) -> int:
        """The job's next media call number, counting earlier attempts' (their usage is
        billed; a number used twice would be deduplicated away)."""
        async with attempt.media_lock:
            if attempt.media_calls is None:
                history = await attempt.events.history(attempt.job)
                attempt.media_calls = sum(isinstance(e, MediaUsageRecorded) for e in history)
            attempt.media_calls += 1
            return attempt.media_calls


MAX_RECORDED_TEXT: Final = 2048


def recorded_inputs(value: Any) -> Any:
    """The inputs as the usage event keeps them: as sent, except that long text (a
    ``data:`` URL, an inline file) is replaced by a note of its length. Presence is what
    a price reads of such a field (with or without a reference video), so the event
    prices the same as the call, in billing and in an audit."""
    if isinstance(value, str):
        if len(value) > MAX_RECORDED_TEXT:
            return f"<{len(value)} characters, not kept>"
        return value
    if isinstance(value, Mapping):
        return {str(k): recorded_inputs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [recorded_inputs(v) for v in value]
    return value


def _file_id(request_id: str) -> str:
    safe = "".join(c for c in request_id if c.isalnum() or c in "-_")[:64]
    return safe or uuid.uuid4().hex


def _as_media_error(exc: BaseException) -> BaseException:
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, MediaOutputError):
        return MediaError(502, "media_output", str(exc))
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(status, int) and 400 <= status < 500 and status not in (401, 403, 429):
        # The model refused the inputs (the upstream validates them, not us).
        return MediaError(422, "media_inputs_refused", f"the model refused the inputs: {message}")
    if isinstance(exc, asyncio.CancelledError):
        return exc
    if isinstance(exc, Exception):
        return MediaError(502, "media_failed", f"media generation failed: {message}")
    return exc
