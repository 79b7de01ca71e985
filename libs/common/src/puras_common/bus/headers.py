"""NATS header names used by Puras (JetStream's own and ours)."""

from __future__ import annotations

from typing import Final

MSG_ID: Final = "Nats-Msg-Id"
"""Deduplication id of a published message (JetStream drops a repeat inside the window)."""
EXPECTED_LAST_SUBJECT_SEQ: Final = "Nats-Expected-Last-Subject-Sequence"
"""Optimistic concurrency: the publish fails unless the subject's last sequence is this."""
EXPECTED_STREAM: Final = "Nats-Expected-Stream"
"""The publish fails unless the subject is captured by this stream."""
STATUS: Final = "Status"
"""Status code of a header-only control message (100 heartbeat, 404, 408, 409)."""
DESCRIPTION: Final = "Description"
PENDING_MESSAGES: Final = "Nats-Pending-Messages"
"""On a 408/409 pull status: how many messages of the request were left unfulfilled."""
PENDING_BYTES: Final = "Nats-Pending-Bytes"
