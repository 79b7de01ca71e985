"""Feeding in-memory views from the log: follow, apply, know when caught up.

The views themselves are pure folds (:mod:`puras_common.views`); this is the I/O that
feeds them. A service that decides from views (the gateway's keys and deployments, the
scheduler's deployments and balances) reads them from sequence 1 at start, is ``ready``
once it has applied what the log held then, and can wait for a sequence it knows was
written (read-your-writes after its own publish, or a sequence another service handed it).

A view never dies on an event: one that cannot be decoded, or whose apply raises, is
skipped, logged at error level, counted in ``skipped`` and handed to ``on_skip`` (the
gateway reports it on ``/readyz`` as degraded until the quarantine accounts for it).
If the follow task ends for any other reason (the log unreachable for good, a consumer
deleted), the view would be frozen: ``ready`` is cleared, ``alive`` turns false,
``failure`` says why and ``on_death`` is called, so that its owner stops deciding from
it (the gateway's ``/readyz`` turns red; the scheduler stops).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from puras_common.bus.client import Bus
from puras_common.bus.follow import EventFollower, RawEvent
from puras_common.events.base import Envelope
from puras_common.events.recorded import RecordedEvent
from puras_common.logging import get_logger
from puras_common.projection.quarantine import PoisonEvent, decode_recorded, sanitize
from puras_common.sequence import SequenceBarrier

__all__ = ["OnDeath", "OnSkip", "ViewFollower"]

log = get_logger(__name__)

OnSkip = Callable[[RawEvent, Envelope | None, str], None]
"""``on_skip(raw, envelope or None, reason)``: called for each event a view skipped."""

OnDeath = Callable[[str], None]
"""``on_death(failure)``: called once when the follower ends other than by ``stop``."""

_KEEP_SKIPPED = 1000


class ViewFollower:
    """Feeds ``apply`` (a pure fold) every event of ``filters`` from sequence 1 on."""

    def __init__(
        self,
        bus: Bus,
        filters: list[str],
        apply: Callable[[RecordedEvent], None],
        *,
        name: str,
        on_skip: OnSkip | None = None,
        on_death: OnDeath | None = None,
    ) -> None:
        self._bus = bus
        self._filters = filters
        self._apply = apply
        self._name = name
        self._on_skip = on_skip
        self._on_death = on_death
        self._applied = SequenceBarrier()
        self.skipped: dict[int, str] = {}
        """Sequence -> reason of events skipped (the latest 1000)."""
        self.skipped_total = 0
        self.ready = asyncio.Event()
        """Set once caught up with what the log held at start; cleared if the follower dies."""
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
    def last_seq(self) -> int:
        """Everything of our subjects up to this sequence is applied."""
        return self._applied.seq

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
        except BaseException as exc:
            self.ready.clear()
            log.exception("view follower died; the view is frozen", view=self._name)
            if self._on_death is not None:
                try:
                    self._on_death(f"{type(exc).__name__}: {exc}")
                except Exception:
                    log.exception("on_death failed", view=self._name)
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
            self._applied.advance(raw[-1].seq)
            if raw[-1].pending == 0:
                self.ready.set()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until everything up to ``seq`` of our subjects is applied."""
        return await self._applied.wait_for(seq, timeout)
