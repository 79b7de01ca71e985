"""Running one tool call of an agent run: the built-ins (A3, A5, A8) and the skill's own
``tools:`` (A2), with their arguments checked against their schemas first.

Whatever goes wrong in a tool is the model's to see — a tool result with
``is_error`` — and never fails the run: a bad argument, a refused URL, a tool that
raises, a search backend that is not configured. Only the run's sandbox process going
away ends the run (``SandboxFailed``), since no tool that needs it can work after that.
Every text the model is shown is capped and has the project's secrets masked (X2).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from puras_common.events.types import ContentBlock, SkillRecord, TextBlock, ToolRecord
from puras_common.schemas import validate_instance
from puras_common.textsafety import escape_text
from puras_runner.app.agent_files import file_read
from puras_runner.app.media import MediaError
from puras_runner.app.ports import Fetcher, SandboxSession, Search
from puras_runner.domain import errors
from puras_runner.domain.agent.conversation import (
    ModelRoute,
    Text,
    ToolDef,
    ToolResult,
    ToolUse,
)
from puras_runner.domain.agent.errors import FetchFailed, SearchUnavailable
from puras_runner.domain.agent.tools import (
    DOWNLOAD_MAX_BYTES,
    WEB_FETCH_MAX_BYTES,
    bash_timeout,
    download_target,
)
from puras_runner.domain.agent.web_text import clip, page_text

__all__ = ["ToolOutput", "Toolbox", "ToolboxConfig"]

MAX_RESULT_CHARS: Final = 200_000
"""The most text one tool result shows the model (and the log keeps): web_fetch's own
ceiling. Beyond it the text is cut with a note."""
MAX_RESULT_BYTES: Final = 256 * 1024
"""And the most UTF-8 it may take: the result is one event, and an event must fit a NATS
message (1 MiB by default) with room to spare, whatever script the text is in."""
BASH_TAIL_BYTES: Final = 8 * 1024
"""What a bash call returns of its output, its last bytes (``tool_host.BASH_OUTPUT_BYTES``)."""
MEDIA_NOT_CONFIGURED: Final = (
    "media generation is not configured on this Puras server, so no media model can be called"
)

SandboxGetter = Callable[[], Awaitable[SandboxSession]]
MediaCall = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""One media call of the run (``app.media.MediaCalls.generate`` for its attempt)."""


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """A call's result for the model and, by reference, for the log."""

    result: ToolResult
    record: list[ContentBlock]


@dataclass(frozen=True, slots=True)
class ToolboxConfig:
    user_tool_timeout_s: float = 300.0
    """Wall-clock limit of one user tool call."""
    max_tool_result_bytes: int = 1024 * 1024
    """The most JSON a user tool may return."""
    web_fetch_timeout_s: float = 30.0
    download_timeout_s: float = 300.0


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


