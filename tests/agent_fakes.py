"""Stand-ins for the agent engine's file ports (the sandbox's drive, the SSRF-safe
fetcher), for unit tests of what the model is shown.

:class:`FakeSandbox` reads a dict as the sandbox reads the drive: a missing file or one
over ``max_bytes`` is a :class:`DriveFile` with an ``error``, in the words of the real
session's tool host; :class:`FakeFetcher` records every URL it is asked for, so a test
can say a URL was *not* fetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from puras_common.events.types import ToolRecord
from puras_runner.app.ports import BashResult, DriveFile, Fetched, ToolCallResult
from puras_runner.domain.agent.conversation import ModelRoute
from puras_runner.domain.agent.errors import FetchFailed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
GIF = b"GIF89a" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" + bytes(16)
ZIP = b"PK\x03\x04" + bytes(40)

CLAUDE = ModelRoute(
    slug="claude/sonnet-4-6", provider="anthropic", upstream_model="claude-sonnet-4-6", pdf=True
)
GPT_4O = ModelRoute(slug="gpt/4o", provider="openai", upstream_model="gpt-4o", pdf=False)
TEXT_ONLY = ModelRoute(
    slug="local/llama3", provider="openai", upstream_model="llama3", vision=False, pdf=False
)


@dataclass
class FakeSandbox:
    """A sandbox session over a dict of drive files (path → bytes)."""

    drive: dict[str, bytes] = field(default_factory=dict)
    reads: list[list[str]] = field(default_factory=list)
    """The paths of every ``read_files`` call, in order."""
    opened: int = 0
    """How often :meth:`open` handed this session out (the lazy opener)."""

    async def open(self) -> FakeSandbox:
        self.opened += 1
        return self

    async def bash(self, command: str, timeout_s: float) -> BashResult:
        raise AssertionError("bash is not part of reading files")

    async def call_tool(
        self, tool: ToolRecord, inputs: dict[str, Any], timeout_s: float
    ) -> ToolCallResult:
        raise AssertionError("user tools are not part of reading files")

    async def read_files(self, paths: Sequence[str], max_bytes: int) -> list[DriveFile]:
        self.reads.append(list(paths))
        out = []
        for path in paths:
            data = self.drive.get(path)
            # The tool host's own words (``puras_runner.tool_host``).
            if data is None:
                out.append(DriveFile(path=path, error=f"no such file in the drive: {path}"))
            elif len(data) > max_bytes:
                error = f"{path} is {len(data)} bytes, over the {max_bytes}-byte limit"
                out.append(DriveFile(path=path, error=error))
            else:
                out.append(DriveFile(path=path, data=data, size=len(data)))
        return out

    async def write_file(self, path: str, data: bytes) -> str:
        self.drive[path] = data
        return path

    async def close(self) -> None:
        return None


@dataclass
class FakeFetcher:
    """Answers URLs from a dict (url → :class:`Fetched` or the ``FetchFailed`` to raise)."""

    answers: dict[str, Fetched | FetchFailed] = field(default_factory=dict)
    calls: list[tuple[str, int, float]] = field(default_factory=list)
    """``(url, max_bytes, timeout_s)`` of every ``get``."""

    async def get(self, url: str, *, max_bytes: int, timeout_s: float) -> Fetched:
        self.calls.append((url, max_bytes, timeout_s))
        answer = self.answers.get(url)
        if answer is None:
            raise FetchFailed(f"HTTP 404 from {url}")
        if isinstance(answer, FetchFailed):
            raise answer
        if len(answer.data) > max_bytes:
            raise FetchFailed(f"the response is over {max_bytes} bytes")
        return answer


async def no_sandbox() -> FakeSandbox:
    """The opener of a run that must not need its sandbox."""
    raise AssertionError("the sandbox was opened, but no attachment is in the drive")
