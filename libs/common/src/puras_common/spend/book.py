"""The spend windows in a NATS KV bucket, one record per key, changed by compare-and-set
(the revision read is the one the write expects): every runner reserving and every
billing replica settling sees what the others did, or writes again after reading it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from puras_common.bus.client import Bus
from puras_common.bus.permissions import SPEND_BUCKET
from puras_common.events.types import SpendLimit
from puras_common.spend.window import Refused, SpendWindow, release, reserve, settle

__all__ = ["SPEND_BUCKET", "KvSpendBook", "SpendBookBusy"]

CAS_ATTEMPTS = 100
"""Writes of one record before giving up (each lost only to another writer's change)."""

_decoder = msgspec.json.Decoder(SpendWindow)
_encoder = msgspec.json.Encoder()


class SpendBookBusy(RuntimeError):
    """A key's record kept changing under every attempt to write it."""


class KvSpendBook:
    def __init__(self, bus: Bus, *, replicas: int = 1) -> None:
        self._bus = bus
        self._replicas = replicas
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._bus.js.key_value(SPEND_BUCKET)
            except (BucketNotFoundError, NotFoundError):
                self._kv = await self._bus.js.create_key_value(
                    KeyValueConfig(
                        bucket=SPEND_BUCKET,
                        description="Per-key spend in the current day and month, and holds (Z1)",
                        history=1,
                        storage=StorageType.FILE,
                        replicas=self._replicas,
                    )
                )
        return self._kv

    async def window(self, project_id: str, key_prefix: str) -> SpendWindow:
        """The key's record as it is now (an empty one when it has none)."""
        return (await self._read(await self._bucket(), _key(project_id, key_prefix)))[0]

    async def reserve(
        self,
        project_id: str,
        key_prefix: str,
        limit: SpendLimit,
        *,
        hold_id: str,
        micros: int,
        now: datetime,
        expires_at: datetime,
    ) -> Refused | None:
        """Hold ``micros`` for a call; :class:`Refused` when it would pass the limit."""
        refused: list[Refused] = []

        def change(w: SpendWindow) -> SpendWindow | None:
            out = reserve(w, limit, hold_id=hold_id, micros=micros, now=now, expires_at=expires_at)
            if isinstance(out, Refused):
                refused.append(out)
                return None
            return out

        await self._change(project_id, key_prefix, change)
        return refused[-1] if refused else None

    async def release(
        self, project_id: str, key_prefix: str, *, hold_id: str, now: datetime
    ) -> None:
        await self._change(project_id, key_prefix, lambda w: release(w, hold_id=hold_id, now=now))

    async def settle(
        self,
        project_id: str,
        key_prefix: str,
        *,
        hold_id: str,
        micros: int,
        now: datetime,
        first_charge: bool,
    ) -> None:
        await self._change(
            project_id,
            key_prefix,
            lambda w: settle(w, hold_id=hold_id, micros=micros, now=now, first_charge=first_charge),
        )

    async def _read(self, kv: KeyValue, key: str) -> tuple[SpendWindow, int]:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return SpendWindow(), 0
        return _decoder.decode(entry.value or b"{}"), int(entry.revision or 0)

    async def _change(
        self,
        project_id: str,
        key_prefix: str,
        change: Callable[[SpendWindow], SpendWindow | None],
    ) -> None:
        kv = await self._bucket()
        key = _key(project_id, key_prefix)
        for _ in range(CAS_ATTEMPTS):
            window, revision = await self._read(kv, key)
            new = change(window)
            if new is None:
                return
            try:
                await kv.update(key, _encoder.encode(new), last=revision)
            except KeyWrongLastSequenceError:
                continue
            return
        raise SpendBookBusy(f"the spend record of key {key_prefix} kept changing; try again")


def _key(project_id: str, key_prefix: str) -> str:
    return f"{project_id}.{key_prefix}"
