"""``puras jobs submit|get|list|events|cancel|feedback`` (J1-J6, J9)."""

from __future__ import annotations

import json
from typing import Any

import click

from puras_cli import api
from puras_cli.context import CliContext, emit

__all__ = ["jobs", "parse_inputs"]

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RATINGS = {"up": 1, "1": 1, "+1": 1, "down": -1, "-1": -1, "none": 0, "0": 0}
"""``--rating`` as typed: a word or J9's number."""


def parse_inputs(inputs_json: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    """The job's ``inputs`` from ``--inputs JSON`` or from ``--input`` pairs.

    ``key=value`` gives a string, ``key:=value`` a JSON value (``n:=3``, ``tags:='["a"]'``),
    as httpie spells it: a value typed on a shell is text unless asked otherwise.
    """
    if inputs_json is not None and pairs:
        raise click.UsageError("give either --inputs JSON or --input key=value, not both")
    if inputs_json is not None:
        try:
            value = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--inputs") from exc
        if not isinstance(value, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--inputs")
        return value
    out: dict[str, Any] = {}
    for pair in pairs:
        eq = pair.find("=")
        is_json = eq > 0 and pair[eq - 1] == ":"
        key = pair[: eq - 1] if is_json else pair[:eq]
        if eq <= 0 or not key:
            raise click.BadParameter(
                f"{pair!r} is not key=value (or key:=json)", param_hint="--input"
            )
        if key in out:
            raise click.BadParameter(f"{key!r} given twice", param_hint="--input")
        raw = pair[eq + 1 :]
        if is_json:
            try:
                out[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise click.BadParameter(
                    f"{key}:= wants a JSON value: {exc}", param_hint="--input"
                ) from exc
        else:
            out[key] = raw
    return out


@click.group()
def jobs() -> None:
    """Submit and inspect jobs."""


@jobs.command()
@click.argument("skill")
@click.option("--inputs", "inputs_json", metavar="JSON", help="The inputs as one JSON object.")
@click.option(
    "--input",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="One input: key=text or key:=json (repeatable).",
)
@click.option("--wait", is_flag=True, help="Block until the job ends (or --timeout passes).")
@click.option(
    "--timeout",
    type=click.IntRange(1, api.WAIT_MAX_S),
    help=f"Seconds to wait with --wait (1-{api.WAIT_MAX_S}, default 30).",
)
@click.pass_obj
def submit(
    obj: CliContext,
    skill: str,
    inputs_json: str | None,
    pairs: tuple[str, ...],
    wait: bool,
    timeout: int | None,
) -> None:
    """Run SKILL of the active deployment; prints the job (queued, or final with --wait)."""
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait")
    inputs = parse_inputs(inputs_json, pairs)
    with obj.api_client() as client:
        emit(api.submit_job(client, skill, inputs, wait=wait, timeout=timeout))


@jobs.command()
@click.argument("job_id")
@click.pass_obj
def get(obj: CliContext, job_id: str) -> None:
    """Show one job."""
    with obj.api_client() as client:
        emit(api.get_job(client, job_id))


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--limit", type=click.IntRange(1, 200), help="At most this many (default 25).")
@click.pass_obj
def list_(obj: CliContext, status: str | None, limit: int | None) -> None:
    """List jobs, newest first."""
    with obj.api_client() as client:
        emit(api.list_jobs(client, status=status, limit=limit))


@jobs.command()
@click.argument("job_id")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Stream events as they happen (one JSON object a line) until the job ends.",
)
@click.pass_obj
def events(obj: CliContext, job_id: str, follow: bool) -> None:
    """Show a job's events so far, or follow them live with --follow."""
    with obj.api_client() as client:
        if not follow:
            emit(api.job_events(client, job_id))
            return
        for frame in api.stream_job(client, job_id):
            if frame.event == "end":
                # The end frame carries the final JobOut, not an event: label it as such.
                click.echo(json.dumps({"type": "end", "job": frame.json()}, ensure_ascii=False))
                return
            click.echo(frame.data)


@jobs.command()
@click.argument("job_id")
@click.pass_obj
def cancel(obj: CliContext, job_id: str) -> None:
    """Cancel a queued or running job."""
    with obj.api_client() as client:
        emit(api.cancel_job(client, job_id))


@jobs.command()
@click.argument("job_id")
@click.option(
    "--rating",
    type=click.Choice(list(RATINGS)),
    help="up (1), down (-1) or none (0: a comment without a thumb).",
)
@click.option("--comment", help="Free text (at most 4000 characters).")
@click.option(
    "--user", "end_user_id", default="", help="Your id of the user giving it (default anonymous)."
)
@click.option("--list", "list_rows", is_flag=True, help="Show the job's feedback, newest first.")
@click.option("--stats", is_flag=True, help="Show {up, down, count, score} of the job.")
@click.pass_obj
def feedback(
    obj: CliContext,
    job_id: str,
    rating: str | None,
    comment: str | None,
    end_user_id: str,
    list_rows: bool,
    stats: bool,
) -> None:
    """Give feedback on a job's result (one row per --user, replaced when given again),
    or show it with --list / --stats.

    \b
      puras jobs feedback JOB_ID --rating up --comment "spot on" --user u42
      puras jobs feedback JOB_ID --stats
    """
    giving = rating is not None or comment is not None
    if sum((giving, list_rows, stats)) > 1:
        raise click.UsageError("give feedback (--rating/--comment), or --list, or --stats")
    with obj.api_client() as client:
        if list_rows:
            emit(api.list_feedback(client, job_id))
            return
        if stats:
            emit(api.feedback_stats(client, job_id))
            return
        value = RATINGS[rating] if rating is not None else 0
        if value == 0 and not (comment or "").strip():
            raise click.UsageError(
                "give --rating up|down, or a --comment (or both); --list or --stats show "
                "the job's feedback"
            )
        emit(
            api.submit_feedback(
                client, job_id, rating=value, comment=comment or "", end_user_id=end_user_id
            )
        )
