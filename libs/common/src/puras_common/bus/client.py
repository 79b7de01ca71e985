"""The connection to NATS and the publish side of the event log.

:class:`Bus` is built in a composition root and handed to the code that needs it; it is
the only place that turns events and commands into JetStream publishes with the right
headers (message id, expected subject sequence, trace context).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import APIError, KeyWrongLastSequenceError, NoStreamResponseError

from puras_common.bus import headers as H
from puras_common.events.base import Event, encode_event
from puras_common.events.subjects import EVENTS_STREAM, event_subject
from puras_common.logging import get_logger
from puras_common.telemetry import inject_headers

__all__ = [
    "Bus",
    "ConcurrencyConflict",
    "NatsCredentials",
    "NatsLoginRefused",
    "NatsUnreachable",
    "Published",
    "connect",
    "redact_url",
]

log = get_logger(__name__)

# JetStream API error code of a failed Nats-Expected-Last-Subject-Sequence check.
_WRONG_LAST_SEQUENCE = 10071


class _PubAck(msgspec.Struct):
    """JetStream's answer to a publish: where it was stored, or why not."""

    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_pub_ack = msgspec.json.Decoder(_PubAck)


class ConcurrencyConflict(RuntimeError):
    """The aggregate moved on since the writer read it (expected sequence check failed)."""


@dataclass(frozen=True, slots=True)
class Published:
    seq: int
    duplicate: bool
    subject: str


@dataclass(frozen=True)
class NatsCredentials:
    """How one service connects: its user, password and reply-inbox prefix (the prefix
    its identity may subscribe to, ``puras_common.bus.permissions.inbox_prefix``)."""

    user: str
    password: str = field(repr=False)
    inbox_prefix: str = "_INBOX"


class NatsUnreachable(ConnectionError):
    """NATS did not answer within the start-up timeout."""


class NatsLoginRefused(NatsUnreachable):
    """NATS answered but refused this identity (unknown user, wrong password, none)."""


_USERINFO = re.compile(r"(?<=://)[^/@,]*@")


def redact_url(url: str) -> str:
    """``url`` (one or a comma-separated list) without any ``user:password@`` part."""
    return _USERINFO.sub("***@", url)


async def connect(
    url: str,
    *,
    name: str,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    initial_timeout: float = 15.0,
    credentials: NatsCredentials | None = None,
) -> Bus:
    """Connect; once connected, reconnects are unbounded (a restarted nats-server is waited
    for, not fatal). The first connection is bounded by ``initial_timeout`` so a process
    started without NATS exits with a clear error instead of hanging.

    ``credentials`` (a service's NATS identity) set the user, password and the inbox
    prefix its permissions allow replies on; without them, credentials in the URL
    (``nats://user:password@host``) are used, else none.
    """

    refused = asyncio.get_running_loop().create_future()

    async def _err(e: Exception) -> None:
        log.warning("nats error", error=str(e))
        if "authorization violation" in str(e).lower() and not refused.done():
            refused.set_result(str(e))

    closing: list[Bus] = []

    async def _disc() -> None:
        if closing and closing[0].closing:
            return  # our own close, not an outage
        log.warning("nats disconnected")
        if on_disconnect is not None:
            await on_disconnect()

    async def _rec() -> None:
        log.info("nats reconnected")

    attempt = asyncio.ensure_future(
        asyncio.wait_for(_connect(url, name, _err, _disc, _rec, credentials), initial_timeout)
    )
    try:
        await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
        if not attempt.done():
            # Retrying cannot help a wrong user or password: say so now, not at the timeout.
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await attempt
            who = credentials.user if credentials is not None and credentials.user else None
            raise NatsLoginRefused(
                f"NATS at {redact_url(url)} refused the login"
                + (f" of user {who!r}" if who else " (no credentials given)")
                + f": {refused.result()}"
            )
        nc = attempt.result()
    except NatsLoginRefused:
        raise
    except (TimeoutError, OSError, nats.errors.NoServersError) as exc:
        raise NatsUnreachable(
            f"cannot connect to NATS at {redact_url(url)} within {initial_timeout:g}s: "
            f"{exc or type(exc).__name__}"
        ) from exc
    bus = Bus(nc)
    closing.append(bus)
    return bus


