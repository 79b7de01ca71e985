"""The event log's publish rules, in memory, for the fakes of the services' ports.

One sequence for every subject; an expected last subject sequence that does not match
is refused; and an event id stored before is not stored again (the ``Nats-Msg-Id``
check, with no window: a fake outlives no window). The sequence check comes first, as
on the server: a guarded publish retried after the subject moved on (even by its own
first attempt) is a conflict, not a duplicate.
The contract suites run the same assertions against these and the NATS adapters.
"""

from __future__ import annotations

from collections.abc import Callable

from puras_common.bus.client import ConcurrencyConflict, Published
from puras_common.events.base import Event, decode_envelope, decode_event, encode_event
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import event_subject

__all__ = ["FakeEventLog"]


class FakeEventLog:
    def __init__(self) -> None:
        self.seq = 0
        self._records: list[RecordedEvent] = []
        self._by_subject: dict[str, list[RecordedEvent]] = {}
        self._ids: dict[str, int] = {}
        self._listeners: list[Callable[[RecordedEvent], None]] = []

    def append(
        self,
        event: Event,
        *,
        project_id: str,
        aggregate: str,
        aggregate_id: str,
        event_id: str,
        expected_last_seq: int | None = None,
        correlation_id: str | None = None,
    ) -> Published:
        subject = event_subject(project_id, aggregate, aggregate_id)
        last = self.last_seq(subject)
        if expected_last_seq is not None and expected_last_seq != last:
            raise ConcurrencyConflict(f"{subject}: wrong last sequence: {last}")
        if event_id in self._ids:
            return Published(seq=self._ids[event_id], duplicate=True, subject=subject)
        self.seq += 1
        env = decode_envelope(
            encode_event(
                event,
                event_id=event_id,
                project_id=project_id,
                aggregate_id=aggregate_id,
                correlation_id=correlation_id,
            )
        )
        rec = RecordedEvent(seq=self.seq, subject=subject, envelope=env, event=decode_event(env))
        self._records.append(rec)
        self._by_subject.setdefault(subject, []).append(rec)
        self._ids[event_id] = self.seq
        for listener in list(self._listeners):
            listener(rec)
        return Published(seq=self.seq, duplicate=False, subject=subject)

    def last_seq(self, subject: str) -> int:
        recs = self._by_subject.get(subject)
        return recs[-1].seq if recs else 0

    def on_subject(self, subject: str) -> list[RecordedEvent]:
        return list(self._by_subject.get(subject, ()))

    def records(self) -> list[RecordedEvent]:
        return list(self._records)

    def expire_ids(self) -> None:
        """The duplicate window passed: ids stored so far may be stored again."""
        self._ids.clear()

    def follow(self, listener: Callable[[RecordedEvent], None]) -> None:
        """Call ``listener`` with every event appended from now on, as it is appended."""
        self._listeners.append(listener)
