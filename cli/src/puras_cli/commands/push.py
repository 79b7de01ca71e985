"""``puras push DIR``: zip a project directory and create a deployment (P1, P4)."""

from __future__ import annotations

from pathlib import Path

import click

from puras_cli import api
from puras_cli.context import CliContext, emit

__all__ = ["push"]


@click.command()
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--notes", default="", help="A note stored with the deployment.")
@click.option(
    "--activate/--no-activate",
    default=True,
    show_default=True,
    help="Make it the active deployment (new jobs use it at once).",
)
@click.pass_obj
def push(obj: CliContext, project_dir: Path, notes: str, activate: bool) -> None:
    """Push PROJECT_DIR (a folder with skills/<name>/skill.yaml) as a new deployment."""
    bundle = api.pack(project_dir)
    with obj.api_client() as client:
        emit(api.push_bundle(client, bundle, notes=notes, activate=activate))
