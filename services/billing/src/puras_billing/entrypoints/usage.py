"""Billing's usage loop: the job subjects (``ev.*.job.*``) of ``PURAS_EVENTS`` read in
order from billing's checkpoint, each ``job.usage`` (and ``job.media_usage``) charged.

Most job events are not billable (queued, started, log lines, the terminal event, an
agent's other events). For those billing reads the envelope's ``type`` and nothing more
(the payload is never parsed), and nothing is sent back: no ack, no request per event.
Only where billing has got to is stored, as a checkpoint, at most every
``usage_checkpoint_s`` (:mod:`puras_billing.adapters.usage_checkpoint`).

The checkpoint only ever covers usage whose charge and job cost are stored: usage events
are charged concurrently (at most ``usage_batch`` at once, a project's charges in order
in the ledger's writer) and the checkpoint is the sequence before the oldest one still
being charged. A billing killed at any point reads again from its checkpoint, and
charging is safe to repeat (each charge is looked up before it is appended), so every
usage event is charged once whatever process dies. A charge that fails for a passing
reason (NATS away) is retried in place with a growing delay; the checkpoint waits for it.

A usage event billing cannot price (a slug this build's registry does not know, a bad
token count) is refused loudly and retried, never skipped and never priced at zero: an
error log per attempt names the event, its slug, project and job; it is retried with a
delay doubling up to ``usage_retry_max_s``; and the service reports itself degraded
while it holds any. It is *held*: the checkpoint moves past it with its sequence in the
checkpoint's ``held`` list, so other projects' usage goes on being charged meanwhile and
a restarted billing reads the held ones again (by sequence) and goes on retrying them. It
is charged as soon as a billing with the slug in its registry runs (the usual cause is a
runner deployed with a newer registry than billing's). Only an event that cannot be
decoded at all (no attempt can read it) is skipped, with an error log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec
import structlog
from opentelemetry.trace import Tracer

from puras_billing.adapters.job_events import JobEvent
from puras_billing.app.usage import UsageBiller
from puras_common.events.base import DecodeError, Envelope, decode_envelope, decode_event
from puras_common.events.types import MediaUsageRecorded, UsageRecorded
from puras_common.logging import get_logger
from puras_common.pricing import PricingError
from puras_common.telemetry import extract_context

__all__ = [
    "CheckpointStore",
    "JobEventSource",
    "RefusedUsage",
    "UsageLoop",
    "event_type",
    "handle_job_event",
    "retry_delay_s",
]

log = get_logger(__name__)

_USAGE = frozenset({UsageRecorded.type, MediaUsageRecorded.type})
"""The billable job events: a model call's tokens, a media generation's inputs."""

FAILURE_RETRY_MAX_S = 30.0
"""Longest wait before a charge that failed for a passing reason is tried again."""


class _Kind(msgspec.Struct):
    """All billing reads of most job events: the envelope's type (payload skipped)."""

    type: str


_kind = msgspec.json.Decoder(_Kind)


