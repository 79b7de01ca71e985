"""The runner's media subject: ``POST /v1/media/generate`` calls of the jobs it runs.

The gateway sends ``{token, request}`` to ``rpc.runner.<this runner>.media``; the answer
is ``{status, body}`` (an HTTP status and its JSON). Each call runs in a task of its own
(a video takes minutes; other jobs' calls must not wait behind it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from puras_common.events.subjects import runner_media_subject
from puras_common.job_tokens import InvalidJobToken
from puras_common.logging import get_logger
from puras_runner.app.media import MediaCalls, MediaError
from puras_runner.app.running import RunningJobs

__all__ = ["MediaServer"]

log = get_logger(__name__)


class _Call(msgspec.Struct, frozen=True):
    token: str
    request: dict[str, Any]


_dec = msgspec.json.Decoder(_Call)
_enc = msgspec.json.Encoder()


class MediaServer:
    def __init__(self, nc: NATS, running: RunningJobs, media: MediaCalls) -> None:
        self._nc = nc
        self._running = running
        self._media = media
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            runner_media_subject(self._running.runner), cb=self._on_msg
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for task in list(self._tasks):
            task.cancel()

    async def _on_msg(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        status, body = await self._handle(msg.data)
        try:
            await msg.respond(_enc.encode({"status": status, "body": body}))
        except Exception as exc:  # the gateway gave up waiting
            log.warning("media answer not delivered", error=str(exc))

    async def _handle(self, data: bytes) -> tuple[int, dict[str, Any]]:
        try:
            call = _dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return 400, _error("invalid_request", "malformed media call")
        try:
            attempt = self._running.check(call.token)
        except InvalidJobToken as exc:
            return 401, _error("unauthorized", str(exc))
        try:
            return 200, await self._media.generate(attempt, call.request, tool="media")
        except MediaError as exc:
            return exc.status, _error(exc.code, exc.message)
        except Exception:
            log.exception("media call failed", job_id=attempt.job.job_id)
            return 500, _error("internal_error", "media call failed; see the runner log")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
