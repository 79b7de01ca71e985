"""Postgres projections of the event log: checkpointed, idempotent, rebuildable."""

from puras_common.projection.base import Projection, RecordedEvent
from puras_common.projection.runner import CheckpointMoved, ProjectorRunner, decode_batch

__all__ = ["CheckpointMoved", "Projection", "ProjectorRunner", "RecordedEvent", "decode_batch"]
