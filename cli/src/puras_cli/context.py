"""What every command receives: resolved configuration and clients built from it.

Tests hand in their own environment, working directory and HTTP transport through
``CliRunner.invoke(..., obj=CliContext(...))``; the real command line builds a default.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from puras_cli.client import PurasClient, PurasError
from puras_cli.config import CliConfig, load_config

__all__ = ["CliContext", "emit"]

_START_HINT = "start a dev stack with ./dev up (it writes .puras/dev.env), or export {}"


@dataclass
class CliContext:
    environ: Mapping[str, str] | None = None
    """``None``: the process environment."""
    cwd: Path | None = None
    """Where to start looking for ``.puras/dev.env``; ``None``: the working directory."""
    transport: httpx.BaseTransport | None = None
    tty: bool | None = None
    """Whether a person types at stdin (a hidden prompt) or something is piped in;
    ``None``: ask the terminal."""
    _config: CliConfig | None = field(default=None, init=False, repr=False)

    @property
    def config(self) -> CliConfig:
        if self._config is None:
            self._config = load_config(self.environ, self.cwd)
        return self._config

    def interactive(self) -> bool:
        if self.tty is not None:
            return self.tty
        return sys.stdin.isatty()

    def _where(self) -> str:
        dev_env = self.config.dev_env
        return f" (nor in {dev_env})" if dev_env else " and no .puras/dev.env was found"

    def _base(self) -> str:
        base = self.config.api_base
        if not base:
            raise PurasError(
                f"PURAS_API_BASE is not set{self._where()}; " + _START_HINT.format("PURAS_API_BASE")
            )
        return base

    def api_client(self) -> PurasClient:
        """A client authenticated with the project's API key."""
        base = self._base()
        key = self.config.api_key
        if not key:
            raise PurasError(
                f"PURAS_API_KEY is not set{self._where()}; " + _START_HINT.format("PURAS_API_KEY")
            )
        return PurasClient(base, key, transport=self.transport)

    def admin_client(self) -> PurasClient:
        """A client authenticated with the operator's admin token (T3)."""
        base = self._base()
        token = self.config.admin_token
        if not token:
            raise PurasError(
                f"PURAS_ADMIN_TOKEN is not set{self._where()}; "
                + _START_HINT.format("PURAS_ADMIN_TOKEN")
            )
        return PurasClient(base, token, transport=self.transport)


def emit(value: Any) -> None:
    """Print an API answer as pretty JSON (nothing for an empty answer, e.g. a 204)."""
    if value is None:
        return
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
