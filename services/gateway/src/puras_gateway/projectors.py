"""The gateway's projectors (``GATEWAY_PROJECTIONS``): run, retried, reported.

They run either in a process of their own (``puras-gateway-projector``, the default
wherever the stack is started: the HTTP event loop then only serves requests) or inside
the HTTP gateway (``run_projectors``). Either way one replica per projection is active
(the runner's advisory lock) and the others stand by. Readers in any process wait for
them through the checkpoint watcher (``NOTIFY puras_projection``), never through this
object, except the in-process gateway, which asks its own runner first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from puras_common.health import degraded_details
from puras_common.logging import get_logger
from puras_common.projection import ProjectorRunner
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS, JobsProjection

__all__ = ["PROJECTION_NAMES", "GatewayProjectors", "tables_exist"]

log = get_logger(__name__)

PROJECTION_NAMES: tuple[str, ...] = tuple(p.name for p in GATEWAY_PROJECTIONS)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


async def tables_exist(pool: asyncpg.Pool) -> bool:
    """Whether every gateway projection has set up its tables (a checkpoint row each):
    what a gateway needs before its first read, whoever runs the projectors."""
    try:
        n = await pool.fetchval(
            "SELECT count(*) FROM projection_checkpoints WHERE name = ANY($1::text[])",
            list(PROJECTION_NAMES),
        )
    except asyncpg.UndefinedTableError:
        return False
    return int(n or 0) == len(PROJECTION_NAMES)


class GatewayProjectors:
    """One :class:`ProjectorRunner` per gateway projection, each restarted on failure."""

    def __init__(
        self,
        dsn: str,
        js: JetStreamContext,
        *,
        jobs_linger_s: float = 0.0,
        on_commit: Callable[[str, int], None] | None = None,
    ) -> None:
        # Only the jobs projection is busy enough to batch; the others answer writes
        # that wait for them (a key, a deployment), so they commit at once.
        self.runners = [
            ProjectorRunner(
                dsn,
                js,
                proj_cls(),
                linger_s=jobs_linger_s if proj_cls is JobsProjection else 0.0,
                on_commit=on_commit,
            )
            for proj_cls in GATEWAY_PROJECTIONS
        ]
        self.errors: dict[str, str] = {}
        """Projectors retrying after a failure that is not an event's (Postgres down)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def start(self) -> None:
        for runner in self.runners:
            task = asyncio.create_task(
                self._run(runner), name=f"projector-{runner.projection.name}"
            )
            self._tasks.append(task)

    def runner(self, name: str) -> ProjectorRunner | None:
        return next((r for r in self.runners if r.projection.name == name), None)

    async def wait_tables(self, pool: asyncpg.Pool, timeout: float = 30.0) -> None:
        """Until each projector set up its tables (or another replica holds the lock, in
        which case they exist already); raises if a projector failed at start."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await tables_exist(pool):
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise RuntimeError("a projector failed at start") from t.exception()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"projection tables were not created within {timeout:.0f}s")
            await asyncio.sleep(0.02)

    async def _run(self, runner: ProjectorRunner) -> None:
        # An event the projector cannot decode or apply is quarantined inside run() and
        # never ends it. What does end it is not an event's fault (Postgres unreachable,
        # the connection lost, the checkpoint moved): nothing was skipped, so start again
        # from the checkpoint, with backoff, while the API keeps serving (degraded).
        name = runner.projection.name
        delay = RETRY_FIRST_S
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            started = loop.time()
            try:
                await runner.run(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors[name] = f"{type(exc).__name__}: {exc}"[:500]
                if loop.time() - started > 60:
                    delay = RETRY_FIRST_S  # it ran a while: this is a new failure
                log.exception("projector failed; retrying", projection=name, retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def failing(self) -> dict[str, str]:
        """Projectors whose last run failed and that neither follow nor stand by again."""
        recovered = {r.projection.name for r in self.runners if r.following or r.standby}
        return {n: e for n, e in self.errors.items() if n not in recovered}

    def ready(self) -> bool:
        """Each projection caught up with the log as it stood at start, or standing by
        for the replica that holds it."""
        return all(r.standby or r.caught_up.is_set() for r in self.runners)

    def degraded(self) -> dict[str, Any]:
        """The projector process's ``/readyz`` details (quarantine, failures)."""
        return degraded_details(
            {r.projection.name: r.quarantined for r in self.runners if r.following},
            failing=self.failing(),
        )

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
