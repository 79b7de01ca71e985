"""Parsing and checking what clients send, before anything is published (pure)."""

from __future__ import annotations

import base64
import binascii
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from puras_common.events.types import TERMINAL_STATUSES
from puras_common.manifest.skill_yaml import SKILL_NAME
from puras_common.textsafety import MAX_JSON_DEPTH, find_control, find_unsafe
from puras_gateway.domain.errors import ApiError

__all__ = [
    "JOB_STATUSES",
    "Cursor",
    "ListParams",
    "SubmitBody",
    "SubmitMode",
    "check_text_field",
    "is_terminal",
    "parse_bool",
    "parse_idempotency_key",
    "parse_json_body",
    "parse_list_params",
    "parse_submit_body",
    "parse_submit_mode",
]

T = TypeVar("T")

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 25
MAX_SKILL_NAME = 200


class SubmitBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    skill: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    max_cost_micros: Annotated[int, msgspec.Meta(gt=0)] | None = None
    """Z1: what the job may spend at most, in micros (``None``: the skill's default)."""


SUBMIT_FIELDS = tuple(SubmitBody.__struct_fields__)
_submit_decoder = msgspec.json.Decoder(SubmitBody)
_SUBMIT_SHAPE = (
    '; expected {"skill": "<name>", "inputs": {...}} and optionally "max_cost_micros": '
    "<a positive whole number of micros>"
)


def parse_submit_body(raw: bytes) -> SubmitBody:
    """``{"skill": str, "inputs": object}`` whatever the Content-Type (J1).

    Besides the shape: the body is UTF-8, ``inputs`` is nested at most
    :data:`~puras_common.textsafety.MAX_JSON_DEPTH` levels, and no string or key in it
    holds NUL (or a lone surrogate), which the log and its projections cannot store (Z9).
    """
    if not raw.strip():
        raise ApiError.bad_request(
            'request body is empty: send JSON {"skill": "<name>", "inputs": {...}}',
            code="invalid_body",
        )
    body = _decode(raw, _submit_decoder.decode, "job body", _SUBMIT_SHAPE, SUBMIT_FIELDS)
    if not body.skill.strip():
        raise ApiError.bad_request("`skill` must be a non-empty string", code="invalid_body")
    # msgspec refuses lone surrogates itself, so NUL (only ever written as a \u escape:
    # a raw NUL byte is not JSON) is the one unstorable character a decoded body can
    # hold, and nesting needs at least as many brackets as levels. Bodies with neither
    # (nearly all of them) skip the walk.
    if b"\\u" in raw or raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        issue = find_unsafe(body.skill, root="skill", max_depth=None) or find_unsafe(
            body.inputs, root="inputs"
        )
        if issue is not None:
            raise ApiError.bad_request(str(issue), code="invalid_body")
    return body


def parse_json_body(raw: bytes, typ: type[T], what: str = "body") -> T:
    """A JSON body of type ``typ`` (a msgspec Struct), checked like a job body (Z9)."""
    if not raw.strip():
        raise ApiError.bad_request("request body is empty: send a JSON object", code="invalid_body")
    fields = tuple(getattr(typ, "__struct_fields__", ()))
    value = _decode(raw, lambda b: msgspec.json.decode(b, type=typ), what, "", fields)
    issue = find_unsafe(msgspec.to_builtins(value))
    if issue is not None:
        raise ApiError.bad_request(str(issue), code="invalid_body")
    return value


def _decode(
    raw: bytes, decode: Callable[[bytes], T], what: str, shape: str, fields: tuple[str, ...]
) -> T:
    try:
        return decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError.bad_request(
            f"invalid {what}: {_explain(exc, raw, what, fields)}{shape}", code="invalid_body"
        ) from exc
    except msgspec.DecodeError as exc:
        raise ApiError.bad_request(_not_json(raw, exc), code="invalid_json") from None
    except UnicodeDecodeError:
        raise ApiError.bad_request(_not_utf8(raw), code="invalid_json") from None
    except RecursionError:
        raise ApiError.bad_request(
            f"request body is nested far deeper than {MAX_JSON_DEPTH} levels of objects and "
            "arrays (the limit for inputs); flatten it",
            code="invalid_body",
        ) from None


