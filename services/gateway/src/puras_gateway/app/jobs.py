"""Job use cases: submit (async, wait, stream), read, list, events, SSE attach."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from puras_common.bus import Bus
from puras_common.clock import utcnow
from puras_common.events.commands import CancelJob, SubmitJob, encode_command
from puras_common.events.subjects import CMD_SCHEDULER_CANCEL, CMD_SCHEDULER_SUBMIT, CMDS_STREAM
from puras_common.events.types import JobCancelled, JobFailed, JobRecord, JobSucceeded
from puras_common.ids import new_id
from puras_common.schemas import validate_instance
from puras_common.views.jobs import apply_job_event, job_out
from puras_gateway.adapters.idempotency import IdempotencyKeys, body_hash
from puras_gateway.adapters.job_log import JobEvent, JobLog, JobTail, fold
from puras_gateway.adapters.live_views import LiveViews
from puras_gateway.adapters.read_models import ReadModels
from puras_gateway.app.auth import Principal
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.requests import ListParams, SubmitBody, SubmitMode, is_terminal

__all__ = ["JobsService"]

_json = msgspec.json.Encoder()

TERMINAL_TYPES = (JobSucceeded, JobFailed, JobCancelled)


def _frame(ev: JobEvent) -> bytes:
    data = _json.encode(
        {"id": ev.idx, "type": ev.type, "payload": ev.payload(), "at": ev.envelope.at}
    )
    return b"id: %d\ndata: %s\n\n" % (ev.idx, data)


def _end_frame(job: JobRecord) -> bytes:
    return b"event: end\ndata: %s\n\n" % _json.encode(job_out(job))


PING = b": ping\n\n"


class _Recent:
    """Jobs this process accepted recently, for reads that beat the projection (J4)."""

    def __init__(self, max_items: int = 100_000, ttl_s: float = 600.0) -> None:
        self._items: OrderedDict[str, tuple[float, JobRecord]] = OrderedDict()
        self._max = max_items
        self._ttl = ttl_s

    def add(self, job: JobRecord) -> None:
        now = time.monotonic()
        self._items[job.id] = (now, job)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        while self._items:
            first_at, _ = next(iter(self._items.values()))
            if now - first_at <= self._ttl:
                break
            self._items.popitem(last=False)

    def get(self, project_id: str, job_id: str) -> JobRecord | None:
        item = self._items.get(job_id)
        if item is None or item[1].project_id != project_id:
            return None
        return item[1]


class JobsService:
    def __init__(
        self,
        *,
        bus: Bus,
        views: LiveViews,
        reads: ReadModels,
        job_log: JobLog,
        idempotency: IdempotencyKeys | None = None,
        ping_s: float = 15.0,
        read_wait_s: float = 5.0,
        sync_view: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._bus = bus
        self._views = views
        self._reads = reads
        self._log = job_log
        self._ping = ping_s
        self._idem = idempotency
        self._read_wait = read_wait_s
        self._sync_view = sync_view
        self._recent = _Recent()

    # -- submit ------------------------------------------------------------------------

    def _admit(self, p: Principal, body: SubmitBody) -> tuple[str, int]:
        pd = self._views.deployments.project(p.project_id)
        dep = pd.active
        if dep is None:
            raise ApiError.not_found(
                f"unknown skill {body.skill!r}: the project has no active deployment yet; "
                "push one with `puras push <project dir>` (POST /v1/deployments)",
                code="skill_not_found",
                available_skills=[],
            )
        spec = dep.skills.get(body.skill)
        if spec is None:
            names = sorted(dep.skills)
            raise ApiError.not_found(
                f"unknown skill {body.skill!r}; skills of the active deployment: "
                + (", ".join(names) if names else "(none)"),
                code="skill_not_found",
                available_skills=names,
            )
        if spec.input_schema is not None:
            problem = validate_instance(spec.input_schema, body.inputs, root="inputs")
            if problem is not None:
                raise ApiError.unprocessable(problem, code="invalid_inputs")
        return dep.id, pd.subject_seq

    async def submit(
        self,
        p: Principal,
        body: SubmitBody,
        mode: SubmitMode,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        job_id = new_id()
        if idempotency_key is not None:
            if self._idem is None:
                raise ApiError.unavailable("idempotency keys are not available on this gateway")
            claim = await self._idem.claim(
                p.project_id, idempotency_key, job_id, body_hash(body.skill, body.inputs)
            )
            if not claim.same_body:
                raise ApiError.conflict(
                    "this Idempotency-Key was already used with a different request body; "
                    "use a new key for a different request",
                    code="idempotency_key_reused",
                    job_id=claim.job_id,
                )
            if not claim.first:
                return await self._repeat(p, body, mode, claim.job_id, idempotency_key)
        deployment_id, after_seq = self._admit(p, body)
        return await self._submit(p, body, mode, job_id, deployment_id, after_seq, idempotency_key)

    async def _submit(
        self,
        p: Principal,
        body: SubmitBody,
        mode: SubmitMode,
        job_id: str,
        deployment_id: str,
        after_seq: int,
        idempotency_key: str | None,
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        now = utcnow()
        cmd = SubmitJob(
            job_id=job_id,
            project_id=p.project_id,
            skill=body.skill,
            inputs=body.inputs,
            submitted_at=now,
            after_seq=after_seq,
            idempotency_key=idempotency_key,
        )
        # For wait and stream, listen before publishing: no event can slip past us.
        tail = await self._log.tail(p.project_id, job_id) if mode.kind != "async" else None
        try:
            await self._bus.publish_raw(
                CMD_SCHEDULER_SUBMIT, encode_command(cmd), msg_id=job_id, stream=CMDS_STREAM
            )
        except BaseException:
            if tail is not None:
                await tail.close()
            raise
        queued = JobRecord(
            id=job_id,
            project_id=p.project_id,
            skill=body.skill,
            status="queued",
            inputs=body.inputs,
            deployment_id=deployment_id,
            created_at=now,
        )
        self._recent.add(queued)
        if tail is None:
            return job_out(queued)
        if mode.kind == "wait":
            try:
                return job_out(await self._wait(p, queued, tail, mode.timeout_s))
            finally:
                await tail.close()
        return self._stream(p.project_id, job_id, tail, past=[], after=0)

    async def _repeat(
        self, p: Principal, body: SubmitBody, mode: SubmitMode, job_id: str, key: str
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        """A repeat of an idempotent submit: answer with the original job, in the mode asked.

        The first request may still be between claiming the key and publishing (or may
        have died there): wait a moment for the job to show, then submit it ourselves
        under the same job id (the scheduler admits a job id once).
        """
        tail = await self._log.tail(p.project_id, job_id)
        try:
            past = await self._log.replay(p.project_id, job_id)
            if not past and self._recent.get(p.project_id, job_id) is None:
                first = await tail.next(self._read_wait)
                if first is None:
                    await tail.close()
                    deployment_id, after_seq = self._admit(p, body)
                    return await self._submit(p, body, mode, job_id, deployment_id, after_seq, key)
                past = await self._log.replay(p.project_id, job_id)
            tail.mark_seen(past)
        except BaseException:
            await tail.close()
            raise
        if mode.kind == "stream":
            return self._stream(p.project_id, job_id, tail, past=past, after=0)
        try:
            current = fold(past) or self._recent.get(p.project_id, job_id)
            if current is None:
                raise ApiError.unavailable(
                    "the original job of this Idempotency-Key is not visible yet; retry"
                )
            if mode.kind == "async" or is_terminal(current.status):
                return job_out(current)
            return job_out(await self._wait(p, current, tail, mode.timeout_s))
        finally:
            await tail.close()

    async def _wait(
        self, p: Principal, queued: JobRecord, tail: JobTail, timeout: float
    ) -> JobRecord:
        deadline = asyncio.get_running_loop().time() + timeout
        seen: list[JobEvent] = []
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            ev = await tail.next(left)
            if ev is None:
                break
            if isinstance(ev.event, TERMINAL_TYPES):
                return ev.event.job
            seen.append(ev)
        # Timed out: answer with the job as the log has it now (J1: the current row).
        current = fold(await self._log.replay(p.project_id, queued.id))
        return current or fold(seen) or queued

    # -- reads -------------------------------------------------------------------------

    async def get(self, p: Principal, job_id: str) -> dict[str, Any]:
        return job_out(await self._find(p, job_id))

    async def _find(self, p: Principal, job_id: str) -> JobRecord:
        """The job as the log has it now, read through the projection where it is current.

        A terminal row is final. Otherwise the log may be ahead of the projection by a
        moment; one look at the subject's last event settles it, so a client that has
        just seen a job end (on a stream or a wait) never reads it back as queued.
        """
        if not _plausible_id(job_id):
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        found = await self._reads.get_job_at(p.project_id, job_id)
        if found is not None and is_terminal(found[0].status):
            return found[0]
        last = await self._log.last(p.project_id, job_id)
        if last is None:
            job = found[0] if found else self._recent.get(p.project_id, job_id)
            if job is None:
                raise ApiError.not_found(
                    f"job {job_id!r} not found in this project", code="job_not_found"
                )
            return job
        if found is not None and last.seq == found[1]:
            return found[0]
        if isinstance(last.event, TERMINAL_TYPES):
            return last.event.job
        row, after = (found[0], found[1]) if found else (None, 0)
        job = row
        for e in await self._log.replay(p.project_id, job_id, after_seq=after):
            job = apply_job_event(job, e.envelope, e.event)
        if job is None:
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        return job

    async def cancel(self, p: Principal, job_id: str, wait_s: float) -> dict[str, Any]:
        """J6: cancel a queued or running job; a cancelled one is a no-op, an ended one 409."""
        job = await self._find(p, job_id)
        if job.status == "cancelled":
            return job_out(job)
        if job.status in ("succeeded", "failed"):
            raise ApiError.conflict(
                f"job {job_id} already {job.status}; only queued or running jobs can be cancelled",
                code="job_finished",
                job_status=job.status,
            )
        tail = await self._log.tail(p.project_id, job_id)
        try:
            cmd = CancelJob(job_id=job_id, project_id=p.project_id, requested_at=utcnow())
            await self._bus.publish_raw(
                CMD_SCHEDULER_CANCEL,
                encode_command(cmd),
                msg_id=f"{job_id}:cancel",
                stream=CMDS_STREAM,
            )
            # Answer with the outcome when it comes soon (it normally does in ms); a job
            # whose runner is slow to stop is answered as it stands.
            deadline = asyncio.get_running_loop().time() + wait_s
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                ev = await tail.next(left)
                if ev is None:
                    break
                if isinstance(ev.event, TERMINAL_TYPES):
                    return job_out(ev.event.job)
        finally:
            await tail.close()
        return job_out(await self._find(p, job_id))

    async def list_jobs(self, p: Principal, params: ListParams) -> dict[str, Any]:
        if self._sync_view is not None:
            # A list must show what the client already saw (a job that just ended).
            await self._sync_view()
        jobs, nxt = await self._reads.list_jobs(p.project_id, params)
        return {"jobs": [job_out(j) for j in jobs], "next_cursor": nxt.encode() if nxt else None}

    async def events(self, p: Principal, job_id: str) -> dict[str, Any]:
        job = await self._reads.get_job(p.project_id, job_id)
        if job is not None:
            rows = await self._reads.job_events(p.project_id, job_id)
            # The projection may trail the log by a moment; the log has the newest events.
            if job.status in ("queued", "running") or not rows:
                past = await self._log.replay(p.project_id, job_id)
                if len(past) > len(rows):
                    return {"events": [e.as_api() for e in past]}
            return {"events": rows}
        await self._find(p, job_id)  # 404 unless the job exists
        past = await self._log.replay(p.project_id, job_id)
        return {"events": [e.as_api() for e in past]}

    async def attach(self, p: Principal, job_id: str, after: int) -> AsyncIterator[bytes]:
        """SSE attach or re-attach (J5); ``after`` is the Last-Event-ID (0: from the start)."""
        if not _plausible_id(job_id):
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        tail = await self._log.tail(p.project_id, job_id)
        try:
            past = await self._log.replay(p.project_id, job_id)
            if not past:
                await self._find(p, job_id)  # 404 for a job that is not ours / does not exist
            tail.mark_seen(past)
        except BaseException:
            await tail.close()
            raise
        return self._stream(p.project_id, job_id, tail, past=past, after=after)

    async def _stream(
        self, project_id: str, job_id: str, tail: JobTail, *, past: list[JobEvent], after: int
    ) -> AsyncIterator[bytes]:
        try:
            for ev in past:
                if isinstance(ev.event, TERMINAL_TYPES):
                    if ev.idx > after:
                        yield _frame(ev)
                    yield _end_frame(ev.event.job)
                    return
                if ev.idx > after:
                    yield _frame(ev)
            while True:
                ev2 = await tail.next(self._ping)
                if ev2 is None:
                    yield PING
                    continue
                if ev2.idx > after:
                    yield _frame(ev2)
                if isinstance(ev2.event, TERMINAL_TYPES):
                    yield _end_frame(ev2.event.job)
                    return
        finally:
            await tail.close()


def _plausible_id(job_id: str) -> bool:
    # Job ids are UUIDs; anything else cannot be a job and must not reach a subject name.
    if len(job_id) != 36:
        return False
    try:
        uuid.UUID(job_id)
    except ValueError:
        return False
    return True
