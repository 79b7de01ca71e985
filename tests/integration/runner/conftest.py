"""Fixtures of the runner's integration tests (helpers live in ``runner_helpers``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Harness, RunningRunner, StartRunner

from puras_common.bus import Bus
from puras_common.ids import new_id
from puras_runner.adapters.secrets import NoSecrets
from puras_runner.app.ports import SecretsProvider
from puras_runner.bootstrap import start_runner


@pytest.fixture
def harness(bus: Bus, nats_server: Any, tmp_path: Path) -> Harness:
    return Harness(bus, nats_server.url, tmp_path, pool=f"t{new_id().replace('-', '')[:12]}")


@pytest.fixture
async def start(harness: Harness) -> AsyncIterator[StartRunner]:
    """Start in-process runners; each is stopped (cleanly) at the end of the test."""
    running: list[RunningRunner] = []

    async def _start(secrets: SecretsProvider | None = None, **overrides: Any) -> RunningRunner:
        runner = await start_runner(harness.settings(**overrides), secrets=secrets or NoSecrets())
        stop = asyncio.Event()
        handle = RunningRunner(runner, stop, asyncio.create_task(runner.run(stop)))
        running.append(handle)
        return handle

    yield _start
    for handle in running:
        with contextlib.suppress(Exception):
            await handle.stop()
