"""The event base class, the envelope, the type registry and the codec.

Every fact in the log is one JSON envelope::

    {"id": "...", "type": "job.queued", "v": 1, "at": "...", "project_id": "...",
     "aggregate_id": "...", "correlation_id": null, "causation_id": null, "data": {...}}

`data` is the payload of a frozen :class:`Event` subclass registered under its stable
``type`` tag. Decoding never fails on a type it does not know: it returns ``None`` so
projectors can skip it (an older binary reading a newer log). Payloads written with an
older schema version are upcast at decode time by functions registered with
:func:`upcaster`; nothing else in the code base ever sees an old shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

import msgspec

from puras_common.clock import utcnow

if TYPE_CHECKING:
    from puras_common.events.types import AnyEvent

__all__ = [
    "DecodeError",
    "Envelope",
    "Event",
    "decode_envelope",
    "decode_event",
    "encode_event",
    "registered_types",
    "upcaster",
]


class DecodeError(ValueError):
    """A message on an event subject is not a valid envelope of a known shape."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event payload: a fact, named in the past tense.

    Subclasses set ``type`` (the stable tag on the wire) and, when their shape changes
    incompatibly, bump ``version`` and register an upcaster from the previous one.
    """

    type: ClassVar[str]
    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tag = cls.__dict__.get("type")
        if not isinstance(tag, str):
            return  # an intermediate base class
        other = _REGISTRY.get(tag)
        if other is not None and other is not cls:
            raise TypeError(f"event type {tag!r} registered twice: {other} and {cls}")
        _REGISTRY[tag] = cls


_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """What is stored in the log for one event."""

    id: str
    """Deterministic event id; also the ``Nats-Msg-Id`` so a retried publish is deduplicated."""
    type: str
    """The payload's stable type tag, e.g. ``job.queued``."""
    v: int
    """Schema version of ``data`` as written."""
    at: datetime
    """When the writer recorded the fact (UTC)."""
    project_id: str
    """Tenant the fact belongs to; also the second token of the subject."""
    aggregate_id: str
    """Id of the aggregate (job id, project id, key prefix, ...)."""
    correlation_id: str | None = None
    """Id tying together everything caused by one request (usually the job id)."""
    causation_id: str | None = None
    """Id of the command or event that caused this one."""
    data: msgspec.Raw = msgspec.Raw(b"{}")
    """The payload, decoded lazily by type."""


_envelope_decoder = msgspec.json.Decoder(Envelope)
_encoder = msgspec.json.Encoder()
_payload_decoders: dict[type[Event], msgspec.json.Decoder[Any]] = {}


def registered_types() -> dict[str, type[Event]]:
    """Every known event type tag and its class (a copy)."""
    return dict(_REGISTRY)


def upcaster(
    tag: str, from_version: int
) -> Callable[
    [Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]
]:
    """Register ``fn(data_vN) -> data_vN+1`` for events of ``tag`` written at ``from_version``."""

    def deco(
        fn: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        _UPCASTERS[(tag, from_version)] = fn
        return fn

    return deco


def encode_event(
    event: Event,
    *,
    event_id: str,
    project_id: str,
    aggregate_id: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """Serialize one event inside its envelope (the bytes published to the log)."""
    env = Envelope(
        id=event_id,
        type=type(event).type,
        v=type(event).version,
        at=at or utcnow(),
        project_id=project_id,
        aggregate_id=aggregate_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=msgspec.Raw(_encoder.encode(event)),
    )
    return _encoder.encode(env)


def decode_envelope(data: bytes) -> Envelope:
    """The envelope of one stored message; the payload stays raw until :func:`decode_event`."""
    try:
        return _envelope_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not an event envelope: {exc}") from exc


def decode_event(env: Envelope) -> AnyEvent | None:
    """The typed payload of ``env``; ``None`` for a type this build does not know.

    The envelope's ``type`` is the union's tag: every registered class is a member of
    :data:`puras_common.events.types.AnyEvent` (a unit test holds the two equal).
    """
    cls = _REGISTRY.get(env.type)
    if cls is None:
        return None
    try:
        if env.v == cls.version:
            dec = _payload_decoders.get(cls)
            if dec is None:
                dec = _payload_decoders[cls] = msgspec.json.Decoder(cls)
            return cast("AnyEvent", dec.decode(env.data))
        if env.v > cls.version:
            # Written by a newer build: treat as unknown rather than misread it.
            return None
        data: dict[str, Any] = msgspec.json.decode(env.data)
        for v in range(env.v, cls.version):
            step = _UPCASTERS.get((env.type, v))
            if step is None:
                raise DecodeError(f"no upcaster for {env.type} v{v} -> v{v + 1}")
            data = step(data)
        return cast("AnyEvent", msgspec.convert(data, cls))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"{env.type} v{env.v} (event {env.id}): {exc}") from exc
