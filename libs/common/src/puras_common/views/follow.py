"""In-memory views kept current from the log: follow, apply, know when caught up.

A service that decides from views (the gateway's keys and deployments, the scheduler's
deployments and balances) reads them from sequence 1 at start, is ``ready`` once it has
applied what the log held then, and can wait for a sequence it knows was written
(read-your-writes after its own publish, or a sequence another service handed it).

A view never dies on an event: one that cannot be decoded, or whose apply raises, is
skipped, logged at error level, counted in ``skipped`` and handed to ``on_skip`` (the
gateway records it in ``projection_quarantine`` and reports ``/readyz`` degraded).
If the follow task ends for any other reason, ``alive`` turns false and ``failure``
says why: its owner reports not ready rather than serving a frozen view.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from puras_common.bus.client import Bus
from puras_common.bus.follow import EventFollower, RawEvent
from puras_common.events.base import Envelope
from puras_common.logging import get_logger
from puras_common.projection.base import RecordedEvent
from puras_common.projection.quarantine import PoisonEvent, decode_recorded, sanitize

__all__ = ["OnSkip", "ViewFollower"]

log = get_logger(__name__)

OnSkip = Callable[[RawEvent, Envelope | None, str], None]
"""``on_skip(raw, envelope or None, reason)``: called for each event a view skipped."""

_KEEP_SKIPPED = 1000


class ViewFollower:
    def __init__(
        self,
        bus: Bus,
        filters: list[str],
        apply: Callable[[RecordedEvent], None],
        *,
        name: str,
        on_skip: OnSkip | None = None,
    ) -> None:
        self._bus = bus
        self._filters = filters
        self._apply = apply
        self._name = name
        self._on_skip = on_skip
        self.last_seq = 0
        self.skipped: dict[int, str] = {}
        """Sequence -> reason of events skipped (the latest 1000)."""
        self.skipped_total = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._follower: EventFollower | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._follower = EventFollower(self._bus.js, self._filters, start_seq=1)
        await self._follower.start()
        if self._follower.initial_pending == 0:
            self.ready.set()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # A follower that died already was logged (and reported) when it did.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._follower is not None:
            await self._follower.stop()

    @property
    def name(self) -> str:
        return self._name

    @property
    def alive(self) -> bool:
        """The follow task runs (false before start, and once it ended)."""
        return self._task is not None and not self._task.done()

    @property
    def failure(self) -> str | None:
        t = self._task
        if t is None or not t.done():
            return None
        if t.cancelled():
            return "stopped"
        exc = t.exception()
        return f"{type(exc).__name__}: {exc}" if exc is not None else "ended"

    def _skip(self, raw: RawEvent, env: Envelope | None, reason: str) -> None:
        reason = sanitize(reason, 2000)
        self.skipped_total += 1
        self.skipped[raw.seq] = reason
        if len(self.skipped) > _KEEP_SKIPPED:
            del self.skipped[min(self.skipped)]
        log.error(
            "event skipped by an in-memory view",
            view=self._name,
            seq=raw.seq,
            subject=raw.subject,
            event_type=env.type if env else None,
            event_id=env.id if env else None,
            reason=reason,
        )
        if self._on_skip is not None:
            try:
                self._on_skip(raw, env, reason)
            except Exception:
                log.exception("on_skip failed", view=self._name, seq=raw.seq)

    async def _run(self) -> None:
        assert self._follower is not None
        try:
            await self._follow(self._follower)
        except asyncio.CancelledError:
            raise
        except BaseException:
            log.exception("view follower died; the view is frozen", view=self._name)
            raise

    async def _follow(self, follower: EventFollower) -> None:
        while True:
            raw = await follower.next_batch(1000)
            for r in raw:
                try:
                    rec = decode_recorded(r)
                except PoisonEvent as exc:
                    self._skip(r, exc.envelope, exc.reason)
                    continue
                try:
                    self._apply(rec)
                except Exception as exc:
                    # A pure fold raising is about this event's content (or a bug it
                    # meets): the view goes on without it, loudly.
                    self._skip(r, rec.envelope, f"{type(exc).__name__}: {exc}")
            self.last_seq = raw[-1].seq
            if raw[-1].pending == 0:
                self.ready.set()
            async with self._advanced:
                self._advanced.notify_all()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until everything up to ``seq`` of our subjects is applied."""
        if self.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.last_seq >= seq)
        except TimeoutError:
            return False
        return True
