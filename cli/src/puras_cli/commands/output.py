"""How read commands print: a table for people (the default) or ``-o json``, the API's
answer as it came, for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

__all__ = ["Column", "output_option", "print_json", "print_object", "print_table"]

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json")


def output_option(f: F) -> F:
    """``-o/--output table|json`` as the command's ``output`` argument."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json prints the API's answer as is, for scripts.",
    )(f)


@dataclass(frozen=True)
class Column:
    title: str
    key: str | Callable[[Mapping[str, Any]], Any]

    def cell(self, row: Mapping[str, Any]) -> str:
        value = self.key(row) if callable(self.key) else row.get(self.key)
        return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value).replace("\n", " ")


def print_json(value: Any) -> None:
    """Pretty JSON (nothing for an empty answer, e.g. a 204)."""
    if value is None:
        return
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


_MAX_CELL = 60
"""Wider cells are cut with an ellipsis: a table is for a glance, -o json has it all."""


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str) -> None:
    """Rows under aligned column titles, or ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cut(c.cell(r)) for c in columns] for r in rows]
    titles = [c.title for c in columns]
    widths = [max(len(t), *(len(row[i]) for row in cells)) for i, t in enumerate(titles)]
    for line in [titles, *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def print_object(value: Mapping[str, Any], fields: Sequence[str] | None = None) -> None:
    """One object as ``field  value`` lines (``fields`` first, in order, then the rest)."""
    keys = list(fields or ())
    keys += [k for k in value if k not in keys]
    width = max((len(k) for k in keys), default=0)
    for k in keys:
        if k in value:
            click.echo(f"{k.ljust(width)}  {_text(value[k])}")


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"
