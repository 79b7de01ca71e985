"""A projector running in the background over a real nats-server and Postgres, as a
service runs it, and the gateway's read models over the same database: for the
integration tests of projections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from puras_common.db import create_pool
from puras_common.projection import ProjectorRunner
from puras_common.projection.base import Projection
from puras_gateway.adapters.read_models import ReadModels

__all__ = ["Projector", "reads"]


class Projector:
    """``projection`` applied from the log in the background until :meth:`stop`."""

    def __init__(self, dsn: str, bus: Any, projection: Projection) -> None:
        self.runner = ProjectorRunner(dsn, bus.js, projection)
        self._name = projection.name
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.runner.run(self._stop))

    async def applied(self, seq: int) -> None:
        ok = await self.runner.wait_for(seq, 30)
        assert ok, (
            f"the {self._name} projection is stuck at {self.runner.last_seq}, waiting for {seq}"
        )

    async def stop(self) -> None:
        self._stop.set()
        await self._task


@pytest.fixture
async def reads(database_url: str) -> AsyncIterator[ReadModels]:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        yield ReadModels(pool)
    finally:
        await pool.close()
