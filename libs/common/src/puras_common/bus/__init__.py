"""The NATS/JetStream side of Puras: connection, streams, publishing, consuming."""

from puras_common.bus.client import (
    Bus,
    ConcurrencyConflict,
    NatsCredentials,
    NatsLoginRefused,
    NatsUnreachable,
    Published,
    connect,
    redact_url,
)
from puras_common.bus.follow import EventFollower, RawEvent
from puras_common.bus.pull import PullConsumer, ensure_durable
from puras_common.bus.streams import StreamConfigMismatch, declared_streams, ensure_streams

__all__ = [
    "Bus",
    "ConcurrencyConflict",
    "EventFollower",
    "NatsCredentials",
    "NatsLoginRefused",
    "NatsUnreachable",
    "Published",
    "PullConsumer",
    "RawEvent",
    "StreamConfigMismatch",
    "connect",
    "declared_streams",
    "ensure_durable",
    "ensure_streams",
    "redact_url",
]
