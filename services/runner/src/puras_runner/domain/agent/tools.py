"""The built-in tools as the model is offered them (the raw docs' "Agent tools
reference"), and the limits their arguments are held to (A3, A5, A8).

Pure data and argument checks; running them is ``app/agent_tools.py``'s job.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote, urlsplit

from puras_common.events.types import SkillRecord
from puras_runner.domain.agent.conversation import ToolDef
from puras_runner.domain.agent.loop import set_output_tool

__all__ = [
    "BASH_DEFAULT_TIMEOUT_S",
    "BASH_MAX_TIMEOUT_S",
    "BUILTIN_TOOLS",
    "DOWNLOAD_MAX_BYTES",
    "download_target",
    "offered_tools",
]

BASH_DEFAULT_TIMEOUT_S: Final = 60
BASH_MAX_TIMEOUT_S: Final = 600
"""A3: ``timeout`` defaults to 60 s, hard ceiling 600 s."""
DOWNLOAD_MAX_BYTES: Final = 50 * 1024 * 1024
"""A8: ``download_url``'s cap."""
WEB_FETCH_MAX_BYTES: Final = 10 * 1024 * 1024
"""What ``web_fetch`` downloads at most before extracting text from it."""
SEARCH_MAX_RESULTS: Final = 20

_BASH = ToolDef(
    "bash",
    "Run a shell command in the job's working directory. The current dir contains a "
    "`drive/` folder for files that should persist across jobs (synced to project "
    "storage). Anything written elsewhere is ephemeral. Returns combined stdout+stderr "
    "(last 8KB) and the exit code.",
    {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "Shell command to execute"},
            "timeout": {
                "type": "integer",
                "description": "Max seconds (default 60, hard ceiling 600)",
                "minimum": 1,
            },
        },
        "required": ["command"],
    },
)
_FILE_READ = ToolDef(
    "file_read",
    "Read one or more files from the project's drive and attach them to the "
    "conversation. Images (jpg/png/gif/webp) and PDFs come back as vision/document "
    "blocks you can look at directly. Text files (code, markdown, JSON, CSV, etc.) are "
    "inlined as text. Use this when you need to actually inspect contents; for listing "
    "files, use bash `ls drive/` instead. Hard cap: 5MB per file, 10 files per call.",
    {
        "type": "object",
        "properties": {
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 10,
                "description": "Drive paths relative to the project drive root (e.g. "
                "['uploads/photo.jpg', 'data/report.pdf']). A leading 'drive/' is "
                "accepted and stripped.",
            }
        },
        "required": ["paths"],
    },
)
_MEDIA = ToolDef(
    "media",
    "Generate media (image, video, audio) by calling a registered model. Pass a model "
    "slug (e.g. 'openai/gpt-image-2') and the inputs that model expects; they are passed "
    "through unchanged. The output is saved in the project's drive; returns its drive "
    "path (look at it with file_read), its kind and what the call cost.",
    {
        "type": "object",
        "properties": {
            "model": {"type": "string", "description": "Registered model slug"},
            "inputs": {
                "type": "object",
                "description": "Inputs sent straight to the upstream model",
            },
            "kind": {"type": "string", "enum": ["image", "video", "audio", "auto"]},
            "output_path": {
                "type": "string",
                "description": "Optional drive subpath (e.g. 'renders/spin.mp4')",
            },
            "output_url_path": {
                "type": "string",
                "description": "Optional jq-style path to the output URL in the upstream "
                "response (e.g. 'video.url')",
            },
        },
        "required": ["model", "inputs"],
    },
)


def _search(name: str, what: str) -> ToolDef:
    return ToolDef(
        name,
        what,
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Search query"},
                "max_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": SEARCH_MAX_RESULTS,
                    "description": "Max results to return (1-20, default 5)",
                },
            },
            "required": ["query"],
        },
    )


_WEB_SEARCH = _search(
    "web_search",
    "Search the web via the platform's search provider. Returns a list of results with "
    "title, url, and a short snippet. To load a result's full text, use web_fetch.",
)
_IMAGE_SEARCH = _search(
    "image_search",
    "Search for images on the web via the platform's search provider. Returns image "
    "URLs, thumbnails, dimensions, and source pages. To look at one, use download_url "
    "then file_read.",
)
_WEB_FETCH = ToolDef(
    "web_fetch",
    "Fetch a web page (HTTP GET) and return its plain text content with scripts/styles "
    "stripped. Does NOT execute JavaScript. Returns the final URL (after redirects), the "
    "page title, and extracted text (truncated to max_chars).",
    {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "The URL to fetch (http:// or https://)"},
            "max_chars": {
                "type": "integer",
                "minimum": 500,
                "maximum": 200_000,
                "description": "Max chars of body text to return (500-200000, default 20000)",
            },
        },
        "required": ["url"],
    },
)
_DOWNLOAD_URL = ToolDef(
    "download_url",
    "Download a file from a URL via plain HTTP GET and save it to the project's drive. "
    "Use this for images, PDFs, CSVs, etc. Does NOT resolve share links (Google Drive, "
    "Dropbox, YouTube): only direct HTTP(S) URLs work. Hard cap: 50MB per file.",
    {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "Direct file URL (http:// or https://)"},
            "path": {
                "type": "string",
                "description": "Where to save in the drive: a full path with file name "
                "('data/report.pdf') or a folder ending in '/' ('downloads/'), then the "
                "file name is the URL's last segment",
            },
        },
        "required": ["url", "path"],
    },
)

BUILTIN_TOOLS: Final = (
    _BASH,
    _FILE_READ,
    _MEDIA,
    _WEB_SEARCH,
    _IMAGE_SEARCH,
    _WEB_FETCH,
    _DOWNLOAD_URL,
)
"""In the order the model is offered them."""


def offered_tools(skill: SkillRecord) -> tuple[ToolDef, ...]:
    """A2: the built-ins (``bash`` unless ``disable_bash``), the skill's own ``tools:``,
    then ``set_output`` when the skill has an ``output_schema``."""
    tools = [t for t in BUILTIN_TOOLS if not (skill.disable_bash and t.name == "bash")]
    for tool in skill.tools:
        schema = tool.input_schema or {"type": "object", "properties": {}}
        tools.append(ToolDef(tool.name, tool.description, schema))
    if skill.output_schema is not None:
        tools.append(set_output_tool(skill.output_schema))
    return tuple(tools)


def bash_timeout(args: dict[str, Any]) -> int:
    value = args.get("timeout")
    if not isinstance(value, int) or isinstance(value, bool):
        return BASH_DEFAULT_TIMEOUT_S
    return max(1, min(value, BASH_MAX_TIMEOUT_S))


def download_target(url: str, path: str) -> str:
    """A8: a ``path`` ending in ``/`` takes the URL's file name (its last segment);
    raises ValueError when it has none."""
    if not path.endswith("/"):
        return path
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise ValueError(
            f"the URL {url} has no file name to save under {path!r}; give a full path "
            "such as 'downloads/file.pdf'"
        )
    return path + name
