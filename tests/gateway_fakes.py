"""In-memory implementations of the gateway's ports (``puras_gateway.app.ports``); the
command queue is held to the NATS adapter's behaviour by
``tests/integration/gateway/test_gateway_ports.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from puras_common.events.base import Envelope
from puras_common.events.commands import CancelJob, SubmitJob
from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import DeploymentActivated, DeploymentCreated, JobQueued, JobRecord
from puras_common.views.deployments import DeploymentsView
from puras_common.views.keys import KeysView
from puras_gateway.bootstrap import App, Gateway, build
from puras_gateway.domain.job_events import JobEvent
from puras_gateway.domain.requests import Cursor, ListParams
from puras_gateway.domain.usage_query import UsageQuery
from puras_gateway.settings import GatewaySettings

__all__ = [
    "T0",
    "FakeCommands",
    "FakeJobLog",
    "FakeLiveViews",
    "FakeReadViews",
    "FakeTail",
    "FixedClock",
    "Unused",
    "client_for",
    "gateway",
    "job_reads_gateway",
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeCommands:
    """PURAS_CMDS: a submit waits here until the scheduler takes it (``take``)."""

    def __init__(self) -> None:
        self.submits: dict[tuple[str, str], SubmitJob] = {}
        self.cancels: list[CancelJob] = []

    async def submit(self, cmd: SubmitJob) -> None:
        # The stream's duplicate window keeps the first of two submits of one job id.
        self.submits.setdefault((cmd.project_id, cmd.job_id), cmd)

    async def cancel(self, cmd: CancelJob) -> None:
        self.cancels.append(cmd)

    async def pending_submit(self, project_id: str, job_id: str) -> SubmitJob | None:
        return self.submits.get((project_id, job_id))

    def take(self, project_id: str, job_id: str) -> SubmitJob:
        """The scheduler acks the submit: it leaves the queue."""
        return self.submits.pop((project_id, job_id))


class FakeTail:
    def mark_seen(self, events: list[JobEvent]) -> None:
        pass

    def poll(self) -> JobEvent | None:
        return None

    async def wait(self, timeout: float | None) -> bool:
        return False

    async def next(self, timeout: float | None) -> JobEvent | None:
        return None

    async def close(self) -> None:
        pass


class FakeJobLog:
    """The job subjects of the event log."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], list[JobEvent]] = {}
        self._seq = 0

    def admit(self, cmd: SubmitJob, at: datetime) -> None:
        """What the scheduler appends for an admitted submit: ``job.queued``."""
        ev = JobQueued(
            skill=cmd.skill,
            inputs=cmd.inputs,
            deployment_id=cmd.deployment_id,
            created_at=cmd.submitted_at,
        )
        env = Envelope(
            id=f"{cmd.job_id}:queued",
            type=JobQueued.type,
            v=1,
            at=at,
            project_id=cmd.project_id,
            aggregate_id=cmd.job_id,
        )
        self._seq += 1
        events = self.jobs.setdefault((cmd.project_id, cmd.job_id), [])
        events.append(JobEvent(idx=len(events) + 1, envelope=env, event=ev, seq=self._seq))

    async def tail(self, project_id: str, job_id: str) -> FakeTail:
        return FakeTail()

    async def replay(
        self, project_id: str, job_id: str, *, after_seq: int = 0, first_idx: int = 1
    ) -> list[JobEvent]:
        return [e for e in self.jobs.get((project_id, job_id), []) if e.seq > after_seq]

    async def last(self, project_id: str, job_id: str) -> JobEvent | None:
        events = self.jobs.get((project_id, job_id))
        return events[-1] if events else None


class FakeReadViews:
    """Postgres read views that have not caught up with anything yet."""

    async def get_job(self, project_id: str, job_id: str) -> JobRecord | None:
        return None

    async def get_job_at(self, project_id: str, job_id: str) -> tuple[JobRecord, int, int] | None:
        return None

    async def job_events(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        return []

    async def list_jobs(
        self, project_id: str, params: ListParams
    ) -> tuple[list[JobRecord], Cursor | None]:
        return [], None

    async def list_deployments(self, project_id: str) -> list[dict[str, Any]]:
        return []

    async def list_keys(self, project_id: str) -> list[dict[str, Any]]:
        return []

    async def list_projects(self) -> list[dict[str, Any]]:
        return []

    async def balance(self, project_id: str) -> int:
        return 0

    async def key_spend(self, project_id: str, prefix: str, *, since: datetime) -> int:
        return 0

    async def usage(self, project_id: str, q: UsageQuery) -> list[dict[str, Any]]:
        return []


class FakeLiveViews:
    """Keys and deployments, fed by hand (``deploy``)."""

    def __init__(self) -> None:
        self.keys = KeysView()
        self.deployments = DeploymentsView()
        self._seq = 0

    def deploy(self, project_id: str, deployment_id: str, skills: list[str], at: datetime) -> None:
        """A deployment with these (schema-less) skills, created and activated."""
        created = msgspec.convert(
            {
                "deployment_id": deployment_id,
                "notes": "",
                "bundle": {"key": f"{project_id}/{deployment_id}.zip", "sha256": "x", "size": 1},
                "requirements_sha256": None,
                "skills": [
                    {"name": n, "kind": "deterministic", "entrypoint": "main.py:run"}
                    for n in skills
                ],
            },
            DeploymentCreated,
        )
        events: list[DeploymentCreated | DeploymentActivated] = [
            created,
            DeploymentActivated(deployment_id=deployment_id),
        ]
        for ev in events:
            self._seq += 1
            env = Envelope(
                id=f"e{self._seq}",
                type=ev.type,
                v=1,
                at=at,
                project_id=project_id,
                aggregate_id=project_id,
            )
            subject = f"ev.{project_id}.deployments.{project_id}"
            self.deployments.apply(
                RecordedEvent(seq=self._seq, subject=subject, envelope=env, event=ev)
            )

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool:
        return seq <= self._seq


class FixedClock:
    def now(self) -> datetime:
        return T0


class Unused:
    """A port the test does not expect to be called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not used by job reads: {name}")


def job_reads_gateway(project_id: str, queue: FakeCommands, log: FakeJobLog) -> App:
    """A gateway over the fakes with one project whose active deployment ``d1`` has the
    skill ``echo``; two built on the same ``queue`` and ``log`` are two replicas."""
    views = FakeLiveViews()
    views.deploy(project_id, "d1", ["echo"], T0)
    return build(
        GatewaySettings(env="dev", read_your_writes_s=0.01),
        events=Unused(),
        commands=queue,
        views=views,
        reads=FakeReadViews(),
        job_log=log,
        idempotency=None,
        billing=Unused(),
        bundles=Unused(),
        watcher=Unused(),
        clock=FixedClock(),
    )


def gateway(settings: GatewaySettings) -> Gateway:
    """A gateway whose use cases run over the fakes (no lifespan: nothing to connect)."""
    gw = Gateway(settings)
    gw.app = build(
        settings,
        events=Unused(),
        commands=FakeCommands(),
        views=FakeLiveViews(),
        reads=FakeReadViews(),
        job_log=Unused(),
        idempotency=None,
        billing=Unused(),
        bundles=Unused(),
        watcher=Unused(),
        clock=FixedClock(),
    )
    return gw


async def client_for(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The real HTTP app over :func:`gateway`, in process."""
    from puras_gateway.entrypoints.http import create_app

    transport = httpx.ASGITransport(app=create_app(gateway(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield c