def _not_json(raw: bytes, exc: msgspec.DecodeError) -> str:
    # msgspec refuses a lone surrogate escape ("\ud800") with a message about the
    # input being truncated; the standard library accepts it, which lets us say which
    # field holds it. Only the error path pays for the second parse.
    try:
        loose = json.loads(raw)
    except (ValueError, RecursionError):
        loose = None
    if loose is not None:
        issue = find_unsafe(loose, max_depth=None)
        if issue is not None:
            return f"request body: {issue}"
    return f"request body is not valid JSON: {exc}"


def _not_utf8(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"request body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}): send JSON text encoded as UTF-8"
        )
    return "request body is not valid UTF-8: send JSON text encoded as UTF-8"


def check_text_field(name: str, value: str) -> None:
    """A text field (a multipart field, ``notes``) the log stores: no NUL, no surrogates."""
    issue = find_unsafe(value, root=name, max_depth=None)
    if issue is not None:
        raise ApiError.bad_request(f"`{name}` {issue.message}", code="invalid_request")


def _explain(exc: msgspec.ValidationError, raw: bytes, what: str, fields: tuple[str, ...]) -> str:
    msg = str(exc)
    if msg.startswith("Object contains unknown field") and fields:
        # J1: any other top-level field is a 400 naming it -- all of them, with the
        # field a misspelling most likely meant (`input` silently running with empty
        # inputs is the mistake this catches).
        unknown = _unknown_fields(raw, fields)
        if unknown:
            named = ", ".join(_with_hint(u, fields) for u in unknown)
            noun = "field" if len(unknown) == 1 else "fields"
            return f"unknown {noun} {named}; a {what} has only the fields {', '.join(fields)}"
        return f"{msg}; a {what} has only the fields {', '.join(fields)}"
    # msgspec says "Expected `object`, got `array` - at `$.inputs`": name the field plainly.
    return msg.replace("$.", "").replace(" - at ", " at ")


def _unknown_fields(raw: bytes, fields: tuple[str, ...]) -> list[str]:
    # Only the error path parses twice; msgspec names just the first unknown field.
    try:
        loose = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    if not isinstance(loose, dict):
        return []
    return [k for k in loose if k not in fields]


def _with_hint(name: str, fields: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
    shown = f"`{json.dumps(name[:80])[1:-1]}`"
    return f"{shown} (did you mean `{close[0]}`?)" if close else shown


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
    skill: str | None = None


def parse_list_params(
    status: str | None, limit: str | None, cursor: str | None, skill: str | None = None
) -> ListParams:
    st = (status or "").strip() or None
    if st is not None and st not in JOB_STATUSES:
        raise ApiError.bad_request(
            f"`status` must be one of {', '.join(JOB_STATUSES)}, got {status!r}",
            code="invalid_query",
        )
    sk = (skill or "").strip() or None
    # Only a name a skill.yaml could declare: anything else would match nothing, which
    # reads as "no jobs" where the caller made a typo.
    if sk is not None and (len(sk) > MAX_SKILL_NAME or not SKILL_NAME.match(sk)):
        raise ApiError.bad_request(
            f"`skill` must be a skill name ({SKILL_NAME.pattern}, at most {MAX_SKILL_NAME} "
            f"characters), got {skill!r}",
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
    return ListParams(
        status=st, limit=n, cursor=Cursor.decode(cursor) if cursor else None, skill=sk
    )


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
        found = find_control(value) or "a character that is not printable"
        raise ApiError.bad_request(
            f"Idempotency-Key has {found}: use printable characters (e.g. a UUID)",
            code="invalid_request",
        )
    return value


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES
