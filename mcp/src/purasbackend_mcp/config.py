"""Where the MCP server keeps its credentials, and how it reads and writes them.

One JSON file, ``~/.purasbackend/config.json`` (``$PURASBACKEND_CONFIG`` points
elsewhere), written owner-only (0600) and atomically, and read again on every tool call
so that ``configure`` in one session, or an edit by hand, takes effect at once.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CONFIG_ENV",
    "Config",
    "ConfigError",
    "config_path",
    "key_prefix",
    "load_config",
    "normalise_api_base",
    "save_config",
    "validate_api_key",
]

CONFIG_ENV = "PURASBACKEND_CONFIG"
"""Environment variable naming the config file (tests and several accounts use it)."""

_DEFAULT_RELPATH = Path(".purasbackend") / "config.json"
_KEY_RE = re.compile(r"^(puras_live_[A-Za-z0-9]+)\.([A-Za-z0-9]+)$")


class ConfigError(Exception):
    """The config is missing, unreadable or malformed; the message says what to do."""


@dataclass(frozen=True)
class Config:
    """What a tool needs to call the API."""

    api_base: str
    api_key: str
    project_id: str = ""

    @property
    def key_prefix(self) -> str | None:
        return key_prefix(self.api_key)


def config_path() -> Path:
    """``$PURASBACKEND_CONFIG``, else ``~/.purasbackend/config.json``."""
    override = os.environ.get(CONFIG_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path.home() / _DEFAULT_RELPATH


def key_prefix(api_key: str) -> str | None:
    """``puras_live_<prefix>`` of a well-formed key; ``None`` otherwise (never the secret)."""
    m = _KEY_RE.match(api_key.strip())
    return m.group(1) if m else None


def validate_api_key(api_key: str) -> str:
    """The key, stripped, or :class:`ConfigError` saying what is wrong with it."""
    key = api_key.strip()
    if not key:
        raise ConfigError("api_key is empty: pass the project key, puras_live_<prefix>.<secret>")
    if not key.startswith("puras_live_"):
        raise ConfigError(
            "api_key must be a project key starting with puras_live_ "
            "(the admin token is not a project key)"
        )
    if "." not in key:
        raise ConfigError(
            "api_key has no dot: pass the whole key, puras_live_<prefix>.<secret>; "
            "the dot between prefix and secret is part of the key"
        )
    if _KEY_RE.match(key) is None:
        raise ConfigError(
            "api_key is not shaped like puras_live_<prefix>.<secret> "
            "(letters and digits on both sides of one dot)"
        )
    return key


def normalise_api_base(api_base: str) -> str:
    """``http(s)://host[:port][/path]`` without a trailing slash, or :class:`ConfigError`."""
    base = api_base.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"api_base must be an http:// or https:// URL of the gateway, "
            f"e.g. http://127.0.0.1:8080; got {api_base!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"api_base must not carry a query or fragment; got {api_base!r}")
    if base.endswith("/v1"):
        # Every path this server calls already starts with /v1.
        base = base[: -len("/v1")]
    return base


def load_config(path: Path | None = None) -> Config | None:
    """The saved config; ``None`` when no file exists; :class:`ConfigError` when broken."""
    p = config_path() if path is None else path
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {p} ({exc.strerror or exc}); fix its permissions") from exc
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{p} is not valid JSON ({exc}); call configure(api_base, api_key) to rewrite it"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p} must hold a JSON object; call configure(api_base, api_key)")
    api_base = raw.get("api_base")
    api_key = raw.get("api_key")
    project_id = raw.get("project_id") or ""
    if not isinstance(api_base, str) or not api_base.strip():
        raise ConfigError(f"{p} has no api_base; call configure(api_base, api_key)")
    if not isinstance(api_key, str) or not api_key.strip():
        raise ConfigError(f"{p} has no api_key; call configure(api_base, api_key)")
    if not isinstance(project_id, str):
        raise ConfigError(f"{p}: project_id must be a string")
    return Config(
        api_base=api_base.strip().rstrip("/"), api_key=api_key.strip(), project_id=project_id
    )


def save_config(config: Config, path: Path | None = None) -> Path:
    """Writes ``config`` owner-only (0600) and atomically; returns the path written.

    The file is created with its restrictive mode from the start (never readable by
    others for an instant) and renamed over the old one, so a concurrent reader sees the
    old or the new file, never half of one. A folder this creates is 0700.
    """
    p = config_path() if path is None else path
    if not p.parent.exists():
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps(
        {"api_base": config.api_base, "api_key": config.api_key, "project_id": config.project_id},
        indent=2,
    )
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover tmp file may have been wider; the umask can't widen it
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(body + "\n")
        os.replace(tmp, p)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return p
