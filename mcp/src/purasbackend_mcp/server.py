"""The ``purasbackend-mcp`` stdio server: the Puras HTTP API as MCP tools.

Every tool reads the config file again (``configure`` elsewhere takes effect at once),
opens one HTTP client for the call (the one the CLI shares, running the same
:mod:`puras_client.calls`), and turns every failure into a tool error whose message
says what to fix.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, NotRequired

import anyio
import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import TextResource
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError
from typing_extensions import TypedDict

from puras_bundle import PackedBundle, PackError, pack_project
from puras_client import calls
from purasbackend_mcp import __version__
from purasbackend_mcp.api import Api, ApiError, ApiFailure, tool_message
from purasbackend_mcp.config import (
    Config,
    ConfigError,
    config_path,
    key_prefix,
    load_config,
    normalise_api_base,
    save_config,
    validate_api_key,
)
from purasbackend_mcp.docs import UnknownDoc, find_page, index, pages, tokenize

__all__ = [
    "DOCS_URI",
    "JOB_STATUSES",
    "SIGN_TTL_S",
    "TAIL_MAX_S",
    "WAIT_MAX_S",
    "argument_message",
    "create_server",
    "main",
]

WAIT_MAX_S: Final = calls.WAIT_MAX_S
"""The gateway's ceiling for ``POST /v1/jobs?wait=true&timeout=N`` (J1)."""
TAIL_MAX_S: Final = 600
"""The longest ``tail_job`` follows one job in one call."""
LIST_MAX: Final = 200
JOB_STATUSES: Final = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled"})
FEEDBACK_COMMENT_MAX: Final = 4000
"""The gateway's cap on a feedback comment (J9)."""
SIGN_TTL_S: Final = 3600
"""``drive_sign``'s default lifetime of a signed URL, the drive's own default (D4)."""
DOCS_URI: Final = "purasbackend://docs/{slug}"
"""Where each shipped documentation page is an MCP resource (the ``read_doc`` text)."""

INSTRUCTIONS: Final = """\
Puras is a self-hostable agentic Backend-as-a-Service: a project is a folder with
skills/<name>/skill.yaml; push it as a deployment, then run skills as jobs.
Start with configure(api_base, api_key) once (the key is puras_live_<prefix>.<secret>,
dot included), then push(project_dir), submit_job(skill, inputs), tail_job(job_id).
The docs ship with this server: list_docs(), search_docs(query), read_doc(slug), and
as resources purasbackend://docs/<slug>.
"""


class SkillInfo(TypedDict):
    """A skill of the active deployment, as ``GET /v1/skills`` gives it."""

    name: str
    kind: str
    description: str
    entrypoint: NotRequired[str]
    model: NotRequired[str | None]
    disable_bash: NotRequired[bool]
    input_schema: NotRequired[dict[str, Any] | None]
    output_schema: NotRequired[dict[str, Any] | None]
    tools: NotRequired[list[str]]
    timeout_seconds: NotRequired[float | None]
    max_steps: NotRequired[int | None]
    max_cost_micros: NotRequired[int | None]


class SkillList(TypedDict):
    deployment_id: str | None
    skills: list[SkillInfo]


class DeploymentList(TypedDict):
    deployments: list[dict[str, Any]]


class JobList(TypedDict):
    jobs: list[dict[str, Any]]
    next_cursor: str | None
    """Pass it as `cursor` for the next page; null on the last page."""


class FeedbackList(TypedDict):
    feedback: list[dict[str, Any]]


class SecretList(TypedDict):
    secrets: list[dict[str, Any]]


class DocInfo(TypedDict):
    slug: str
    title: str
    summary: str
    uri: str


class DocList(TypedDict):
    docs: list[DocInfo]


