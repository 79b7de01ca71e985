"""Who may do what on NATS: one identity per service, least privilege (ARCHITECTURE §7).

This module is the single source of the permission matrix. The dev stack's nats-server
configuration (``puras_cli.infra.nats_server``) and the Kubernetes one
(``deploy/k8s/nats/nats.conf``, kept current by ``python -m puras_common.bus.permissions``
and checked by a test) are both rendered from :data:`IDENTITIES`; nothing else lists
subjects.

Writers own their facts: a service may publish only the events it decides.

* **gateway**: commands to the scheduler and to billing (credit grants), venv build
  requests of pushed deployments (``build.*``, taken by runners) and the runners'
  reports of their outcomes (the ``gateway-builds`` durable), and the facts it
  decides: projects, API keys, deployments and feedback on jobs (its own
  aggregate). Never a job event: job facts come from the scheduler (admission,
  lifecycle) and the runners (execution); nor a ledger
  event: the ledger has one writer, billing. It alone subscribes to the live frames of
  jobs (``live.*.job.*``), which it relays to attached SSE clients.
* **scheduler**: job admission and lifecycle events, work items and held jobs; it deletes
  a dead work item after failing its job (``runner lost``).
* **runner**: job progress and terminal events (``ev.*.job.*``) and its jobs' live
  frames (``live.*.job.*``: the model's text as it is generated, stored nowhere), and
  the report of each venv build it takes from ``PURAS_BUILDS`` (Z7), to the gateways
  (``cmd.gateway.built.*``), which record ``deployment.built`` or
  ``deployment.build_failed`` and the activation the push asked for; nothing else: no
  deployment events, keys, grants, other commands or work items. It reads the log
  by direct get (a job's last event; a deployment's ``deployment.created``, whose skills
  it runs; a project's last ledger event, whose balance stops agent jobs of a project
  that asked for it). It holds a call's worst case on its key's spend window in the
  ``PURAS_SPEND`` bucket before the call, and releases a hold whose call failed.
* **billing**: the ledger's one writer (``ev.*.ledger.*``): grants it is commanded to
  record (``cmd.billing.>``) and the charges of the jobs' usage events, each append
  guarded by the project's ledger sequence. It reads the job subjects with an ordered
  consumer (``ev.*.job.*``) from a checkpoint it keeps in Postgres, and once deletes the
  durable that earlier versions read them with (``billing-usage``: consumer info and
  delete, which its ordered consumers need anyway; no pulls or acks on it), and
  appends each charged call's ``job.cost`` to its job's subject (``ev.*.job.*``: NATS
  scopes by subject, not by event type, so the job subjects are shared with the
  scheduler and the runners, as they are between those two). It settles each charged
  call in its key's spend window (``PURAS_SPEND``).
* **secrets** (``ev.*.secret.*``): the gateway is their one writer (a set, a delete, a
  re-seal by a key rotation). The events carry only ciphertext; every identity that
  reads the log can read them, and only the gateway and the runners hold the master key
  that opens them (settings, never the bus). A runner reads a project's secret
  subjects by direct get (``next_by_subj`` on ``ev.<project>.secret.*``), with the
  direct-get rights it has already.
* **drive**: the drive's own facts (``ev.*.drive.*``: files written and deleted through
  its API), and reads the log (projects to provision, its file table's projection).

JetStream's API is scoped the same way: each identity may call only the API subjects of
the streams, consumers and buckets it uses, and receives replies only on its own inbox
prefix (``_INBOX.<identity>.``) so no service can read another's replies (the
connection sets that prefix, see :func:`inbox_prefix`). Delete, purge and update of the
streams are left to the ``ops`` identity (operators, ``puras admin``, the test harness).
Anonymous connections are refused: every user is listed, and no ``no_auth_user`` exists.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from puras_common.bundles import BUNDLE_BUCKET
from puras_common.bus.client import NatsCredentials
from puras_common.events.ids import BILLING_DURABLE, SCHEDULER_DURABLE
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_DRIVE,
    AGG_FEEDBACK,
    AGG_JOB,
    AGG_KEY,
    AGG_LEDGER,
    AGG_PROJECT,
    AGG_SECRET,
    BUILDS_DURABLE,
    BUILDS_STREAM,
    CMD_BILLING_GRANT,
    CMD_GATEWAY_BUILT,
    CMD_SCHEDULER_CANCEL,
    CMD_SCHEDULER_SUBMIT,
    CMDS_STREAM,
    EVENTS_STREAM,
    GATEWAY_BUILDS_DURABLE,
    HELD_STREAM,
    LIVE_JOB_FILTER,
    RUNNER_MEDIA_FILTER,
    WORK_STREAM,
    aggregate_filter,
)

__all__ = [
    "IDEMPOTENCY_BUCKET",
    "IDENTITIES",
    "OPS",
    "SERVICES",
    "Identity",
    "NatsCredentials",
    "inbox_prefix",
    "k8s_password_env",
    "render_authorization",
    "render_k8s_authorization",
    "subject_matches",
]

IDEMPOTENCY_BUCKET = "PURAS_IDEMPOTENCY"
"""The gateway's idempotency-key bucket (its KV stream is ``KV_PURAS_IDEMPOTENCY``)."""

OPS = "ops"
"""The privileged identity of operators (``puras admin``) and of the test harness."""

_API = "$JS.API"
_DECLARED = (EVENTS_STREAM, CMDS_STREAM, WORK_STREAM, HELD_STREAM, BUILDS_STREAM)
_BUNDLES = f"OBJ_{BUNDLE_BUCKET}"
_IDEMPOTENCY = f"KV_{IDEMPOTENCY_BUCKET}"
SPEND_BUCKET = "PURAS_SPEND"
"""The keys' spend windows (``puras_common.spend.book``; its KV stream ``KV_PURAS_SPEND``)."""
_SPEND = f"KV_{SPEND_BUCKET}"


@dataclass(frozen=True)
class Identity:
    """One NATS user and what it may publish and subscribe to."""

    name: str
    purpose: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    answers_requests: bool = False
    """May answer requests it received (one reply each, to the asker's inbox, for as
    long as a media call may take): NATS' ``allow_responses``, so it needs no right to
    publish on any other identity's inbox."""


def inbox_prefix(identity: str) -> str:
    """Replies to ``identity`` arrive under ``_INBOX.<identity>.``: only it may subscribe."""
    return "_INBOX" if identity == OPS else f"_INBOX.{identity}"


def _ensure_streams() -> tuple[str, ...]:
    # Every service checks (and on a fresh server creates) the declared streams at start.
    # A create never changes an existing stream, and a stream created with any other
    # configuration is refused at the next start of every service (StreamConfigMismatch).
    return tuple(
        f"{_API}.STREAM.{verb}.{stream}" for stream in _DECLARED for verb in ("INFO", "CREATE")
    )


def _follow(stream: str) -> tuple[str, ...]:
    """Ordered (ephemeral, flow-controlled) consumers over ``stream``."""
    return (
        f"{_API}.CONSUMER.CREATE.{stream}",
        f"{_API}.CONSUMER.CREATE.{stream}.>",
        f"{_API}.CONSUMER.INFO.{stream}.*",
        f"{_API}.CONSUMER.DELETE.{stream}.*",
        f"$JS.FC.{stream}.>",
    )


def _direct_get(stream: str) -> tuple[str, ...]:
    return (f"{_API}.DIRECT.GET.{stream}", f"{_API}.DIRECT.GET.{stream}.>")


def _durable(stream: str, durable: str) -> tuple[str, ...]:
    """A durable pull consumer: create/update, info, pull requests, acks."""
    return (
        f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{_API}.CONSUMER.CREATE.{stream}.{durable}",
        f"{_API}.CONSUMER.CREATE.{stream}.{durable}.>",
        f"{_API}.CONSUMER.INFO.{stream}.{durable}",
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    )


def _events(*aggregates: str) -> tuple[str, ...]:
    return tuple(aggregate_filter(a) for a in aggregates)


def _bundles_read() -> tuple[str, ...]:
    return (
        f"{_API}.STREAM.INFO.{_BUNDLES}",
        # Reading an object subscribes to its chunks by subject: the client looks up
        # which stream holds them (a list of stream names, nothing of their content).
        f"{_API}.STREAM.NAMES",
        f"{_API}.STREAM.MSG.GET.{_BUNDLES}",
        *_direct_get(_BUNDLES),
        *_follow(_BUNDLES),
    )


def _spend_book() -> tuple[str, ...]:
    """Read and compare-and-set the keys' spend windows (Z1: runners hold, billing settles)."""
    return (
        f"$KV.{SPEND_BUCKET}.>",
        f"{_API}.STREAM.INFO.{_SPEND}",
        f"{_API}.STREAM.CREATE.{_SPEND}",
        f"{_API}.STREAM.MSG.GET.{_SPEND}",
        *_direct_get(_SPEND),
    )


def _gateway() -> Identity:
    return Identity(
        name="gateway",
        purpose="HTTP API: commands (jobs, credit grants), projects, keys, deployments",
        publish=(
            f"{CMD_SCHEDULER_SUBMIT}.*.*",
            CMD_SCHEDULER_CANCEL,
            CMD_BILLING_GRANT,
            # A job's media call, to the runner running it (S2; request-reply).
            RUNNER_MEDIA_FILTER,
            # A submit not admitted yet, looked up by its subject (a read right after it).
            f"{_API}.STREAM.MSG.GET.{CMDS_STREAM}",
            *_events(AGG_PROJECT, AGG_KEY, AGG_DEPLOYMENTS),
            # Venv builds of pushed deployments, for the runners (Z7): it requests them
            # and never builds (no package code runs in the gateway); the runners'
            # reports of their outcomes, through the gateways' shared durable.
            "build.*",
            *_durable(CMDS_STREAM, GATEWAY_BUILDS_DURABLE),
            # Feedback on jobs (J9): its own aggregate, never a job subject.
            *_events(AGG_FEEDBACK),
            # Project secrets (X1), sealed before they are recorded: the gateway is
            # their one writer; only it and the runners hold the key that opens them.
            *_events(AGG_SECRET),
            *_ensure_streams(),
            *_follow(EVENTS_STREAM),
            *_direct_get(EVENTS_STREAM),
            # Deployment bundles: it stores and deletes them (delete purges the chunks).
            f"$O.{BUNDLE_BUCKET}.>",
            f"{_API}.STREAM.CREATE.{_BUNDLES}",
            f"{_API}.STREAM.PURGE.{_BUNDLES}",
            *_bundles_read(),
            # Idempotency keys (J10).
            f"$KV.{IDEMPOTENCY_BUCKET}.>",
            f"{_API}.STREAM.INFO.{_IDEMPOTENCY}",
            f"{_API}.STREAM.CREATE.{_IDEMPOTENCY}",
            f"{_API}.STREAM.MSG.GET.{_IDEMPOTENCY}",
            *_direct_get(_IDEMPOTENCY),
        ),
        # Live job events for wait and SSE, without a consumer (ARCHITECTURE §5a), and
        # the model's text as it is generated, for attached SSE clients (Z5).
        subscribe=(_events(AGG_JOB)[0], LIVE_JOB_FILTER, f"{inbox_prefix('gateway')}.>"),
    )


def _scheduler() -> Identity:
    return Identity(
        name="scheduler",
        purpose="admission, lifecycle events, work items, held jobs, lost runners",
        publish=(
            *_events(AGG_JOB),
            "work.*",
            "held.*.*",
            *_ensure_streams(),
            *_follow(EVENTS_STREAM),
            *_direct_get(EVENTS_STREAM),
            *_durable(CMDS_STREAM, SCHEDULER_DURABLE),
            # A submit still queued, read when its cancel is handled first.
            f"{_API}.STREAM.MSG.GET.{CMDS_STREAM}",
            # Held jobs: one short-lived consumer per project being released.
            f"{_API}.CONSUMER.CREATE.{HELD_STREAM}",
            f"{_API}.CONSUMER.CREATE.{HELD_STREAM}.>",
            f"{_API}.CONSUMER.INFO.{HELD_STREAM}.*",
            f"{_API}.CONSUMER.MSG.NEXT.{HELD_STREAM}.*",
            f"{_API}.CONSUMER.DELETE.{HELD_STREAM}.*",
            f"$JS.ACK.{HELD_STREAM}.>",
            # Lost runners: read the dead work item, fail its job, delete the item.
            f"{_API}.STREAM.MSG.GET.{WORK_STREAM}",
            f"{_API}.STREAM.MSG.DELETE.{WORK_STREAM}",
        ),
        subscribe=(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{WORK_STREAM}.*",
            f"{inbox_prefix('scheduler')}.>",
        ),
    )


def _runner() -> Identity:
    return Identity(
        name="runner",
        purpose="runs jobs: job progress and terminal events, its jobs' drive writes",
        publish=(
            *_events(AGG_JOB),
            # Files its jobs' media calls saved (D7: origin).
            *_events(AGG_DRIVE),
            # The model's text as it is generated, for attached clients; never stored.
            LIVE_JOB_FILTER,
            *_ensure_streams(),
            *_direct_get(EVENTS_STREAM),
            # The pool's durable, runners-<pool> (a wildcard is a whole token: any pool).
            *_durable(WORK_STREAM, "*"),
            # Pushed deployments' venv builds (Z7): the shared durable, and the report of
            # each outcome to the gateways, which record it (never a deployment event).
            *_durable(BUILDS_STREAM, BUILDS_DURABLE),
            f"{CMD_GATEWAY_BUILT}.*",
            *_bundles_read(),
            # Holds on the keys' spend limits, before each billable call (Z1).
            *_spend_book(),
        ),
        # Its jobs' subjects, for cancel signals (a plain subscription).
        # Media calls of the jobs it runs (answered with allow_responses).
        subscribe=(_events(AGG_JOB)[0], RUNNER_MEDIA_FILTER, f"{inbox_prefix('runner')}.>"),
        answers_requests=True,
    )


def _billing() -> Identity:
    return Identity(
        name="billing",
        purpose="the ledger's one writer (grants, charges), job costs, its projection",
        publish=(
            *_events(AGG_LEDGER),
            # A charged call's job.cost on its job's subject (J8).
            *_events(AGG_JOB),
            *_ensure_streams(),
            *_follow(EVENTS_STREAM),
            *_direct_get(EVENTS_STREAM),
            *_durable(CMDS_STREAM, BILLING_DURABLE),
            # Each charged call counted in its key's spend window (Z1).
            *_spend_book(),
        ),
        subscribe=(f"{inbox_prefix('billing')}.>",),
    )


def _drive() -> Identity:
    return Identity(
        name="drive",
        purpose="project drives and their API: drive events (uploads, deletes), its file table",
        publish=(
            *_events(AGG_DRIVE),
            *_ensure_streams(),
            *_follow(EVENTS_STREAM),
            *_direct_get(EVENTS_STREAM),
        ),
        subscribe=(f"{inbox_prefix('drive')}.>",),
    )


def _ops() -> Identity:
    return Identity(
        name=OPS,
        purpose="operators (puras admin streams/rebuild) and the test harness: everything",
        publish=(">",),
        subscribe=(">",),
    )


IDENTITIES: dict[str, Identity] = {
    i.name: i
    for i in (
        _gateway(),
        _scheduler(),
        _runner(),
        _billing(),
        _drive(),
        _ops(),
    )
}
"""Every NATS user, by name (= the service it belongs to, or ``ops``)."""