class Toolbox:
    """The tools of one run (one skill, one model, one sandbox)."""

    def __init__(
        self,
        *,
        skill: SkillRecord,
        route: ModelRoute,
        tools: Iterable[ToolDef],
        sandbox: SandboxGetter,
        fetcher: Fetcher,
        search: Search,
        secrets: Iterable[str],
        config: ToolboxConfig,
        media: MediaCall | None = None,
    ) -> None:
        self.skill = skill
        self.route = route
        self._schemas = {t.name: t.input_schema for t in tools}
        self._user = {t.name: t for t in skill.tools}
        self._sandbox = sandbox
        self._fetcher = fetcher
        self._search = search
        self._secrets = list(secrets)
        self._config = config
        self._media = media

    def offers(self, name: str) -> bool:
        return name in self._schemas

    async def run(self, call: ToolUse) -> ToolOutput:
        """Run ``call`` (not ``set_output``, which the loop answers itself)."""
        schema = self._schemas.get(call.name)
        if schema is None:
            return self._text(
                call,
                f"there is no tool named {call.name!r}; the tools are: {', '.join(self._schemas)}",
                is_error=True,
            )
        malformed = call.malformed_error()
        if malformed is not None:
            return self._text(call, malformed, is_error=True)
        problem = validate_instance(schema, call.input, root="input")
        if problem is not None:
            return self._text(call, f"invalid arguments for {call.name}: {problem}", is_error=True)
        args = call.input
        try:
            match call.name:
                case "bash" if not self.skill.disable_bash:
                    return await self._bash(call, args)
                case "file_read":
                    return await self._file_read(call, args)
                case "web_search" | "image_search":
                    return await self._search_tool(call, args)
                case "web_fetch":
                    return await self._web_fetch(call, args)
                case "download_url":
                    return await self._download(call, args)
                case "media":
                    return await self._media_tool(call, args)
            tool = self._user.get(call.name)
            if tool is not None:
                return await self._user_tool(call, tool, args)
        except (FetchFailed, SearchUnavailable) as exc:
            return self._text(call, str(exc), is_error=True)
        return self._text(call, f"the tool {call.name!r} is not available", is_error=True)

    # -- results -------------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        # What a tool printed or returned may hold NUL or lone surrogates (Z9).
        text = escape_text(text)
        # Masked before it is cut, so a value straddling the cut is masked whole; what
        # remains of one cut in half is masked too.
        if self._secrets:
            text = errors.mask_secrets(text, self._secrets)
        keep = min(len(text), MAX_RESULT_CHARS)
        if len(text[:keep].encode()) > MAX_RESULT_BYTES:
            # Cut at the byte cap, on a character boundary.
            keep = len(text.encode()[:MAX_RESULT_BYTES].decode("utf-8", "ignore"))
        if keep < len(text):
            cut = len(text) - keep
            head = text[:keep]
            if self._secrets:
                head = errors.mask_cut_end(head, self._secrets)
            text = head + f"\n[... {cut} more characters not shown]"
        return text

    def _text(self, call: ToolUse, text: str, *, is_error: bool = False) -> ToolOutput:
        text = self._mask(text)
        return ToolOutput(
            ToolResult(call.id, (Text(text),), is_error=is_error), [TextBlock(text=text)]
        )

    # -- the built-ins ---------------------------------------------------------------------

    async def _bash(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        timeout = bash_timeout(args)
        sandbox = await self._sandbox()
        done = await sandbox.bash(str(args["command"]), float(timeout))
        output = done.output
        if self._secrets and len(output.encode()) >= BASH_TAIL_BYTES - 3:
            # Only the output's tail comes back: its start may be the end of a secret.
            output = errors.mask_cut_start(output, self._secrets)
        head = f"exit code: {done.exit_code}"
        if done.timed_out:
            head += f" (killed: the command ran past its {timeout} s timeout)"
        return self._text(call, f"{head}\n{output}", is_error=done.timed_out)

    async def _file_read(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        sandbox = await self._sandbox()
        read = await file_read(args, route=self.route, sandbox=sandbox)
        # Text the files hold may print a secret like any tool output (X2).
        blocks = tuple(Text(self._mask(b.text)) if isinstance(b, Text) else b for b in read.content)
        record = [
            TextBlock(text=self._mask(b.text)) if isinstance(b, TextBlock) else b
            for b in read.logged
        ]
        return ToolOutput(ToolResult(call.id, blocks, is_error=read.is_error), record)

    async def _search_tool(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        query = str(args["query"])
        count = int(args.get("max_results", 5))
        if call.name == "web_search":
            hits = await self._search.web(query, count)
        else:
            hits = await self._search.images(query, count)
        if not hits:
            return self._text(call, f"no results for {query!r}")
        return self._text(call, _json(hits))

    async def _web_fetch(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        max_chars = int(args.get("max_chars", 20_000))
        page = await self._fetcher.get(
            str(args["url"]),
            max_bytes=WEB_FETCH_MAX_BYTES,
            timeout_s=self._config.web_fetch_timeout_s,
        )
        title, text = await asyncio.to_thread(
            page_text, page.data, page.media_type, page.charset, page.url
        )
        body = clip(text, max_chars)
        return self._text(call, f"URL: {page.url}\nTitle: {title or '(none)'}\n\n{body}")

    async def _media_tool(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        if self._media is None:
            return self._text(call, MEDIA_NOT_CONFIGURED, is_error=True)
        try:
            made = await self._media(dict(args))
        except MediaError as exc:
            return self._text(call, f"media call failed: {exc.message}", is_error=True)
        shown = {k: v for k, v in made.items() if k != "output_url"}
        return self._text(call, _json(shown))

    async def _download(self, call: ToolUse, args: dict[str, Any]) -> ToolOutput:
        url = str(args["url"])
        try:
            path = download_target(url, str(args["path"]))
        except ValueError as exc:
            return self._text(call, str(exc), is_error=True)
        sandbox = await self._sandbox()
        got = await self._fetcher.get(
            url, max_bytes=DOWNLOAD_MAX_BYTES, timeout_s=self._config.download_timeout_s
        )
        try:
            drive_path = await sandbox.write_file(path, got.data)
        except ValueError as exc:  # a path the drive refuses
            return self._text(call, f"cannot save to {path!r}: {exc}", is_error=True)
        return self._text(
            call,
            _json(
                {
                    "drive_path": drive_path,
                    "bytes": len(got.data),
                    "content_type": got.media_type or None,
                    "url": got.url,
                }
            ),
        )

    # -- the skill's own tools -------------------------------------------------------------

    async def _user_tool(self, call: ToolUse, tool: ToolRecord, args: dict[str, Any]) -> ToolOutput:
        sandbox = await self._sandbox()
        done = await sandbox.call_tool(tool, args, self._config.user_tool_timeout_s)
        if done.error is not None:
            return self._text(call, f"{tool.name} failed: {done.error}", is_error=True)
        if tool.output_schema is not None:
            problem = validate_instance(tool.output_schema, done.value, root="result")
            if problem is not None:
                return self._text(
                    call,
                    f"{tool.name} returned a result that does not match its output_schema: "
                    f"{problem}",
                    is_error=True,
                )
        return self._text(call, _json(done.value))