def _got(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def argument_message(tool: str, exc: ValidationError) -> str:
    """What a tool error says for arguments that break the input schema: each argument,
    what it must be and what came, in the API errors' ``what to fix`` terms (not
    pydantic's report, whose links and class names mean nothing to the caller)."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "missing":
            problems.append(f"`{loc}` is required")
            continue
        msg = str(err.get("msg", "is invalid")).removeprefix("Input should be ")
        problems.append(f"`{loc}` should be {msg} (got {_got(err.get('input'))})")
    return (
        f"{tool}: invalid arguments: {'; '.join(problems)}; fix them as the tool's input "
        "schema says and call again"
    )


class PurasServer(MCPServer):
    """The MCP server, with argument errors in the same terms as the API's."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_message(name, exc.__cause__)) from None
            raise


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Anticipated failures become tool errors carrying their message."""
    try:
        yield
    except ApiFailure as exc:
        raise ToolError(tool_message(exc)) from exc
    except (ConfigError, PackError, UnknownDoc) as exc:
        raise ToolError(str(exc)) from exc


def _require_config() -> Config:
    cfg = load_config()
    if cfg is None:
        raise ConfigError(
            f"not configured: no {config_path()}; call configure(api_base, api_key) first "
            "(api_base is the gateway, e.g. http://127.0.0.1:8080; the key is "
            "puras_live_<prefix>.<secret>)"
        )
    return cfg


def _pack(project_dir: str) -> tuple[Path, PackedBundle]:
    """The folder (relative to the server's working directory) and its bundle."""
    root = Path(project_dir).expanduser()
    if not root.is_absolute():
        root = Path.cwd() / root
    return root, pack_project(root)


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


class PurasTools:
    """The tools, as methods; ``transport`` replaces the network in tests."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    def _api(self, cfg: Config) -> Api:
        return Api(cfg.api_base, cfg.api_key, transport=self._transport)

    async def _call(self, c: calls.Call) -> Any:
        cfg = _require_config()
        async with self._api(cfg) as api:
            return await api.call(c)

    # -- config ---------------------------------------------------------------------

    async def configure(
        self,
        api_base: Annotated[
            str, Field(description="The gateway's base URL, e.g. http://127.0.0.1:8080")
        ],
        api_key: Annotated[
            str, Field(description="The project key, puras_live_<prefix>.<secret> (dot kept)")
        ],
        project_id: Annotated[str, Field(description="Optional, for your reference")] = "",
    ) -> str:
        """Save the API base and project key to ~/.purasbackend/config.json (mode 600).

        Call once per machine; every other tool reads the file on each call. The saved
        key is then checked against the API, and the answer says whether it works.
        """
        with _tool_errors():
            cfg = Config(
                api_base=normalise_api_base(api_base),
                api_key=validate_api_key(api_key),
                project_id=project_id.strip(),
            )
            path = save_config(cfg)
        saved = (
            f"Saved to {path} (mode 600): api_base={cfg.api_base}, "
            f"key {cfg.key_prefix}.… (the secret is never shown)"
        )
        try:
            async with self._api(cfg) as api:
                out = await api.request("GET", calls.list_deployments().path, timeout=10.0)
        except ApiFailure as exc:
            return f"{saved}. Checking it failed: {tool_message(exc)}"
        deployments = out.get("deployments", []) if isinstance(out, dict) else []
        active = next((d.get("id") for d in deployments if d.get("active")), None)
        state = f"active deployment {active}" if active else "no active deployment yet"
        return f"{saved}. The API accepted the key: {len(deployments)} deployment(s), {state}."

    def show_config(self) -> dict[str, Any]:
        """The saved config: API base, project id and the key's prefix (never the secret)."""
        path = config_path()
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            return {"configured": False, "config_path": str(path), "problem": str(exc)}
        if cfg is None:
            return {
                "configured": False,
                "config_path": str(path),
                "problem": "no config file yet: call configure(api_base, api_key)",
            }
        prefix = key_prefix(cfg.api_key)
        out: dict[str, Any] = {
            "configured": True,
            "config_path": str(path),
            "api_base": cfg.api_base,
            "api_key_prefix": prefix,
            "project_id": cfg.project_id,
        }
        if prefix is None:
            out["problem"] = (
                "the saved key is not shaped like puras_live_<prefix>.<secret>: "
                "call configure(api_base, api_key) again"
            )
        return out

    # -- deployments ----------------------------------------------------------------

    async def push(
        self,
        project_dir: Annotated[
            str, Field(description="The project folder (holding skills/<name>/skill.yaml)")
        ],
        notes: Annotated[str, Field(description="Free text kept with the deployment")] = "",
        activate: Annotated[bool, Field(description="Make it the active deployment")] = True,
    ) -> dict[str, Any]:
        """Zip a project folder and upload it as a new deployment (activated by default).

        Leaves out .git, .venv, venv, node_modules, __pycache__, caches, .puras, .env and
        *.pyc. Refuses a folder without skills/<name>/skill.yaml. Jobs already submitted
        keep the deployment they were pinned to. The server validates every skill.yaml
        and answers with the deployment and its skills, or lists every problem by file
        and field.
        """
        with _tool_errors():
            cfg = _require_config()
            root, bundle = await anyio.to_thread.run_sync(_pack, project_dir)
            async with self._api(cfg) as api:
                out = await api.call(calls.push_bundle(bundle.data, notes=notes, activate=activate))
        result = dict(out) if isinstance(out, dict) else {"deployment": out}
        result["bundle"] = {
            "path": str(root),
            "files": len(bundle.files),
            "bytes": len(bundle.data),
        }
        return result

    async def list_deployments(self) -> DeploymentList:
        """This project's deployments, newest first: {deployments: [...]}, each with
        `active`, its skills and, where the gateway builds at push time, `status`
        (building, ready, failed) and the build's `error`."""
        with _tool_errors():
            out = await self._call(calls.list_deployments())
        return {"deployments": list(out.get("deployments", [])) if isinstance(out, dict) else []}

    async def list_skills(self) -> SkillList:
        """The active deployment's skills with their input and output schemas (JSON
        Schema, null when the skill declares none): what submit_job's `inputs` must match
        and what a job's `result` looks like. {deployment_id: null, skills: []} before
        the first push."""
        with _tool_errors():
            out = await self._call(calls.list_skills())
        if not isinstance(out, dict):
            return {"deployment_id": None, "skills": []}
        return {"deployment_id": out.get("deployment_id"), "skills": list(out.get("skills", []))}

    async def activate_deployment(
        self, deployment_id: Annotated[str, Field(description="A deployment id")]
    ) -> dict[str, Any]:
        """Make a deployment the active one (a rollback is activating an older one).

        New jobs use it; jobs already submitted keep their deployment.
        """
        with _tool_errors():
            out = await self._call(calls.activate_deployment(deployment_id))
        return dict(out) if isinstance(out, dict) else {"result": out}

    async def delete_deployment(
        self, deployment_id: Annotated[str, Field(description="A deployment id")]
    ) -> str:
        """Delete a deployment; the active one is refused (activate another first)."""
        with _tool_errors():
            await self._call(calls.delete_deployment(deployment_id))
        return f"deleted deployment {deployment_id}"

    # -- jobs -----------------------------------------------------------------------

    async def submit_job(
        self,
        skill: Annotated[str, Field(description="A skill of the active deployment")],
        inputs: Annotated[
            dict[str, Any], Field(description="The skill's inputs, per its input_schema")
        ] = {},  # noqa: B006 - shown as the schema's default; never mutated
        wait: Annotated[
            bool, Field(description="Block until the job ends (or `timeout` passes)")
        ] = False,
        timeout: Annotated[
            int, Field(description=f"Seconds to wait with wait=true, 1-{WAIT_MAX_S}")
        ] = 30,
    ) -> dict[str, Any]:
        """Submit a job to a skill of the active deployment; returns the job.

        The same call for agentic (.md entrypoint) and deterministic (.py:func) skills.
        Without `wait` the job comes back queued at once. With `wait=true` it comes back
        when it ends or after `timeout` seconds (ceiling 60; a larger value is clamped
        and the answer's `note` says so); it may still be queued or running then:
        follow it with tail_job.
        """
        notes: list[str] = []
        if not skill.strip():
            raise ToolError("skill is empty: name a skill of the active deployment")
        waited = min(max(timeout, 1), WAIT_MAX_S)
        if wait and waited != timeout:
            notes.append(
                f"timeout={timeout} is outside 1-{WAIT_MAX_S} s; waited at most {waited} s"
            )
        with _tool_errors():
            job = await self._call(
                calls.submit_job(skill.strip(), inputs, wait=wait, timeout=waited if wait else None)
            )
        out = dict(job) if isinstance(job, dict) else {"job": job}
        status = out.get("status")
        if wait and status not in TERMINAL:
            notes.append(
                f"the job is still {status} after the wait; follow it with "
                f"tail_job(job_id={out.get('id')!r}) or get_job"
            )
        if notes:
            out["note"] = "; ".join(notes)
        return out

    async def get_job(
        self, job_id: Annotated[str, Field(description="A job id")]
    ) -> dict[str, Any]:
        """One job: status, inputs, result or error, cost, timestamps."""
        with _tool_errors():
            out = await self._call(calls.get_job(job_id))
        return dict(out) if isinstance(out, dict) else {"job": out}

    async def list_jobs(
        self,
        status: Annotated[
            str,
            Field(description="queued, running, succeeded, failed, cancelled, or empty for all"),
        ] = "",
        limit: Annotated[int, Field(description=f"How many, 1-{LIST_MAX}")] = 25,
        cursor: Annotated[
            str, Field(description="The next_cursor of the previous page; empty for the first")
        ] = "",
    ) -> JobList:
        """This project's jobs, newest first, a page at a time: {jobs, next_cursor}; pass
        next_cursor back as `cursor` for the next page (null on the last)."""
        st = status.strip().lower()
        if st and st not in JOB_STATUSES:
            raise ToolError(
                f"status must be one of {', '.join(JOB_STATUSES)} or empty for all; got {status!r}"
            )
        if not 1 <= limit <= LIST_MAX:
            raise ToolError(f"limit must be between 1 and {LIST_MAX}; got {limit}")
        with _tool_errors():
            out = await self._call(
                calls.list_jobs(status=st, limit=limit, cursor=cursor.strip() or None)
            )
        if not isinstance(out, dict):
            return {"jobs": [], "next_cursor": None}
        return {"jobs": list(out.get("jobs", [])), "next_cursor": out.get("next_cursor")}

    async def tail_job(
        self,
        job_id: Annotated[str, Field(description="A job id")],
        max_seconds: Annotated[
            float, Field(description=f"How long to follow the job, at most {TAIL_MAX_S} s")
        ] = 60,
    ) -> dict[str, Any]:
        """Follow a job's events until it ends or `max_seconds` pass.

        Returns {job, events} with the job as it ended; at the deadline {job, events,
        timed_out: true} with the job as it stands (call tail_job again to go on).
        Events are {id, type, payload, at}: queued, started, log, the agent's
        agent_start, model_response, usage, tool_call and tool_result, and the terminal
        succeeded | failed | cancelled.
        """
        if max_seconds <= 0:
            raise ToolError(f"max_seconds must be positive; got {max_seconds}")
        note = None
        limit = min(float(max_seconds), float(TAIL_MAX_S))
        if limit < max_seconds:
            note = (
                f"max_seconds={max_seconds:g} is above the {TAIL_MAX_S} s ceiling; "
                f"followed {TAIL_MAX_S} s"
            )
        events: list[Any] = []
        final: Any = None
        with _tool_errors():
            cfg = _require_config()
            async with self._api(cfg) as api:
                with anyio.move_on_after(limit) as scope:
                    async with aclosing(api.stream(calls.job_stream_path(job_id))) as frames:
                        async for frame in frames:
                            if frame.event == "end":
                                final = _decode(frame.data)
                                break
                            if frame.event == "model_delta":
                                # Live text only: the model_response event that
                                # follows holds it whole.
                                continue
                            events.append(_decode(frame.data))
                if final is None:
                    final = await api.call(calls.get_job(job_id))
        out: dict[str, Any] = {"job": final, "events": events}
        if scope.cancelled_caught:
            out["timed_out"] = True
            status = final.get("status") if isinstance(final, dict) else None
            note = (note + "; " if note else "") + (
                f"still {status} after {limit:g} s: call tail_job again to keep following"
            )
        elif not (isinstance(final, dict) and final.get("status") in TERMINAL):
            note = (note + "; " if note else "") + (
                "the event stream closed before the job ended; call tail_job again"
            )
        if note:
            out["note"] = note
        return out

    async def cancel_job(
        self, job_id: Annotated[str, Field(description="A job id")]
    ) -> dict[str, Any]:
        """Cancel a queued or running job; returns the job.

        A queued job never runs; a running deterministic job's process is stopped.
        Cancelling a cancelled job is a no-op; a succeeded or failed one is an error
        naming its status.
        """
        with _tool_errors():
            out = await self._call(calls.cancel_job(job_id))
        return dict(out) if isinstance(out, dict) else {"job": out}

    # -- feedback -------------------------------------------------------------------

    async def submit_job_feedback(
        self,
        job_id: Annotated[str, Field(description="A job id")],
        rating: Annotated[
            int, Field(description="-1 (thumbs down), 0 (no thumb) or 1 (thumbs up)")
        ] = 0,
        comment: Annotated[
            str, Field(description=f"Free text, at most {FEEDBACK_COMMENT_MAX} characters")
        ] = "",
        end_user_id: Annotated[
            str, Field(description="Your own id of the user giving it; empty for anonymous")
        ] = "",
    ) -> dict[str, Any]:
        """Give feedback on a job's result: a thumb, a comment, or both.

        One row per (job, end_user_id): calling again with the same end_user_id replaces
        that user's feedback in place. A non-zero rating or a non-empty comment is
        required. Returns the row: {job_id, end_user_id, rating, comment, created_at,
        updated_at}.
        """
        if rating not in (-1, 0, 1):
            raise ToolError(f"rating must be -1 (down), 0 (no thumb) or 1 (up); got {rating}")
        if rating == 0 and not comment.strip():
            raise ToolError(
                "give a rating of -1 or 1, or a non-empty comment (or both); got neither"
            )
        with _tool_errors():
            out = await self._call(
                calls.submit_feedback(
                    job_id, rating=rating, comment=comment, end_user_id=end_user_id
                )
            )
        return dict(out) if isinstance(out, dict) else {"feedback": out}

    async def list_job_feedback(
        self, job_id: Annotated[str, Field(description="A job id")]
    ) -> FeedbackList:
        """A job's feedback rows, newest first (one per end user): {feedback: [...]}."""
        with _tool_errors():
            out = await self._call(calls.list_feedback(job_id))
        return {"feedback": list(out.get("feedback", [])) if isinstance(out, dict) else []}

    async def job_feedback_stats(
        self, job_id: Annotated[str, Field(description="A job id")]
    ) -> dict[str, Any]:
        """A job's feedback summed up: {up, down, count, score} with score = up - down
        (count includes comments given without a thumb)."""
        with _tool_errors():
            out = await self._call(calls.feedback_stats(job_id))
        return dict(out) if isinstance(out, dict) else {"result": out}

    # -- secrets --------------------------------------------------------------------

    async def list_secrets(self) -> SecretList:
        """This project's secrets: {secrets: [{name, created_at, updated_at}]}, never a
        value (the API does not return values)."""
        with _tool_errors():
            out = await self._call(calls.list_secrets())
        return {"secrets": list(out.get("secrets", [])) if isinstance(out, dict) else []}

    async def set_secret(
        self,
        name: Annotated[
            str, Field(description="^[A-Z_][A-Z0-9_]*$, e.g. OPENAI_API_KEY (an env var name)")
        ],
        value: Annotated[str, Field(description="The secret's value (stored encrypted)")],
    ) -> dict[str, Any]:
        """Create or overwrite a project secret; returns its name and times, not the value.

        Jobs see it as the environment variable `name` (deterministic code, user tools
        and bash), and its value is masked as *** in their logs and tool results.
        """
        with _tool_errors():
            out = await self._call(calls.set_secret(name, value))
        return dict(out) if isinstance(out, dict) else {"name": name}

    async def delete_secret(
        self, name: Annotated[str, Field(description="A secret's name, from list_secrets()")]
    ) -> str:
        """Delete a project secret; jobs started afterwards no longer see it."""
        with _tool_errors():
            await self._call(calls.delete_secret(name))
        return f"deleted secret {name}"

    # -- drive ----------------------------------------------------------------------

    async def drive_sign(
        self,
        path: Annotated[
            str, Field(description="A file of the project's drive, e.g. uploads/photo.png")
        ],
        ttl: Annotated[
            int,
            Field(description="Seconds the URL works, 1-604800 (a week; the server's ceiling)"),
        ] = SIGN_TTL_S,
    ) -> dict[str, Any]:
        """A signed URL for one file of the project's drive: {url, expires_at}.

        Anyone holding the URL can read the file, with no API key, until expires_at.
        The path is the file's place in the drive (what an upload answers as drive_path,
        what a job wrote under ./drive/), without a leading drive/. Uploading and
        listing are HTTP calls with the same key: POST /v1/drive/upload (multipart
        `file`, optional `path`) and GET /v1/drive/list?prefix=<folder>.
        """
        if not path.strip():
            raise ToolError(
                "path is empty: name a file of the project's drive, e.g. uploads/photo.png "
                "(GET /v1/drive/list?prefix= lists them)"
            )
        with _tool_errors():
            try:
                out = await self._call(calls.drive_sign(path, ttl))
            except ApiError as exc:
                if exc.status == 404 and path.startswith("drive/"):
                    # The job's ./drive/ folder is the drive's root, not a folder in it.
                    raise ApiFailure(
                        f"{tool_message(exc)}; drive paths start below ./drive/: try "
                        f"{path.removeprefix('drive/')!r}"
                    ) from exc
                raise
        return dict(out) if isinstance(out, dict) else {"result": out}

    # -- docs -----------------------------------------------------------------------

    def list_docs(self) -> DocList:
        """Every documentation page shipped with this server: {docs: [{slug, title,
        summary, uri}]}; `uri` is the page as an MCP resource."""
        return {
            "docs": [
                {
                    "slug": p.slug,
                    "title": p.title,
                    "summary": p.summary,
                    "uri": DOCS_URI.format(slug=p.slug),
                }
                for p in pages()
            ]
        }

    def read_doc(
        self, slug: Annotated[str, Field(description="A page slug from list_docs()")]
    ) -> str:
        """The full markdown of one documentation page."""
        with _tool_errors():
            return find_page(slug).body

    def search_docs(
        self,
        query: Annotated[str, Field(description="Words to look for")],
        limit: Annotated[int, Field(description="Most hits to return, 1-20")] = 5,
    ) -> list[dict[str, Any]]:
        """Search the documentation pages (BM25); best first, with a snippet each."""
        if not 1 <= limit <= 20:
            raise ToolError(f"limit must be between 1 and 20; got {limit}")
        idx = index()
        if not tokenize(query):
            raise ToolError(f"the query {query!r} has no searchable words; try e.g. 'cancel a job'")
        return [
            {
                "slug": h.slug,
                "title": h.title,
                "score": h.score,
                "section": h.section,
                "snippet": h.snippet,
            }
            for h in idx.search(query, limit)
        ]


_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_READ_API = ToolAnnotations(read_only_hint=True)
_DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True)
_ALIAS_NOTE = (
    "Alias of submit_job, kept for older agents: the skill's entrypoint decides how it "
    "runs, so there is no type to pass. Prefer submit_job.\n\n"
)


def create_server(*, transport: httpx.AsyncBaseTransport | None = None) -> MCPServer:
    """The MCP server with every tool registered; ``transport`` stands in for the network."""
    server: MCPServer = PurasServer(
        name="purasbackend", version=__version__, instructions=INSTRUCTIONS
    )
    t = PurasTools(transport)

    def add(fn: Any, name: str, annotations: ToolAnnotations | None = None, doc: str = "") -> None:
        description = doc + inspect.cleandoc(fn.__doc__ or "")
        server.add_tool(fn, name=name, description=description, annotations=annotations)

    add(t.configure, "configure")
    add(t.show_config, "show_config", _READ_ONLY)
    add(t.push, "push")
    add(t.list_deployments, "list_deployments", _READ_API)
    add(t.list_skills, "list_skills", _READ_API)
    add(t.activate_deployment, "activate_deployment")
    add(t.delete_deployment, "delete_deployment", _DESTRUCTIVE)
    add(t.submit_job, "submit_job")
    add(t.submit_job, "submit_agentic_job", doc=_ALIAS_NOTE)
    add(t.submit_job, "submit_function_job", doc=_ALIAS_NOTE)
    add(t.get_job, "get_job", _READ_API)
    add(t.list_jobs, "list_jobs", _READ_API)
    add(t.tail_job, "tail_job", _READ_API)
    add(t.cancel_job, "cancel_job", _DESTRUCTIVE)
    add(t.submit_job_feedback, "submit_job_feedback")
    add(t.list_job_feedback, "list_job_feedback", _READ_API)
    add(t.job_feedback_stats, "job_feedback_stats", _READ_API)
    add(t.list_secrets, "list_secrets", _READ_API)
    add(t.set_secret, "set_secret")
    add(t.delete_secret, "delete_secret", _DESTRUCTIVE)
    add(t.drive_sign, "drive_sign", _READ_API)
    add(t.list_docs, "list_docs", _READ_ONLY)
    add(t.read_doc, "read_doc", _READ_ONLY)
    add(t.search_docs, "search_docs", _READ_ONLY)
    for page in pages():
        server.add_resource(
            TextResource(
                uri=DOCS_URI.format(slug=page.slug),
                name=page.slug,
                title=page.title,
                description=page.summary,
                mime_type="text/markdown",
                text=page.body,
            )
        )
    return server


def main() -> None:
    """The ``purasbackend-mcp`` console script: serve MCP over stdio."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(
            "purasbackend-mcp: the Puras MCP server (stdio). Register it with\n"
            "  claude mcp add purasbackend purasbackend-mcp\n"
            f"Credentials: {config_path()} (set PURASBACKEND_CONFIG to use another file)."
        )
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--version":
        print(f"purasbackend-mcp {__version__}")
        return
    # httpx logs every request at INFO; the server's stderr is for what goes wrong.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    create_server().run("stdio")
