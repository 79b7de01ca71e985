"""``puras admin secrets ...``: the master key project secrets are sealed under (X1).

``new-key`` prints a fresh key (32 random bytes, base64). ``rotate`` asks the gateway to
re-seal, under its current ``PURAS_SECRETS_KEY``, every secret an older key sealed; run
it once every gateway and runner holds the new key as current and the old one in
``PURAS_SECRETS_PREVIOUS_KEYS`` (the steps are in docs/operations.md). It is safe to run
again: what is sealed under the current key already is left alone.

Exit status of ``rotate``: 0 when every secret is under the current key, 1 when some
could not be opened by any configured key (listed; keep their key until they are dealt
with).
"""

from __future__ import annotations

import base64
import os

import click

from puras_cli.context import CliContext, emit
from puras_client.calls import Call

__all__ = ["COMMANDS"]

EXIT_UNREADABLE = 1
ROTATE_TIMEOUT_S = 600.0
"""Re-sealing is one event per secret: a large deployment's rotation may take minutes."""


@click.group("secrets")
def secrets() -> None:
    """The master key of project secrets."""


@secrets.command("new-key")
def new_key() -> None:
    """Print a new random master key (for PURAS_SECRETS_KEY)."""
    # The form puras_common.secret_box.parse_key reads; made here so that the command
    # needs no server package installed.
    click.echo(base64.b64encode(os.urandom(32)).decode())


@secrets.command("rotate")
@click.pass_obj
def rotate(obj: CliContext) -> None:
    """Re-seal every project secret under the gateway's current master key."""
    with obj.admin_client() as client:
        report = client.call(Call("POST", "/v1/admin/secrets/rotate", timeout=ROTATE_TIMEOUT_S))
    emit(report)
    if report.get("unreadable"):
        raise SystemExit(EXIT_UNREADABLE)


COMMANDS: tuple[click.Command, ...] = (secrets,)
"""Commands of this module that ``puras admin`` registers."""
