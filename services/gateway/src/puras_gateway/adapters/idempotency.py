"""Idempotency keys (J10) in a JetStream key-value bucket.

``create`` on a KV key succeeds for exactly one caller, across every gateway replica:
that caller's job id is the one all repeats of the request get. The entry keeps the hash
of the request body so a repeat with another body is told apart (409). Entries expire
after ``ttl_s`` (25 h: "remembered at least 24 h").
"""

from __future__ import annotations

import hashlib

import msgspec
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from puras_common.bus import Bus
from puras_gateway.domain.idempotency import Claim, body_hash

__all__ = ["IDEMPOTENCY_BUCKET", "Claim", "IdempotencyKeys", "body_hash"]

IDEMPOTENCY_BUCKET = "PURAS_IDEMPOTENCY"


class _Entry(msgspec.Struct, frozen=True):
    job_id: str
    body_sha256: str


class IdempotencyKeys:
    def __init__(self, bus: Bus, *, replicas: int = 1, ttl_s: float = 25 * 3600) -> None:
        self._bus = bus
        self._replicas = replicas
        self._ttl = ttl_s
        self._kv: KeyValue | None = None

    async def start(self) -> None:
        try:
            self._kv = await self._bus.js.key_value(IDEMPOTENCY_BUCKET)
        except (BucketNotFoundError, NotFoundError):
            self._kv = await self._bus.js.create_key_value(
                KeyValueConfig(
                    bucket=IDEMPOTENCY_BUCKET,
                    description="Idempotency keys of job submits (J10)",
                    history=1,
                    ttl=self._ttl,
                    storage=StorageType.FILE,
                    replicas=self._replicas,
                )
            )

    @staticmethod
    def _key(project_id: str, idempotency_key: str) -> str:
        # Scoped to the project; hashed so any header value is a valid KV key.
        return f"{project_id}.{hashlib.sha256(idempotency_key.encode()).hexdigest()}"

    async def claim(
        self, project_id: str, idempotency_key: str, new_job_id: str, body: str
    ) -> Claim:
        assert self._kv is not None
        key = self._key(project_id, idempotency_key)
        value = msgspec.json.encode(_Entry(job_id=new_job_id, body_sha256=body))
        try:
            await self._kv.create(key, value)
            return Claim(job_id=new_job_id, first=True, same_body=True)
        except KeyWrongLastSequenceError:
            pass
        entry = await self._kv.get(key)
        known = msgspec.json.decode(entry.value or b"{}", type=_Entry)
        return Claim(job_id=known.job_id, first=False, same_body=known.body_sha256 == body)
