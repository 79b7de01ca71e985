"""Where the CLI finds its API base and credentials.

Each value comes from the environment first, then from the nearest ``.puras/dev.env``
(the file ``./dev up`` writes) in the current directory or one of its parents. The
environment wins so that a shell pointing at another deployment is never overridden by
a dev stack that happens to be running in the checkout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEV_ENV_RELPATH",
    "CliConfig",
    "find_dev_env",
    "format_env_file",
    "load_config",
    "parse_env_file",
    "write_private_file",
]

DEV_ENV_RELPATH = Path(".puras") / "dev.env"
"""Relative to the repository root: the live dev stack's address and credentials."""

_KEYS = (
    "PURAS_API_BASE",
    "PURAS_API_KEY",
    "PURAS_ADMIN_TOKEN",
    "PURAS_PROJECT_ID",
    "PURAS_NATS_URL",
    "PURAS_DATABASE_URL",
)
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class CliConfig:
    """What a command needs to reach the gateway; ``None`` where nothing set a value."""

    api_base: str | None
    api_key: str | None
    admin_token: str | None
    project_id: str | None
    dev_env: Path | None
    nats_url: str | None = None
    """The event log (operator commands that replay it: ``admin rebuild``, ``admin streams``)."""
    database_url: str | None = None
    """The projections' Postgres (``admin rebuild``)."""
    """The ``.puras/dev.env`` that supplied missing values, if one was found."""


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines (``export`` allowed, ``#`` comments, optional matching quotes)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if m is None:
            continue
        key, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def format_env_file(values: Mapping[str, str], *, header: str = "") -> str:
    """The inverse of :func:`parse_env_file`: ``export KEY='value'`` lines, so a shell
    that sources the file hands the values on to what it runs (``curl`` in a script,
    ``puras`` itself), and ``header`` as ``#`` comment lines above them."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in values.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"{key}: a value with a quote or newline cannot be written")
        lines.append(f"export {key}='{value}'")
    return "\n".join(lines) + "\n"


def find_dev_env(start: Path) -> Path | None:
    """The nearest ``.puras/dev.env`` at ``start`` or above it."""
    start = start.resolve()
    for d in (start, *start.parents):
        candidate = d / DEV_ENV_RELPATH
        if candidate.is_file():
            return candidate
    return None


def load_config(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> CliConfig:
    env = os.environ if environ is None else environ
    found = find_dev_env(Path.cwd() if cwd is None else cwd)
    file_values: dict[str, str] = {}
    if found is not None:
        try:
            file_values = parse_env_file(found.read_text())
        except OSError:
            # Unreadable (another user's file, a race with `./dev up` removing it): the
            # environment alone decides, and a missing value is reported by name later.
            found = None
    resolved = {}
    for key in _KEYS:
        value = env.get(key) or file_values.get(key) or None
        resolved[key] = value
    base = resolved["PURAS_API_BASE"]
    return CliConfig(
        api_base=base.rstrip("/") if base else None,
        api_key=resolved["PURAS_API_KEY"],
        admin_token=resolved["PURAS_ADMIN_TOKEN"],
        project_id=resolved["PURAS_PROJECT_ID"],
        dev_env=found if file_values else None,
        nats_url=resolved["PURAS_NATS_URL"],
        database_url=resolved["PURAS_DATABASE_URL"],
    )


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (0600), atomically.

    Created with the restrictive mode from the start (never world-readable for an
    instant), then renamed over the target so a reader sees the old or the new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the umask cannot widen it, but a leftover tmp file might be wider
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