def event_type(data: bytes) -> str | None:
    """The ``type`` of a stored envelope without parsing its payload; ``None`` when the
    message is not an envelope at all."""
    try:
        return _kind.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class RefusedUsage:
    """Usage events this replica holds unpriced, by event id (for health: degraded)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    def degraded(self) -> dict[str, str]:
        if not self.held:
            return {}
        slugs = ", ".join(sorted(set(self.held.values())))
        return {"usage": f"{len(self.held)} usage event(s) cannot be priced (slugs: {slugs})"}


def retry_delay_s(attempt: int, max_s: float) -> float:
    """1 s, 2 s, 4 s ... up to ``max_s``: the delay after attempt ``attempt`` failed."""
    return float(min(max_s, 2.0 ** min(attempt - 1, 30)))


async def handle_job_event(
    biller: UsageBiller,
    ev: JobEvent,
    spans: Tracer,
    *,
    refused: RefusedUsage,
    retry_max_s: float,
    attempt: int = 1,
) -> float | None:
    """Charge ``ev`` if it is a usage event. Returns ``None`` when nothing is left to do
    (charged, not billable, or undecodable), else the delay before it is tried again
    (it cannot be priced). Raises on a passing failure (the caller tries again)."""
    try:
        env = decode_envelope(ev.data)
    except DecodeError as exc:
        log.error("undecodable job event dropped", error=str(exc), seq=ev.seq)
        return None
    if env.type not in _USAGE:
        return None
    bound = structlog.contextvars.bound_contextvars(
        project_id=env.project_id, job_id=env.aggregate_id, usage_id=env.id
    )
    with bound:
        try:
            usage = decode_event(env)
        except DecodeError as exc:
            log.error("undecodable usage event dropped: NOT BILLED", error=str(exc))
            return None
        if not isinstance(usage, UsageRecorded | MediaUsageRecorded):
            # Written by a newer build (a higher schema version): a billing that knows
            # it will charge it; until then it is held like an unknown slug.
            return _refuse(refused, env, "?", f"usage schema v{env.v}", attempt, retry_max_s)
        with spans.start_as_current_span("billing.usage", context=extract_context(ev.headers)):
            try:
                await biller.bill(
                    usage,
                    usage_id=env.id,
                    usage_seq=ev.seq,
                    project_id=env.project_id,
                    job_id=env.aggregate_id,
                )
            except PricingError as exc:
                return _refuse(refused, env, usage.model, str(exc), attempt, retry_max_s)
    refused.held.pop(env.id, None)
    return None


def _refuse(
    refused: RefusedUsage, env: Envelope, slug: str, reason: str, attempt: int, retry_max_s: float
) -> float:
    delay = retry_delay_s(attempt, retry_max_s)
    refused.held[env.id] = slug
    log.error(
        "usage event cannot be priced: NOT BILLED, will retry",
        usage_id=env.id,
        project_id=env.project_id,
        job_id=env.aggregate_id,
        slug=slug,
        error=reason,
        attempt=attempt,
        retry_in_s=delay,
    )
    return delay


class JobEventSource(Protocol):
    async def next_batch(self, max_n: int, timeout: float) -> Sequence[Any]:
        """Up to ``max_n`` messages in log order (``[]`` when none came in ``timeout``)."""
        ...


class CheckpointStore(Protocol):
    async def save(self, last_seq: int, held: list[int]) -> None: ...


class UsageLoop:
    """Charges the usage events of one ordered read of the job subjects and keeps the
    checkpoint: everything up to it is charged, but for the held sequences."""

    def __init__(
        self,
        biller: UsageBiller,
        checkpoint: CheckpointStore,
        spans: Tracer,
        *,
        start_after: int,
        refused: RefusedUsage,
        retry_max_s: float,
        max_inflight: int,
        save_every_s: float,
        batch: int = 1000,
        finish_s: float = 10.0,
    ) -> None:
        self._biller = biller
        self._checkpoint = checkpoint
        self._spans = spans
        self._refused = refused
        self._retry_max_s = retry_max_s
        self._slots = asyncio.Semaphore(max_inflight)
        self._save_every_s = save_every_s
        self._batch = batch
        self._finish_s = finish_s
        self._received = start_after
        """The last job event taken from the log (every usage up to it is in hand)."""
        self._inflight: dict[int, asyncio.Task[None]] = {}
        """Usage events being charged, by sequence: the checkpoint stays before them."""
        self._held: dict[int, asyncio.Task[None]] = {}
        """Usage events that cannot be priced yet, retried: the checkpoint lists them."""
        self._dirty = asyncio.Event()
        self._saved: tuple[int, list[int]] = (start_after, [])

    def position(self) -> tuple[int, list[int]]:
        """``(last_seq, held)``: what a checkpoint written now says."""
        last = min(self._inflight) - 1 if self._inflight else self._received
        return last, sorted(self._held)

    @property
    def held(self) -> list[int]:
        return sorted(self._held)

    async def run(
        self, events: JobEventSource, stop: asyncio.Event, *, held: Iterable[JobEvent] = ()
    ) -> None:
        for ev in held:
            self._held[ev.seq] = asyncio.create_task(self._charge(ev, held=True))
        self._saved = self.position()
        saver = asyncio.create_task(self._save_loop())
        try:
            while not stop.is_set():
                if saver.done():
                    saver.result()  # a checkpoint that cannot be written ends the loop
                    return
                batch = await events.next_batch(self._batch, timeout=0.5)
                if batch:
                    await self._take(batch, stop)
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await saver
            await self._finish()

    async def _take(self, batch: Sequence[Any], stop: asyncio.Event) -> None:
        for msg in batch:
            data = msg.data
            kind = event_type(data)
            if kind is None:
                log.error(
                    "undecodable job event dropped",
                    seq=msg.metadata.sequence.stream,
                    subject=getattr(msg, "subject", None),
                )
            elif kind in _USAGE:
                seq = msg.metadata.sequence.stream
                # Waits while usage_batch charges are under way: the log waits too.
                if not await self._slot(stop):
                    self._received = seq - 1  # stopped: read again from this one
                    self._dirty.set()
                    return
                ev = JobEvent(seq, data, msg.headers)
                self._inflight[ev.seq] = asyncio.create_task(self._charge(ev, held=False))
        # Only now: the usage events of the batch are in hand before the position moves.
        self._received = batch[-1].metadata.sequence.stream
        self._dirty.set()

    async def _slot(self, stop: asyncio.Event) -> bool:
        """A charge slot, or ``False`` if stopped while waiting for one."""
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if acquire.done():
            return True
        acquire.cancel()
        return False

    async def _charge(self, ev: JobEvent, *, held: bool) -> None:
        attempt = 1
        failures = 0
        while True:
            try:
                delay = await handle_job_event(
                    self._biller,
                    ev,
                    self._spans,
                    refused=self._refused,
                    retry_max_s=self._retry_max_s,
                    attempt=attempt,
                )
            except Exception:
                failures += 1
                wait = retry_delay_s(failures, FAILURE_RETRY_MAX_S)
                log.exception("usage event failed; retrying", seq=ev.seq, retry_in_s=wait)
                await asyncio.sleep(wait)
                continue
            if delay is None:
                break
            if not held:
                # Held from now on: the checkpoint may pass it, listing it.
                held = True
                self._held[ev.seq] = self._inflight.pop(ev.seq)
                self._slots.release()
                self._dirty.set()
            attempt += 1
            await asyncio.sleep(delay)
        # Stored (or nothing to store). Not on cancellation: a charge cut short by a stop
        # stays where the checkpoint keeps it (in flight, or held).
        if held:
            self._held.pop(ev.seq, None)
        else:
            self._inflight.pop(ev.seq, None)
            self._slots.release()
        self._dirty.set()

    async def _save_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._save()
            await asyncio.sleep(self._save_every_s)

    async def _save(self) -> None:
        pos = self.position()
        if pos != self._saved:
            await self._checkpoint.save(*pos)
            self._saved = pos

    async def _finish(self) -> None:
        """On stop: let the charges under way finish (bounded), then store the position."""
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=self._finish_s)
        pending = [*self._inflight.values(), *self._held.values()]
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await self._save()
