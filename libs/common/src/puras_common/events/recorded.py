"""An event as read back from the log, with where it was stored."""

from __future__ import annotations

import msgspec

from puras_common.events.base import Envelope
from puras_common.events.types import AnyEvent

__all__ = ["RecordedEvent"]


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event read from the log for a fold or a projection (``event`` is ``None`` if
    its type is unknown to this version)."""

    seq: int
    """Its sequence in the event log."""
    subject: str
    """Its subject, ``ev.<project>.<aggregate>.<id>``."""
    envelope: Envelope
    """The envelope as stored (after upcasting)."""
    event: AnyEvent | None
    """The decoded event, or ``None`` for a type this version does not know."""
