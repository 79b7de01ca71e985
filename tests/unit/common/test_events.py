from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import msgspec
import pytest

from puras_common.events import (
    DecodeError,
    Event,
    JobQueued,
    decode_envelope,
    decode_event,
    encode_event,
    registered_types,
    upcaster,
)
from puras_common.events.subjects import event_subject, parse_event_subject

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_roundtrip_keeps_envelope_and_payload() -> None:
    ev = JobQueued(skill="echo", inputs={"text": "hi"}, deployment_id="d1", created_at=T0)
    raw = encode_event(
        ev, event_id="j1:queued", project_id="p1", aggregate_id="j1", correlation_id="j1", at=T0
    )
    env = decode_envelope(raw)
    assert (env.id, env.type, env.v, env.project_id, env.aggregate_id) == (
        "j1:queued",
        "job.queued",
        1,
        "p1",
        "j1",
    )
    assert env.at == T0
    assert decode_event(env) == ev


def test_unknown_type_decodes_to_none_not_an_error() -> None:
    raw = msgspec.json.encode(
        {
            "id": "x",
            "type": "job.teleported",
            "v": 1,
            "at": T0.isoformat(),
            "project_id": "p",
            "aggregate_id": "j",
            "data": {"to": "mars"},
        }
    )
    assert decode_event(decode_envelope(raw)) is None


def test_newer_version_than_known_is_treated_as_unknown() -> None:
    raw = msgspec.json.encode(
        {
            "id": "x",
            "type": "job.queued",
            "v": 99,
            "at": T0.isoformat(),
            "project_id": "p",
            "aggregate_id": "j",
            "data": {},
        }
    )
    assert decode_event(decode_envelope(raw)) is None


def test_malformed_payload_is_a_loud_decode_error() -> None:
    raw = msgspec.json.encode(
        {
            "id": "x",
            "type": "job.queued",
            "v": 1,
            "at": T0.isoformat(),
            "project_id": "p",
            "aggregate_id": "j",
            "data": {"skill": 5},
        }
    )
    with pytest.raises(DecodeError):
        decode_event(decode_envelope(raw))
    with pytest.raises(DecodeError):
        decode_envelope(b"not json")


def test_upcaster_brings_an_old_payload_to_the_current_shape() -> None:
    class Renamed(Event, frozen=True, kw_only=True):
        type: ClassVar[str] = "test.renamed"
        version: ClassVar[int] = 2
        title: str

    @upcaster("test.renamed", 1)
    def _v1_v2(data: dict[str, object]) -> dict[str, object]:
        return {"title": data["name"]}

    raw = msgspec.json.encode(
        {
            "id": "x",
            "type": "test.renamed",
            "v": 1,
            "at": T0.isoformat(),
            "project_id": "p",
            "aggregate_id": "a",
            "data": {"name": "old"},
        }
    )
    # A throwaway type outside the product's union (AnyEvent): compare as plain objects.
    decoded: object = decode_event(decode_envelope(raw))
    assert decoded == Renamed(title="old")


def test_type_tags_are_unique_and_registered() -> None:
    types = registered_types()
    assert types["job.queued"] is JobQueued
    with pytest.raises(TypeError):

        class Dup(Event, frozen=True):
            type: ClassVar[str] = "job.queued"


def test_subjects_refuse_tokens_that_would_change_routing() -> None:
    assert event_subject("p1", "job", "j-1") == "ev.p1.job.j-1"
    assert parse_event_subject("ev.p1.job.j-1") == ("p1", "job", "j-1")
    for bad in ("a.b", "*", ">", "a b", ""):
        with pytest.raises(ValueError, match="subject token"):
            event_subject(bad, "job", "x")
