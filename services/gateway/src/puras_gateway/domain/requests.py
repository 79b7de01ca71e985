"""Parsing and checking what clients send, before anything is published (pure)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from puras_common.events.types import TERMINAL_STATUSES
from puras_gateway.domain.errors import ApiError

__all__ = [
    "JOB_STATUSES",
    "Cursor",
    "ListParams",
    "SubmitBody",
    "SubmitMode",
    "is_terminal",
    "parse_bool",
    "parse_idempotency_key",
    "parse_list_params",
    "parse_submit_body",
    "parse_submit_mode",
]

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 25


class SubmitBody(msgspec.Struct, frozen=True, kw_only=True):
    skill: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)


_submit_decoder = msgspec.json.Decoder(SubmitBody)


def parse_submit_body(raw: bytes) -> SubmitBody:
    """``{"skill": str, "inputs": object}`` whatever the Content-Type (J1)."""
    if not raw.strip():
        raise ApiError.bad_request(
            'request body is empty: send JSON {"skill": "<name>", "inputs": {...}}',
            code="invalid_body",
        )
    try:
        body = _submit_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError.bad_request(
            f'invalid job body: {_explain(exc)}; expected {{"skill": "<name>", "inputs": {{...}}}}',
            code="invalid_body",
        ) from exc
    except msgspec.DecodeError as exc:
        raise ApiError.bad_request(
            f"request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    if not body.skill.strip():
        raise ApiError.bad_request("`skill` must be a non-empty string", code="invalid_body")
    return body


def _explain(exc: msgspec.ValidationError) -> str:
    msg = str(exc)
    # msgspec says "Expected `object`, got `array` - at `$.inputs`": name the field plainly.
    return msg.replace("$.", "").replace(" - at ", " at ")


def parse_bool(name: str, value: str | None) -> bool:
    if value is None:
        return False
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("", "0", "false", "no", "off"):
        return False
    raise ApiError.bad_request(
        f"query parameter `{name}` must be true or false, got {value!r}", code="invalid_query"
    )


@dataclass(frozen=True, slots=True)
class SubmitMode:
    kind: Literal["async", "wait", "stream"]
    timeout_s: float


def parse_submit_mode(
    wait: str | None, stream: str | None, timeout: str | None, default_wait_s: float
) -> SubmitMode:
    """J1/J4: ``wait`` and ``stream`` are exclusive; ``timeout`` is 1-60 s (default 30)."""
    w, s = parse_bool("wait", wait), parse_bool("stream", stream)
    if w and s:
        raise ApiError.bad_request(
            "`wait` and `stream` cannot be used together: choose one", code="invalid_query"
        )
    t = default_wait_s
    if timeout is not None:
        try:
            t = float(timeout)
        except ValueError:
            raise ApiError.bad_request(
                f"`timeout` must be a number of seconds between 1 and 60, got {timeout!r}",
                code="invalid_query",
            ) from None
        if not 1 <= t <= 60:
            raise ApiError.bad_request(
                f"`timeout` must be between 1 and 60 seconds, got {timeout}", code="invalid_query"
            )
    return SubmitMode(kind="wait" if w else "stream" if s else "async", timeout_s=t)


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at: datetime
    id: str

    def encode(self) -> str:
        raw = msgspec.json.encode([self.created_at.isoformat(), self.id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            ts, id_ = msgspec.json.decode(raw, type=tuple[str, str])
            return cls(created_at=datetime.fromisoformat(ts), id=id_)
        except (binascii.Error, msgspec.DecodeError, msgspec.ValidationError, ValueError):
            raise ApiError.bad_request(
                "`cursor` is not a cursor this API returned; pass `next_cursor` as it came",
                code="invalid_query",
            ) from None


@dataclass(frozen=True, slots=True)
class ListParams:
    status: str | None
    limit: int
    cursor: Cursor | None


def parse_list_params(status: str | None, limit: str | None, cursor: str | None) -> ListParams:
    st = (status or "").strip() or None
    if st is not None and st not in JOB_STATUSES:
        raise ApiError.bad_request(
            f"`status` must be one of {', '.join(JOB_STATUSES)}, got {status!r}",
            code="invalid_query",
        )
    n = DEFAULT_LIST_LIMIT
    if limit is not None and limit.strip():
        try:
            n = int(limit)
        except ValueError:
            raise ApiError.bad_request(
                f"`limit` must be an integer between 1 and {MAX_LIST_LIMIT}, got {limit!r}",
                code="invalid_query",
            ) from None
        if not 1 <= n <= MAX_LIST_LIMIT:
            raise ApiError.bad_request(
                f"`limit` must be between 1 and {MAX_LIST_LIMIT}, got {n}", code="invalid_query"
            )
    return ListParams(status=st, limit=n, cursor=Cursor.decode(cursor) if cursor else None)


MAX_IDEMPOTENCY_KEY = 255


def parse_idempotency_key(value: str | None) -> str | None:
    """J10: an ``Idempotency-Key`` header of 1-255 printable characters, or none."""
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY:
        raise ApiError.bad_request(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters", code="invalid_request"
        )
    if not value.isprintable():
        raise ApiError.bad_request(
            "Idempotency-Key must be printable characters", code="invalid_request"
        )
    return value


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES
