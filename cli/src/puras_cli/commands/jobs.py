"""``puras jobs submit|get|list|events|logs|tail|cancel|feedback``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from puras_cli import api
from puras_cli.commands.output import Column, output_option, print_json, print_object, print_table
from puras_cli.context import CliContext
from puras_client import JobEvent, Puras, calls

__all__ = ["describe_event", "jobs", "parse_inputs", "read_inputs_json"]

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
UNSUCCESSFUL = frozenset({"failed", "cancelled"})
"""A job that ended so makes ``--wait``, ``--follow`` and ``tail`` exit with status 1."""
RATINGS = {"up": 1, "1": 1, "+1": 1, "down": -1, "-1": -1, "none": 0, "0": 0}
"""``--rating`` as typed: a word or the API's number."""

JOB_FIELDS = (
    "id", "skill", "status", "held_reason", "result", "error", "cost_micros", "attempts",
    "deployment_id", "created_at", "started_at", "finished_at", "inputs",
)  # fmt: skip
JOB_COLUMNS = (
    Column("ID", "id"),
    Column("SKILL", "skill"),
    Column("STATUS", "status"),
    Column("COST (µ$)", "cost_micros"),
    Column("CREATED", "created_at"),
)
EVENT_COLUMNS = (
    Column("#", "id"),
    Column("TYPE", "type"),
    Column("AT", "at"),
    Column("PAYLOAD", "payload"),
)


def read_inputs_json(value: str, stdin: Iterable[str] | None = None) -> str:
    """``--inputs`` as given: JSON text, ``@path`` for a file's content, ``-`` for stdin."""
    if value == "-":
        return "".join(stdin if stdin is not None else sys.stdin)
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc.strerror or exc}", param_hint="--inputs"
            ) from exc
    return value


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


def describe_event(ev: JobEvent) -> Iterator[str]:
    """A person's lines for one event: log lines as printed, the rest as ``type: detail``."""
    p = ev.payload if isinstance(ev.payload, Mapping) else {}
    tag = f"[{ev.id}] " if ev.id is not None else ""
    if ev.type == "log":
        for line in p.get("lines") or []:
            yield f"{tag}{line}"
    elif ev.type == "model_delta":
        yield f"{tag}model: {p.get('text', '')}"
    elif ev.type == "end":
        job = ev.job
        if job is not None:
            detail = (job.error or "") if job.status != "succeeded" else json.dumps(job.result)
            # An error's first line says what happened; a traceback follows it.
            first, *rest = detail.splitlines() or [""]
            yield f"job {job.id} {job.status}: {first}"
            yield from rest
    elif ev.type in STATUSES:
        yield f"{tag}{ev.type}"
    else:
        yield f"{tag}{ev.type}: {json.dumps(ev.payload, ensure_ascii=False)}"


def _event_json(ev: JobEvent) -> str:
    if ev.type == "end":
        # The end frame carries the final JobOut, not an event: label it as such.
        return json.dumps({"type": "end", "job": ev.payload}, ensure_ascii=False)
    row = {"id": ev.id, "type": ev.type, "payload": ev.payload, "at": ev.at, "job_id": ev.job_id}
    return json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False)


def _follow(events: Iterable[JobEvent], output: str) -> None:
    """Print a stream until its end; exit 1 when the job failed or was cancelled."""
    status = None
    for ev in events:
        if output == "json":
            click.echo(_event_json(ev))
        else:
            for line in describe_event(ev):
                click.echo(line)
        if ev.type == "end" and ev.job is not None:
            status = ev.job.status
    if status in UNSUCCESSFUL:
        sys.exit(1)


def _print_job(job: Mapping[str, Any], output: str) -> None:
    if output == "json":
        print_json(job)
    else:
        print_object(job, JOB_FIELDS)


@click.group()
def jobs() -> None:
    """Submit and inspect jobs."""


@jobs.command()
@click.argument("skill")
@click.option(
    "--inputs",
    "inputs_json",
    metavar="JSON|@FILE|-",
    help="The inputs as one JSON object: inline, @path to read a file, - to read stdin.",
)
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
@click.option("--follow", "-f", is_flag=True, help="Print the job's events live until it ends.")
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Submitting again with the same key and inputs returns the same job (<= 255 chars).",
)
@click.option(
    "--max-cost",
    "max_cost",
    type=click.IntRange(min=1),
    metavar="MICROS",
    help="Fail the job rather than spend more than this (1 USD = 1,000,000 micros).",
)
@output_option
@click.pass_obj
def submit(
    obj: CliContext,
    skill: str,
    inputs_json: str | None,
    pairs: tuple[str, ...],
    wait: bool,
    timeout: int | None,
    follow: bool,
    idempotency_key: str | None,
    max_cost: int | None,
    output: str,
) -> None:
    """Run SKILL of the active deployment; prints the job (queued, or final with --wait).

    With --wait or --follow the exit status is 1 when the job failed or was cancelled.

    \b
      puras jobs submit echo --input text=hi --wait
      puras jobs submit summarize --inputs @doc.json --follow
      echo '{"text": "hi"}' | puras jobs submit echo --inputs -
    """
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait")
    if wait and follow:
        raise click.UsageError("give --wait or --follow, not both")
    if inputs_json is not None:
        inputs_json = read_inputs_json(inputs_json)
    inputs = parse_inputs(inputs_json, pairs)
    with obj.api_client() as client:
        if follow:
            puras = Puras.over(client)
            _follow(
                puras.submit_stream(
                    skill, inputs, idempotency_key=idempotency_key, max_cost_micros=max_cost
                ),
                output,
            )
            return
        job = client.call(
            calls.submit_job(
                skill,
                inputs,
                wait=wait,
                timeout=timeout,
                idempotency_key=idempotency_key,
                max_cost_micros=max_cost,
            )
        )
    _print_job(job, output)
    if wait and isinstance(job, Mapping) and job.get("status") in UNSUCCESSFUL:
        sys.exit(1)


@jobs.command()
@click.argument("job_id")
@output_option
@click.pass_obj
def get(obj: CliContext, job_id: str, output: str) -> None:
    """Show one job."""
    with obj.api_client() as client:
        _print_job(api.get_job(client, job_id), output)


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--limit", type=click.IntRange(1, 200), help="At most this many (default 25).")
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@output_option
@click.pass_obj
def list_(
    obj: CliContext, status: str | None, limit: int | None, cursor: str | None, output: str
) -> None:
    """List jobs, newest first, a page at a time."""
    with obj.api_client() as client:
        page = client.call(calls.list_jobs(status=status, limit=limit, cursor=cursor))
    if output == "json":
        print_json(page)
        return
    print_table(page.get("jobs") or [], JOB_COLUMNS, empty="no jobs")
    if page.get("next_cursor"):
        click.echo(f"more: puras jobs list --cursor {page['next_cursor']}", err=True)


@jobs.command()
@click.argument("job_id")
@click.option(
    "--follow", "-f", is_flag=True, help="Stream events as they happen until the job ends."
)
@output_option
@click.pass_obj
def events(obj: CliContext, job_id: str, follow: bool, output: str) -> None:
    """Show a job's events so far, or follow them live with --follow (with -o json, one
    JSON object a line)."""
    with obj.api_client() as client:
        if follow:
            _follow(Puras.over(client).attach(job_id), output)
            return
        out = api.job_events(client, job_id)
    if output == "json":
        print_json(out)
    else:
        print_table(out.get("events") or [], EVENT_COLUMNS, empty="no events")


@jobs.command()
@click.argument("job_id")
@click.pass_obj
def logs(obj: CliContext, job_id: str) -> None:
    """Print what the job's code wrote to stdout and stderr so far."""
    with obj.api_client() as client:
        out = api.job_events(client, job_id)
    for row in out.get("events") or []:
        if row.get("type") == "log":
            for line in (row.get("payload") or {}).get("lines") or []:
                click.echo(line)


@jobs.command()
@click.argument("job_id")
@output_option
@click.pass_obj
def tail(obj: CliContext, job_id: str, output: str) -> None:
    """Follow a job live (from its first event) until it ends; the exit status is 1 when
    it failed or was cancelled."""
    with obj.api_client() as client:
        _follow(Puras.over(client).attach(job_id), output)


@jobs.command()
@click.argument("job_id")
@output_option
@click.pass_obj
def cancel(obj: CliContext, job_id: str, output: str) -> None:
    """Cancel a queued or running job."""
    with obj.api_client() as client:
        _print_job(api.cancel_job(client, job_id), output)


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
            print_json(api.list_feedback(client, job_id))
            return
        if stats:
            print_json(api.feedback_stats(client, job_id))
            return
        value = RATINGS[rating] if rating is not None else 0
        if value == 0 and not (comment or "").strip():
            raise click.UsageError(
                "give --rating up|down, or a --comment (or both); --list or --stats show "
                "the job's feedback"
            )
        print_json(
            api.submit_feedback(
                client, job_id, rating=value, comment=comment or "", end_user_id=end_user_id
            )
        )
