"""The client for apps: :class:`Puras` (sync) and :class:`AsyncPuras` (asyncio).

Typed answers (:mod:`puras_client.models`), typed errors per status
(:class:`~puras_client.errors.NotFound`, :class:`~puras_client.errors.Conflict`, ...,
each with the API's ``code`` and ``message``), cursor paging, and event streams that
resume by themselves after a dropped connection::

    with Puras("https://api.example.com", "puras_live_...") as p:
        job = p.submit("echo", {"text": "hi"}, wait=True)
        for ev in p.submit_stream("hello", {"name": "Ada"}):
            print(ev.type, ev.payload)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import httpx

from puras_client import calls
from puras_client.calls import Call
from puras_client.errors import ApiUnreachable, error_from_response, unreachable_reason
from puras_client.follow import JOB_ID_HEADER, FollowState
from puras_client.http import AsyncClient, Client
from puras_client.models import Balance, Deployment, JobEvent, JobOut, JobPage, Skill, Upload
from puras_client.sse import SseParser

__all__ = ["AsyncPuras", "Puras"]

USER_AGENT: Final = "puras-client/0.1"
_READ_S: Final = 60.0
"""Silence allowed on a stream: the gateway pings every 15 s, so longer means dead."""

FileLike = bytes | str | Path | IO[bytes]


def _file(file: FileLike, filename: str | None) -> tuple[bytes, str]:
    if isinstance(file, bytes):
        return file, filename or "upload.bin"
    if isinstance(file, (str, Path)):
        p = Path(file)
        return p.read_bytes(), filename or p.name
    name = filename or Path(str(getattr(file, "name", "upload.bin"))).name
    return file.read(), name


def _stream_call(
    skill: str,
    inputs: Mapping[str, Any] | None,
    idempotency_key: str | None,
    max_cost_micros: int | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    body = calls.submit_body(skill, inputs or {}, max_cost_micros=max_cost_micros)
    headers = {"Accept": "text/event-stream", **(calls.idempotency_headers(idempotency_key) or {})}
    return body, headers


class Puras:
    """Synchronous client of one project (its API key)."""

    def __init__(
        self,
        api_base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._c = Client(
            api_base, api_key, user_agent=USER_AGENT, timeout=timeout, transport=transport
        )
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay

    @classmethod
    def over(
        cls, client: Client, *, max_reconnects: int = 5, reconnect_delay: float = 0.5
    ) -> Puras:
        """The typed calls over a :class:`Client` a front end already built (its hints and
        user agent); closing either closes both."""
        self = cls.__new__(cls)
        self._c = client
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        return self

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> Puras:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, c: Call) -> Any:
        return self._c.call(c)

    # -- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        skill: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout: int | None = None,
        idempotency_key: str | None = None,
        max_cost_micros: int | None = None,
    ) -> JobOut:
        """Queue a job (``queued`` at once) or, with ``wait``, its JobOut once it ends (or
        as it stands after ``timeout`` seconds, 1-60)."""
        c = calls.submit_job(
            skill,
            inputs or {},
            wait=wait,
            timeout=timeout,
            idempotency_key=idempotency_key,
            max_cost_micros=max_cost_micros,
        )
        return JobOut.from_json(self._call(c))

    def submit_stream(
        self,
        skill: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        max_cost_micros: int | None = None,
    ) -> Iterator[JobEvent]:
        """Submit and stream the job's events, ending with the ``end`` event (whose
        ``.job`` is the final JobOut); a dropped connection is resumed, never re-submitted.
        The submit is sent when the iteration starts."""
        body, headers = _stream_call(skill, inputs, idempotency_key, max_cost_micros)
        state = FollowState()
        first = self._c.http.stream(
            "POST", "/v1/jobs", params={"stream": "true"}, json=body, headers=headers,
            timeout=httpx.Timeout(10.0, read=_READ_S),
        )  # fmt: skip
        return self._follow(state, first)

    def attach(self, job_id: str, *, after: int = 0) -> Iterator[JobEvent]:
        """Stream a job's events after event ``after`` (0: all), until its ``end`` event."""
        return self._follow(FollowState(job_id=job_id, last_id=after), None)

    def _follow(self, state: FollowState, first: Any) -> Iterator[JobEvent]:
        while True:
            opener = first or self._c.http.stream(
                "GET",
                calls.job_stream_path(state.job_id or ""),
                headers=state.resume_headers(),
                timeout=httpx.Timeout(10.0, read=_READ_S),
            )
            submitting, first = first is not None, None
            try:
                with opener as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        raise error_from_response(resp, resp.request.method, resp.request.url.path)
                    state.opened(resp.headers.get(JOB_ID_HEADER))
                    parser = SseParser()
                    for line in resp.iter_lines():
                        frame = parser.feed(line)
                        ev = state.accept(frame) if frame is not None else None
                        if ev is not None:
                            yield ev
                        if state.done:
                            return
                reason = "the server closed it before the end frame"
            except httpx.TransportError as exc:
                if submitting and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise ApiUnreachable(self._c.api_base, unreachable_reason(exc)) from exc
                reason = unreachable_reason(exc)
            state.dropped(self.max_reconnects, reason)
            time.sleep(self.reconnect_delay * state.drops)

    def get_job(self, job_id: str) -> JobOut:
        return JobOut.from_json(self._call(calls.get_job(job_id)))

    def list_jobs(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobPage:
        """One page, newest first; pass the page's ``next_cursor`` for the next one."""
        return JobPage.from_json(
            self._call(calls.list_jobs(status=status, limit=limit, cursor=cursor))
        )

    def pages(self, *, status: str | None = None, limit: int | None = None) -> Iterator[JobPage]:
        """Every page, following ``next_cursor`` to the last."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(status=status, limit=limit, cursor=cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def iter_jobs(self, *, status: str | None = None, limit: int | None = None) -> Iterator[JobOut]:
        """Every job, newest first, page after page (``limit`` is the page size)."""
        for page in self.pages(status=status, limit=limit):
            yield from page.jobs

    def cancel_job(self, job_id: str) -> JobOut:
        return JobOut.from_json(self._call(calls.cancel_job(job_id)))

    def events(self, job_id: str) -> list[JobEvent]:
        out = self._call(calls.job_events(job_id))
        return [JobEvent.from_json(e) for e in (out or {}).get("events", [])]

    # -- project -----------------------------------------------------------------------------

    def skills(self) -> list[Skill]:
        out = self._call(calls.list_skills())
        return [Skill.from_json(s) for s in (out or {}).get("skills", [])]

    def deployments(self) -> list[Deployment]:
        out = self._call(calls.list_deployments())
        return [Deployment.from_json(d) for d in (out or {}).get("deployments", [])]

    def balance(self) -> Balance:
        return Balance.from_json(self._call(calls.balance()))

    def upload(
        self,
        file: FileLike,
        *,
        path: str = "",
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Upload:
        """Store a file in the project's drive (bytes, a path, or an open binary file)."""
        content, name = _file(file, filename)
        c = calls.drive_upload(content, name, path=path, content_type=content_type)
        return Upload.from_json(self._call(c))


class AsyncPuras:
    """The same client for asyncio."""

    def __init__(
        self,
        api_base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._c = AsyncClient(
            api_base, api_key, user_agent=USER_AGENT, timeout=timeout, transport=transport
        )
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay

    @classmethod
    def over(
        cls, client: AsyncClient, *, max_reconnects: int = 5, reconnect_delay: float = 0.5
    ) -> AsyncPuras:
        """The typed calls over an :class:`AsyncClient` a front end already built."""
        self = cls.__new__(cls)
        self._c = client
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        return self

    async def aclose(self) -> None:
        await self._c.aclose()

    async def __aenter__(self) -> AsyncPuras:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, c: Call) -> Any:
        return await self._c.call(c)

    async def submit(
        self,
        skill: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout: int | None = None,
        idempotency_key: str | None = None,
        max_cost_micros: int | None = None,
    ) -> JobOut:
        c = calls.submit_job(
            skill,
            inputs or {},
            wait=wait,
            timeout=timeout,
            idempotency_key=idempotency_key,
            max_cost_micros=max_cost_micros,
        )
        return JobOut.from_json(await self._call(c))

    def submit_stream(
        self,
        skill: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        max_cost_micros: int | None = None,
    ) -> AsyncIterator[JobEvent]:
        body, headers = _stream_call(skill, inputs, idempotency_key, max_cost_micros)
        first = self._c.http.stream(
            "POST", "/v1/jobs", params={"stream": "true"}, json=body, headers=headers,
            timeout=httpx.Timeout(10.0, read=_READ_S),
        )  # fmt: skip
        return self._follow(FollowState(), first)

    def attach(self, job_id: str, *, after: int = 0) -> AsyncIterator[JobEvent]:
        return self._follow(FollowState(job_id=job_id, last_id=after), None)

    async def _follow(self, state: FollowState, first: Any) -> AsyncIterator[JobEvent]:
        while True:
            opener = first or self._c.http.stream(
                "GET",
                calls.job_stream_path(state.job_id or ""),
                headers=state.resume_headers(),
                timeout=httpx.Timeout(10.0, read=_READ_S),
            )
            submitting, first = first is not None, None
            try:
                async with opener as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        raise error_from_response(resp, resp.request.method, resp.request.url.path)
                    state.opened(resp.headers.get(JOB_ID_HEADER))
                    parser = SseParser()
                    async for line in resp.aiter_lines():
                        frame = parser.feed(line)
                        ev = state.accept(frame) if frame is not None else None
                        if ev is not None:
                            yield ev
                        if state.done:
                            return
                reason = "the server closed it before the end frame"
            except httpx.TransportError as exc:
                if submitting and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise ApiUnreachable(self._c.api_base, unreachable_reason(exc)) from exc
                reason = unreachable_reason(exc)
            state.dropped(self.max_reconnects, reason)
            await asyncio.sleep(self.reconnect_delay * state.drops)

    async def get_job(self, job_id: str) -> JobOut:
        return JobOut.from_json(await self._call(calls.get_job(job_id)))

    async def list_jobs(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobPage:
        c = calls.list_jobs(status=status, limit=limit, cursor=cursor)
        return JobPage.from_json(await self._call(c))

    async def pages(
        self, *, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[JobPage]:
        cursor: str | None = None
        while True:
            page = await self.list_jobs(status=status, limit=limit, cursor=cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def iter_jobs(
        self, *, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[JobOut]:
        async for page in self.pages(status=status, limit=limit):
            for job in page.jobs:
                yield job

    async def cancel_job(self, job_id: str) -> JobOut:
        return JobOut.from_json(await self._call(calls.cancel_job(job_id)))

    async def events(self, job_id: str) -> list[JobEvent]:
        out = await self._call(calls.job_events(job_id))
        return [JobEvent.from_json(e) for e in (out or {}).get("events", [])]

    async def skills(self) -> list[Skill]:
        out = await self._call(calls.list_skills())
        return [Skill.from_json(s) for s in (out or {}).get("skills", [])]

    async def deployments(self) -> list[Deployment]:
        out = await self._call(calls.list_deployments())
        return [Deployment.from_json(d) for d in (out or {}).get("deployments", [])]

    async def balance(self) -> Balance:
        return Balance.from_json(await self._call(calls.balance()))

    async def upload(
        self,
        file: FileLike,
        *,
        path: str = "",
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Upload:
        content, name = _file(file, filename)
        c = calls.drive_upload(content, name, path=path, content_type=content_type)
        return Upload.from_json(await self._call(c))
