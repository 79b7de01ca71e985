"""Finding the repository root: the directory holding ``dev`` (and the justfile)."""

from __future__ import annotations

from pathlib import Path

from puras_cli.client import PurasError

__all__ = ["find_repo_root"]


def _is_root(d: Path) -> bool:
    return (d / "dev").is_file() and (d / "justfile").is_file()


def find_repo_root(start: Path | None = None) -> Path:
    """The root above ``start`` (default: the working directory), else above this package.

    The second guess finds the checkout when ``puras`` runs from another directory,
    since the workspace installs this package in editable mode.
    """
    for origin in (start or Path.cwd(), Path(__file__)):
        origin = origin.resolve()
        for d in (origin, *origin.parents):
            if _is_root(d):
                return d
    raise PurasError(
        "cannot find the Puras repository (a directory holding ./dev and the justfile); "
        "run this from inside the checkout"
    )
