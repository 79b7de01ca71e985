"""Where deployment bundles (zips) live, behind a small port.

The default store is a JetStream object store bucket: durable, replicated with the rest
of the log in a cluster, reachable by every runner that reaches NATS, and chunked so a
bundle is not limited by the message size.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

__all__ = [
    "BUNDLE_BUCKET",
    "BundleNotFound",
    "BundleStore",
    "NatsBundleStore",
    "bundle_key",
    "sha256_hex",
]

BUNDLE_BUCKET = "PURAS_BUNDLES"


class BundleNotFound(LookupError):
    pass


def bundle_key(project_id: str, deployment_id: str) -> str:
    return f"{project_id}/{deployment_id}.zip"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BundleStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class NatsBundleStore:
    """Bundles in the ``PURAS_BUNDLES`` JetStream object store."""

    def __init__(self, js: JetStreamContext, *, replicas: int = 1) -> None:
        self._js = js
        self._replicas = replicas
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            try:
                self._store = await self._js.object_store(BUNDLE_BUCKET)
            except (BucketNotFoundError, NotFoundError):
                self._store = await self._js.create_object_store(
                    BUNDLE_BUCKET,
                    config=ObjectStoreConfig(
                        description="Puras deployment bundles",
                        storage=StorageType.FILE,
                        replicas=self._replicas,
                    ),
                )
        return self._store

    async def put(self, key: str, data: bytes) -> None:
        store = await self._bucket()
        await store.put(key, data)

    async def get(self, key: str) -> bytes:
        store = await self._bucket()
        try:
            res = await store.get(key)
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise BundleNotFound(key) from exc
        if res.data is None:
            raise BundleNotFound(key)
        return bytes(res.data)

    async def delete(self, key: str) -> None:
        store = await self._bucket()
        try:
            await store.delete(key)
        except (ObjectNotFoundError, NotFoundError):
            return