SERVICES: tuple[str, ...] = tuple(n for n in IDENTITIES if n != OPS)


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` one token, ``>`` one or more trailing tokens."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, p in enumerate(pat):
        if p == ">":
            return len(sub) > i
        if i >= len(sub) or (p != "*" and p != sub[i]):
            return False
    return len(pat) == len(sub)


def _quote(s: str) -> str:
    return json.dumps(s)


def render_authorization(password: Callable[[str], str]) -> str:
    """The ``authorization { users = [...] }`` block of nats.conf.

    ``password(name)`` gives what follows ``password:`` for each user: a quoted literal
    (dev stack) or an environment reference such as ``$PURAS_NATS_RUNNER_PASSWORD``
    (Kubernetes, where the value comes from a Secret).
    """
    lines = ["authorization {", "  users = ["]
    for ident in IDENTITIES.values():
        lines.append(f"    # {ident.name}: {ident.purpose}")
        lines.append("    {")
        lines.append(f"      user: {_quote(ident.name)}")
        lines.append(f"      password: {password(ident.name)}")
        lines.append("      permissions: {")
        for kind, subjects in (("publish", ident.publish), ("subscribe", ident.subscribe)):
            lines.append(f"        {kind}: {{ allow: [")
            lines.extend(f"          {_quote(s)}" for s in subjects)
            lines.append("        ] }")
        if ident.answers_requests:
            lines.append('        allow_responses: { max: 1, expires: "20m" }')
        lines.append("      }")
        lines.append("    }")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def dev_authorization(passwords: Mapping[str, str]) -> str:
    """The block with literal passwords (a generated, mode-0600 config file)."""
    missing = set(IDENTITIES) - set(passwords)
    if missing:
        raise ValueError(f"no password for NATS identities {sorted(missing)}")
    return render_authorization(lambda name: _quote(passwords[name]))


def k8s_password_env(identity: str) -> str:
    """Environment variable of the NATS pods holding ``identity``'s password."""
    return f"PURAS_NATS_{identity.upper()}_PASSWORD"


def render_k8s_authorization() -> str:
    return render_authorization(lambda name: "$" + k8s_password_env(name))


BEGIN = "# BEGIN authorization (generated by `python -m puras_common.bus.permissions`)"
END = "# END authorization"


def replace_block(text: str, block: str) -> str:
    """``text`` with the generated block between :data:`BEGIN` and :data:`END` replaced."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END) + r"\n?", re.DOTALL)
    if not pattern.search(text):
        raise ValueError("no generated authorization block (BEGIN/END markers) found")
    return pattern.sub(lambda _m: f"{BEGIN}\n{block}{END}\n", text, count=1)


DOCS_BEGIN = "<!-- nats-permissions:begin (python -m puras_common.bus.permissions) -->"
DOCS_END = "<!-- nats-permissions:end -->"


def render_markdown() -> str:
    """The matrix as a Markdown table (docs/architecture.md)."""

    def cell(subjects: list[str]) -> str:
        return "<br>".join(f"`{s}`" for s in subjects) if subjects else "—"

    rows = [
        "| identity | publishes (facts, commands, work) | JetStream API and acks | subscribes |",
        "|---|---|---|---|",
    ]
    for ident in IDENTITIES.values():
        facts = [s for s in ident.publish if not s.startswith("$")]
        api = [s for s in ident.publish if s.startswith("$")]
        rows.append(
            f"| `{ident.name}` | {cell(facts)} | {cell(api)} | {cell(list(ident.subscribe))} |"
        )
    return "\n".join(rows) + "\n"


def replace_docs(text: str) -> str:
    pattern = re.compile(re.escape(DOCS_BEGIN) + r"\n.*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError("no nats-permissions markers found")
    return pattern.sub(lambda _m: f"{DOCS_BEGIN}\n{render_markdown()}{DOCS_END}", text, count=1)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) the authorization block of a Kubernetes nats.conf, and
    with ``--docs`` the matrix in docs/architecture.md."""
    parser = argparse.ArgumentParser(prog="python -m puras_common.bus.permissions")
    parser.add_argument("nats_conf", type=Path, help="e.g. deploy/k8s/nats/nats.conf")
    parser.add_argument("--docs", type=Path, help="e.g. docs/architecture.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if it is not current")
    args = parser.parse_args(argv)

    def nats_conf(text: str) -> str:
        return replace_block(text, render_k8s_authorization())

    targets: list[tuple[Path, Callable[[str], str]]] = [(args.nats_conf, nats_conf)]
    if args.docs is not None:
        targets.append((args.docs, replace_docs))
    stale = False
    for path, render in targets:
        text = path.read_text()
        new = render(text)
        if new == text:
            continue
        if args.check:
            print(f"{path} is not current: run without --check", file=sys.stderr)
            stale = True
        else:
            path.write_text(new)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
