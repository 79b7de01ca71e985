"""Media calls to the runner running the job, over NATS request-reply.

The subject names the runner (``rpc.runner.<id>.media``), so only the runner holding the
job's state answers; a runner that is gone has no subscription, and NATS says so at
once (no responders) rather than after the timeout.
"""

from __future__ import annotations

from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from puras_common.events.subjects import runner_media_subject
from puras_gateway.app.ports import MediaReply

__all__ = ["NatsMediaRelay"]

_enc = msgspec.json.Encoder()


class _Reply(msgspec.Struct, frozen=True):
    status: int
    body: dict[str, Any]


_dec = msgspec.json.Decoder(_Reply)


class NatsMediaRelay:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc

    async def generate(
        self, runner: str, token: str, request: dict[str, Any], timeout_s: float
    ) -> MediaReply:
        try:
            subject = runner_media_subject(runner)
        except ValueError:
            raise LookupError(runner) from None
        payload = _enc.encode({"token": token, "request": request})
        try:
            msg = await self._nc.request(subject, payload, timeout=timeout_s)
        except NoRespondersError:
            raise LookupError(runner) from None
        except NatsTimeout:
            raise TimeoutError(f"no answer from runner {runner} in {timeout_s:g} s") from None
        reply = _dec.decode(msg.data)
        return MediaReply(status=reply.status, body=reply.body)