async def _connect(
    url: str,
    name: str,
    err: Callable[[Exception], Awaitable[None]],
    disc: Callable[[], Awaitable[None]],
    rec: Callable[[], Awaitable[None]],
    credentials: NatsCredentials | None,
) -> NatsClient:
    auth: dict[str, str] = {}
    if credentials is not None:
        auth["inbox_prefix"] = credentials.inbox_prefix
        if credentials.user:
            auth["user"] = credentials.user
            auth["password"] = credentials.password
    return await nats.connect(
        servers=[u.strip() for u in url.split(",")],
        **auth,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=5,
        error_cb=err,
        disconnected_cb=disc,
        reconnected_cb=rec,
        pending_size=64 * 1024 * 1024,
    )


class Bus:
    """A NATS connection with the JetStream context and Puras' publish conventions."""

    def __init__(self, nc: NatsClient, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=timeout)
        self._timeout = timeout
        self.closing = False

    async def close(self) -> None:
        self.closing = True
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception:  # closing a broken connection must not mask the real error
                await self.nc.close()

    async def publish_raw(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        expected_last_subject_seq: int | None = None,
        stream: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Published:
        """Publish to a stream and wait for its ack: the message is stored when this returns."""
        hdrs: dict[str, str] = {}
        if msg_id is not None:
            hdrs[H.MSG_ID] = msg_id
        if expected_last_subject_seq is not None:
            hdrs[H.EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last_subject_seq)
        if stream is not None:
            hdrs[H.EXPECTED_STREAM] = stream
        if extra_headers:
            hdrs.update(extra_headers)
        inject_headers(hdrs)
        # What ``js.publish`` does, with the ack decoded by msgspec: nats-py's json.loads
        # and dataclass building of the PubAck cost more than the rest of our publish.
        try:
            msg = await self.nc.request(
                subject, payload, timeout=self._timeout, headers=hdrs or None
            )
        except nats.errors.NoRespondersError:
            raise NoStreamResponseError from None
        ack = _pub_ack.decode(msg.data)
        if ack.error is not None:
            try:
                APIError.from_error(ack.error)  # raises the error's own class
            except KeyWrongLastSequenceError as exc:
                raise ConcurrencyConflict(f"{subject}: {exc.description}") from exc
            except APIError as exc:
                if exc.err_code == _WRONG_LAST_SEQUENCE:
                    raise ConcurrencyConflict(f"{subject}: {exc.description}") from exc
                raise
        return Published(seq=ack.seq, duplicate=ack.duplicate, subject=subject)

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        aggregate: str,
        aggregate_id: str,
        event_id: str,
        expected_last_subject_seq: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Published:
        """Append one event to the log at ``ev.<project>.<aggregate>.<id>``."""
        subject = event_subject(project_id, aggregate, aggregate_id)
        payload = encode_event(
            event,
            event_id=event_id,
            project_id=project_id,
            aggregate_id=aggregate_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return await self.publish_raw(
            subject,
            payload,
            msg_id=event_id,
            expected_last_subject_seq=expected_last_subject_seq,
            stream=EVENTS_STREAM,
        )

    async def last_subject_seq(self, subject: str) -> int:
        """Sequence of the last message on ``subject`` in the event log (0 if none)."""
        last = await self.last_subject_message(subject)
        return 0 if last is None else last[0]

    async def last_subject_message(self, subject: str) -> tuple[int, bytes] | None:
        """``(seq, data)`` of the last message on ``subject`` in the event log, if any."""
        try:
            msg = await self.js.get_last_msg(EVENTS_STREAM, subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        return int(msg.seq or 0), msg.data or b""

    async def subject_messages(
        self, subject: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, bytes]]:
        """``(seq, data)`` of every message on one event subject after ``after_seq``, in
        order, by direct gets (JetStream keeps a per-subject index: a job's few events
        cost a few requests, not a consumer)."""
        seq = after_seq + 1
        while True:
            try:
                msg = await self.js.get_msg(
                    EVENTS_STREAM, seq=seq, subject=subject, next=True, direct=True
                )
            except nats.js.errors.NotFoundError:
                return
            found = int(msg.seq or 0)
            yield found, msg.data or b""
            seq = found + 1

    async def stream_last_seq(self, stream: str = EVENTS_STREAM) -> int:
        info = await self.js.stream_info(stream)
        return int(info.state.last_seq)
