"""The MCP server installs next to an editor: it depends on no Puras server package."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_package_imports_nothing_from_the_server_side() -> None:
    # What mcp and httpx bring along (anyio, pydantic) may be imported, and the stdlib-only
    # packer and the httpx-only HTTP client it shares with the CLI; nothing else of Puras.
    allowed = {
        "purasbackend_mcp",
        "puras_bundle",
        "puras_client",
        "mcp",
        "httpx",
        "anyio",
        "pydantic",
        "typing_extensions",  # pydantic's own; its TypedDict gives tools output schemas
    }
    src = ROOT / "mcp" / "src" / "purasbackend_mcp"
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, f"{path.name}: {name}"
    declared = {
        r.split(">")[0].split("<")[0].split("=")[0].strip()
        for r in requires("purasbackend-mcp") or []
    }
    assert declared == {"puras-bundle", "puras-client", "mcp", "httpx"}
    shared = {r.split(">")[0].strip() for r in requires("puras-client") or []}
    assert shared == {"httpx"}
