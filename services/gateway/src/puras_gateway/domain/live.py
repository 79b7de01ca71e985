"""The model's text as it is generated, relayed to a job's SSE clients (Z5; pure).

Runners publish ``{"type": "model_delta", "step": n, "text": "..."}`` on the job's live
subject; none of it is stored. A stream relays a delta as an ``event: model_delta``
frame whose SSE ``id:`` repeats the last durable event the client has, so a client that
resumes from it (``Last-Event-ID``) loses no durable event and sees none twice. A delta
of a step whose ``model_response`` the client already has is late and is dropped: the
response holds the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

__all__ = ["MODEL_DELTA", "DeltaGate", "ModelDelta", "delta_frame", "parse_live_frame"]

MODEL_DELTA = "model_delta"

_json = msgspec.json.Encoder()


class _Wire(msgspec.Struct, frozen=True):
    type: str
    step: int
    text: str


_decode = msgspec.json.Decoder(_Wire)


@dataclass(frozen=True, slots=True)
class ModelDelta:
    step: int
    """The model call (1-based) whose text this piece is."""
    text: str


def parse_live_frame(data: bytes) -> ModelDelta | None:
    """A live frame as a delta, or ``None`` for anything else (a frame of a kind this
    gateway does not know, or malformed: it is dropped, the log has the truth)."""
    try:
        wire = _decode.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if wire.type != MODEL_DELTA or wire.step < 1:
        return None
    return ModelDelta(step=wire.step, text=wire.text)


def delta_frame(delta: ModelDelta, last_id: int) -> bytes:
    """The SSE frame of a delta; ``last_id`` is the last durable event the client has."""
    data = _json.encode({"type": MODEL_DELTA, "payload": {"step": delta.step, "text": delta.text}})
    return b"event: %s\nid: %d\ndata: %s\n\n" % (MODEL_DELTA.encode(), last_id, data)


class DeltaGate:
    """Which deltas one stream still relays: those of steps whose response it has not
    passed (sent, or skipped because the client resumed after it)."""

    def __init__(self, after: int) -> None:
        self.last_id = after
        """The last durable event the client has (for the ``id:`` of a delta frame)."""
        self._responded: set[int] = set()

    def passed(self, idx: int, responded_step: int | None) -> None:
        """The stream is past event ``idx``; ``responded_step`` if it is a model response."""
        self.last_id = max(self.last_id, idx)
        if responded_step is not None:
            self._responded.add(responded_step)

    def frames(self, deltas: list[ModelDelta]) -> list[bytes]:
        return [delta_frame(d, self.last_id) for d in deltas if d.step not in self._responded]
