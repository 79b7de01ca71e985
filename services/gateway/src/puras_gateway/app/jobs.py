"""Job use cases: submit (async, wait, stream), read, list, events, SSE attach."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from puras_common.clock import Clock, SystemClock
from puras_common.events.commands import CancelJob, SubmitJob
from puras_common.events.types import TERMINAL_EVENTS, JobRecord, ModelResponded
from puras_common.ids import new_id
from puras_common.skills import InvalidInputs, NoDeployment, UnknownSkill, resolve
from puras_common.views.jobs import apply_job_event, job_out
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import (
    Commands,
    IdempotencyStore,
    JobEvents,
    JobTail,
    LiveFrames,
    LiveTail,
    LiveViews,
    ReadViews,
)
from puras_gateway.domain.accepted import accepted_job
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.idempotency import body_hash
from puras_gateway.domain.job_events import JobEvent, api_events, fold
from puras_gateway.domain.job_usage import usage_rows
from puras_gateway.domain.live import DeltaGate
from puras_gateway.domain.requests import ListParams, SubmitBody, SubmitMode, is_terminal

__all__ = ["JobStream", "JobsService"]

_json = msgspec.json.Encoder()


def _frame(ev: JobEvent, job: JobRecord | None) -> bytes:
    # `event:` names the type so EventSource listeners can subscribe per type, `id:` is
    # what a reconnect sends back as Last-Event-ID, and `job_id` in every frame lets a
    # client that only kept the stream re-attach after a drop (Z6).
    data = _json.encode(
        {
            "id": ev.idx,
            "type": ev.type,
            "payload": ev.payload(job),
            "at": ev.envelope.at,
            "job_id": ev.envelope.aggregate_id,
        }
    )
    return b"event: %s\nid: %d\ndata: %s\n\n" % (ev.type.encode(), ev.idx, data)


def _end_frame(job: JobRecord) -> bytes:
    return b"event: end\ndata: %s\n\n" % _json.encode(job_out(job))


PING = b": ping\n\n"


@dataclass(frozen=True, slots=True)
class JobStream:
    """A submit's SSE answer: the frames, and the job's id for the ``Puras-Job-Id`` header."""

    job_id: str
    frames: AsyncIterator[bytes]


class JobsService:
    def __init__(
        self,
        *,
        commands: Commands,
        views: LiveViews,
        reads: ReadViews,
        job_log: JobEvents,
        idempotency: IdempotencyStore | None = None,
        clock: Clock | None = None,
        ping_s: float = 15.0,
        read_wait_s: float = 5.0,
        sync_view: Callable[[], Awaitable[bool]] | None = None,
        live: LiveFrames | None = None,
    ) -> None:
        self._commands = commands
        self._clock = clock or SystemClock()
        self._views = views
        self._reads = reads
        self._log = job_log
        self._ping = ping_s
        self._idem = idempotency
        self._read_wait = read_wait_s
        self._sync_view = sync_view
        self._live = live

    # -- submit ------------------------------------------------------------------------

    def _admit(self, p: Principal, body: SubmitBody) -> tuple[str, int]:
        pd = self._views.deployments.project(p.project_id)
        dep = pd.active
        skill = resolve(dep, body.skill, body.inputs, at="submit")
        if isinstance(skill, InvalidInputs):
            raise ApiError.unprocessable(
                skill.message,
                code="invalid_inputs",
                problems=[{"path": i.path, "message": i.message} for i in skill.problems],
            )
        if isinstance(skill, NoDeployment | UnknownSkill):
            raise ApiError.not_found(
                skill.message, code="skill_not_found", available_skills=skill.available_skills
            )
        assert dep is not None  # the skill was found in it
        return dep.id, pd.subject_seq

    async def submit(
        self,
        p: Principal,
        body: SubmitBody,
        mode: SubmitMode,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | JobStream:
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
    ) -> dict[str, Any] | JobStream:
        now = self._clock.now()
        cmd = SubmitJob(
            job_id=job_id,
            project_id=p.project_id,
            skill=body.skill,
            inputs=body.inputs,
            submitted_at=now,
            max_cost_micros=body.max_cost_micros,
            key_prefix=p.key_prefix,
            spend_limit=p.spend_limit,
            stop_agents_at_zero=self._views.keys.policy(p.project_id).stop_agents_at_zero,
            deployment_id=deployment_id,
            after_seq=after_seq,
            idempotency_key=idempotency_key,
        )
        # For wait and stream, listen before publishing: no event can slip past us.
        tail = await self._log.tail(p.project_id, job_id) if mode.kind != "async" else None
        live: LiveTail | None = None
        try:
            if mode.kind == "stream":
                live = await self._follow_live(p.project_id, job_id)
            await self._commands.submit(cmd)
        except BaseException:
            await _close(tail, live)
            raise
        queued = accepted_job(cmd)
        if tail is None:
            return job_out(queued)
        if mode.kind == "wait":
            try:
                return job_out(await self._wait(p, queued, tail, mode.timeout_s))
            finally:
                await tail.close()
        return JobStream(job_id, self._stream(tail, live, past=[], after=0))

    async def _repeat(
        self, p: Principal, body: SubmitBody, mode: SubmitMode, job_id: str, key: str
    ) -> dict[str, Any] | JobStream:
        """A repeat of an idempotent submit: answer with the original job, in the mode asked.

        The first request may still be between claiming the key and publishing (or may
        have died there): wait a moment for the job to show, then submit it ourselves
        under the same job id (the scheduler admits a job id once).
        """
        tail = await self._log.tail(p.project_id, job_id)
        live: LiveTail | None = None
        try:
            if mode.kind == "stream":
                live = await self._follow_live(p.project_id, job_id)
            past, pending = await self._accepted(p, job_id)
            if not past and pending is None:
                # Published meanwhile, the job shows on the tail once admitted, or in the
                # queue if no scheduler has taken it.
                await tail.next(self._read_wait)
                past, pending = await self._accepted(p, job_id)
                if not past and pending is None:
                    await _close(tail, live)
                    deployment_id, after_seq = self._admit(p, body)
                    return await self._submit(p, body, mode, job_id, deployment_id, after_seq, key)
            tail.mark_seen(past)
        except BaseException:
            await _close(tail, live)
            raise
        if mode.kind == "stream":
            return JobStream(job_id, self._stream(tail, live, past=past, after=0))
        try:
            current = fold(past) or (accepted_job(pending) if pending else None)
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
            seen.append(ev)
            if isinstance(ev.event, TERMINAL_EVENTS):
                # From its job.queued when the tail saw it (the scheduler pinned the
                # deployment), else on top of the job as the caller last saw it.
                return fold(seen) or fold(seen, queued) or queued
        # Timed out: answer with the job as the log has it now (J1: the current row).
        current = fold(await self._log.replay(p.project_id, queued.id))
        return current or fold(seen) or queued

    # -- reads -------------------------------------------------------------------------

    async def _accepted(self, p: Principal, job_id: str) -> tuple[list[JobEvent], SubmitJob | None]:
        """The job's events, or else its submit still waiting for the scheduler.

        This holds no memory of its own, so it answers the same on every replica and
        after a restart (J4): a job this API accepted is either in the log or its submit
        is in the command queue. The queue is asked first: the scheduler appends
        ``job.queued`` before it acks (and so deletes) the submit, so a submit missing
        there is admitted and the log, asked next, has it. (With the submit still there,
        the log may already hold ``job.queued``: the events win over the command.)
        """
        pending = await self._commands.pending_submit(p.project_id, job_id)
        return await self._log.replay(p.project_id, job_id), pending

    async def get(self, p: Principal, job_id: str) -> dict[str, Any]:
        return job_out(await self._find(p, job_id))

    async def _find(self, p: Principal, job_id: str) -> JobRecord:
        """The job as the log has it now, read through the projection where it is current.

        The log may be ahead of the projection by a moment; one look at the subject's
        last event settles it, so a client that has just seen a job end (on a stream or a
        wait) never reads it back as queued. An ended job's row is not final either: its
        cost still grows by charges billed after the end (J8).
        """
        if not _plausible_id(job_id):
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        found = await self._reads.get_job_at(p.project_id, job_id)
        last = await self._log.last(p.project_id, job_id)
        if last is None:
            if found is not None:
                return found[0]
            past, pending = await self._accepted(p, job_id)
            job = fold(past) or (accepted_job(pending) if pending is not None else None)
            if job is None:
                raise ApiError.not_found(
                    f"job {job_id!r} not found in this project", code="job_not_found"
                )
            return job
        if found is not None and last.seq == found[1]:
            return found[0]
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
            deadline = asyncio.get_running_loop().time() + wait_s
            # A job accepted but not admitted yet needs nothing special: the scheduler that
            # takes this cancel first admits the job from its queued submit, undispatched,
            # and cancels it.
            cmd = CancelJob(job_id=job_id, project_id=p.project_id, requested_at=self._clock.now())
            await self._commands.cancel(cmd)
            # Answer with the outcome when it comes soon (it normally does in ms); a job
            # whose runner is slow to stop is answered as it stands.
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                ev = await tail.next(left)
                if ev is None:
                    break
                job = fold([ev], job) or job
                if isinstance(ev.event, TERMINAL_EVENTS):
                    return job_out(job)
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
        found = await self._reads.get_job_at(p.project_id, job_id)
        if found is not None:
            job, row_seq, _count = found
            rows = await self._reads.job_events(p.project_id, job_id)
            # The projection may trail the log by a moment; the log has the newest events
            # (of an ended job too: a charge billed after the end is one of its events).
            if (
                job.status in ("queued", "running")
                or not rows
                or await self._ahead(p, job_id, row_seq)
            ):
                past = await self._log.replay(p.project_id, job_id)
                if len(past) > len(rows):
                    return {"events": api_events(past)}
            return {"events": rows}
        await self._find(p, job_id)  # 404 unless the job exists
        past = await self._log.replay(p.project_id, job_id)
        return {"events": api_events(past)}

    async def _ahead(self, p: Principal, job_id: str, row_seq: int) -> bool:
        """Whether the job's subject holds an event newer than the projected row."""
        last = await self._log.last(p.project_id, job_id)
        return last is not None and last.seq != row_seq

    async def usage(self, p: Principal, job_id: str) -> dict[str, Any]:
        """J8: the job's billed calls, from its own ``job.cost`` events (always current:
        they are read from the log, as the job's ``cost_micros`` is folded from them)."""
        if not _plausible_id(job_id):
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        past = await self._log.replay(p.project_id, job_id)
        if not past:
            await self._find(p, job_id)  # 404 unless accepted (and not admitted yet: no usage)
        return {"usage": usage_rows(past)}

    async def attach(self, p: Principal, job_id: str, after: int) -> AsyncIterator[bytes]:
        """SSE attach or re-attach (J5); ``after`` is the Last-Event-ID (0: from the start)."""
        if not _plausible_id(job_id):
            raise ApiError.not_found(
                f"job {job_id!r} not found in this project", code="job_not_found"
            )
        tail = await self._log.tail(p.project_id, job_id)
        live: LiveTail | None = None
        try:
            # Before the replay, like the tail: no delta published meanwhile is missed.
            live = await self._follow_live(p.project_id, job_id)
            past = await self._log.replay(p.project_id, job_id)
            if not past:
                await self._find(p, job_id)  # 404 for a job that is not ours / does not exist
            tail.mark_seen(past)
        except BaseException:
            await _close(tail, live)
            raise
        if any(isinstance(e.event, TERMINAL_EVENTS) for e in past):
            await _close(None, live)  # an ended job has no live text
            live = None
        return self._stream(tail, live, past=past, after=after)

    async def _follow_live(self, project_id: str, job_id: str) -> LiveTail | None:
        return await self._live.follow(project_id, job_id) if self._live is not None else None

    async def _stream(
        self, tail: JobTail, live: LiveTail | None, *, past: list[JobEvent], after: int
    ) -> AsyncIterator[bytes]:
        """The job's frames after ``after``: the replayed ``past``, then the tail, with the
        model's live text (Z5) interleaved until the job ends."""
        gate = DeltaGate(after)
        job: JobRecord | None = None
        try:
            pending = iter(past)
            while True:
                # Live text first: a runner publishes a step's deltas before it appends
                # the step's response, and the response comes the longer way (through
                # the stream), so deltas waiting now came before any response waiting
                # now. A delta of a step whose response was already sent is late, and
                # dropped (the response has its text).
                if live is not None and job is not None:
                    for f in gate.frames(live.drain()):
                        yield f
                ev = next(pending, None) or tail.poll()
                while ev is not None:
                    job = fold([ev], job)
                    responded = _responded_step(ev)
                    if live is not None and responded is not None and ev.idx > after:
                        # The step's deltas reached us before its response did, even
                        # when both wait here now: they go first.
                        for f in gate.frames(live.drain()):
                            yield f
                    if ev.idx > after:
                        yield _frame(ev, job)
                    gate.passed(ev.idx, responded)
                    if isinstance(ev.event, TERMINAL_EVENTS) and job is not None:
                        # A replayed ended job: charges billed after its end are its
                        # events too (J8), and the final JobOut counts them.
                        for rest in pending:
                            job = fold([rest], job) or job
                            if rest.idx > after:
                                yield _frame(rest, job)
                        yield _end_frame(job)
                        return
                    ev = next(pending, None) or tail.poll()
                if not await _either(tail, live, self._ping):
                    yield PING
        finally:
            await _close(tail, live)


async def _either(tail: JobTail, live: LiveTail | None, timeout: float) -> bool:
    """Wait until an event or a live frame arrives; ``False`` if ``timeout`` passed first."""
    if live is None:
        return await tail.wait(timeout)
    event = asyncio.ensure_future(tail.wait(timeout))
    frame = asyncio.ensure_future(live.wait())
    try:
        await asyncio.wait((event, frame), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in (event, frame):
            w.cancel()  # waiting has no side effect: nothing is lost by cancelling
    return (frame.done() and not frame.cancelled()) or (event.done() and event.result())


async def _close(tail: JobTail | None, live: LiveTail | None) -> None:
    if tail is not None:
        await tail.close()
    if live is not None:
        await live.close()


def _responded_step(ev: JobEvent) -> int | None:
    return ev.event.step if isinstance(ev.event, ModelResponded) else None


def _plausible_id(job_id: str) -> bool:
    # Job ids are UUIDs; anything else cannot be a job and must not reach a subject name.
    if len(job_id) != 36:
        return False
    try:
        uuid.UUID(job_id)
    except ValueError:
        return False
    return True
