"""The billing audit's fold (SPEC Z3), pure: the log's ledger and job events in, the
differences the log holds within itself and the tables the projections must equal out.

Every ``job.usage`` (and ``job.media_usage``) is priced again with the registry version
and margin its charge names, and checked against what was charged; every charge against
its usage event and its job's ``job.cost``; every entry's stamped balance against the
balance folded so far. The expected tables are built from the log the way the live
projections build theirs (billing's ledger projection, the gateway's jobs view), so a
row that differs is a row someone or something changed.

Work that may still be on its way (a usage event billing has not charged yet, a charge
whose ``job.cost`` is not appended yet) is *pending*: the audit reads on while the live
system catches up, and reports what is still pending at its deadline as a difference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from puras_common.events.base import Envelope
from puras_common.events.types import (
    BilledCall,
    CreditCharged,
    CreditGranted,
    MediaUsageRecorded,
    UsageRecorded,
)
from puras_common.ledger import entry_for, usage_row
from puras_common.pricing import PricingError, Registry

__all__ = ["AuditFold", "Difference", "ExpectedTables"]

RegistryLookup = Callable[[str], Registry]
"""A registry by version; raises :class:`~puras_common.pricing.PricingError` (an
:class:`~puras_common.pricing.UnknownRegistryVersion`) for one it does not have."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing the audit found wrong."""

    kind: str
    """A stable code: ``price_mismatch``, ``unbilled_usage``, ``double_charge``, ..."""
    detail: str
    """What is wrong, naming the event ids, sequences and amounts."""
    seq: int | None = None
    """Where in the log (``None`` for a table row)."""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "seq": self.seq}


@dataclass(slots=True)
class ExpectedTables:
    """Rows in the live tables' column order (``ledger_entries``, ``project_balances``,
    ``usage_rows``, ``job_costs``; the gateway's ``jobs`` on ``id, project_id,
    cost_micros``)."""

    ledger_entries: list[tuple[Any, ...]]
    project_balances: list[tuple[Any, ...]]
    usage_rows: list[tuple[Any, ...]]
    job_costs: list[tuple[Any, ...]]
    job_cost_micros: list[tuple[Any, ...]]


@dataclass(slots=True)
class _Usage:
    seq: int
    project_id: str
    job_id: str
    event: UsageRecorded | MediaUsageRecorded


@dataclass(slots=True)
class _Charge:
    seq: int
    event_id: str
    project_id: str
    call: BilledCall


@dataclass(slots=True)
class _Balance:
    micros: int = 0
    last_seq: int = 0


@dataclass(slots=True)
class _Job:
    project_id: str
    cost_micros: int = 0


@dataclass
class AuditFold:
    """Feed it the log in sequence order (one method per kind of event); read
    :meth:`differences`, :meth:`pending` and :meth:`expected` at any point."""

    registry: RegistryLookup
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_entry_seq: int = 0
    """The last grant or charge the ledger projection applies (its balances' last_seq)."""
    last_job_row_seq: int = 0
    """The last event the jobs view applies (its rows' last_seq)."""
    _found: list[Difference] = field(default_factory=list)
    _usages: dict[str, _Usage] = field(default_factory=dict)
    _charges: dict[str, list[_Charge]] = field(default_factory=dict)
    """Charges by the usage id they bill."""
    _costs: dict[str, list[tuple[int, BilledCall]]] = field(default_factory=dict)
    """``job.cost`` events by usage id."""
    _entries: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _balances: dict[str, _Balance] = field(default_factory=dict)
    _stamped: dict[str, int] = field(default_factory=dict)
    """Per project, the balance as the log's own entries fold it (every entry)."""
    _usage_rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _job_costs: dict[str, list[Any]] = field(default_factory=dict)
    _jobs: dict[str, _Job] = field(default_factory=dict)

    # -- feeding ---------------------------------------------------------------------------

    def _saw(self, seq: int) -> None:
        self.events += 1
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq

    def job_event(self, seq: int, project_id: str, job_id: str, type_: str) -> None:
        """Any event on a job's subject (the gateway's jobs view starts a job's row at its
        ``job.queued`` and ignores whatever a subject has before one)."""
        self._saw(seq)
        if type_ == "job.queued" and job_id not in self._jobs:
            self._jobs[job_id] = _Job(project_id)
        if job_id in self._jobs:
            self.last_job_row_seq = seq

    def usage(
        self,
        seq: int,
        event_id: str,
        project_id: str,
        job_id: str,
        ev: UsageRecorded | MediaUsageRecorded,
    ) -> None:
        self.job_event(seq, project_id, job_id, ev.type)
        if event_id in self._usages:
            return  # the same fact stored twice (past the duplicate window): billed once
        self._usages[event_id] = _Usage(seq, project_id, job_id, ev)

    def job_cost(self, seq: int, project_id: str, job_id: str, call: BilledCall) -> None:
        self.job_event(seq, project_id, job_id, "job.cost")
        self._costs.setdefault(call.usage_id, []).append((seq, call))
        job = self._jobs.get(job_id)
        if job is not None:
            job.cost_micros += call.billed_micros

    def ledger_event(self, seq: int, env: Envelope, ev: object | None) -> None:
        """Any event on a ledger subject: grants and charges are entries, crossings are
        announcements (nothing to check here: billing's own fold tracks them)."""
        self._saw(seq)
        if not isinstance(ev, CreditGranted | CreditCharged):
            return
        pid = env.project_id
        micros = ev.micros if isinstance(ev, CreditGranted) else -ev.call.billed_micros
        self._stamp(seq, env.id, pid, micros, ev.balance_micros)
        if isinstance(ev, CreditCharged):
            self._charge(seq, env, ev)
        if env.id in self._entries:
            return  # the projection keeps an entry id once
        entry = entry_for(env, ev)
        assert entry is not None
        if isinstance(ev, CreditCharged):
            c = ev.call
            if c.usage_id in self._usage_rows:
                return  # billed twice under another id (reported): the projection refuses it
            self._usage_rows[c.usage_id] = usage_row(pid, env.at, seq, c)
            cost = self._job_costs.setdefault(c.job_id, [c.job_id, pid, 0, 0])
            cost[2] += c.billed_micros
            cost[3] += 1
        self._entries[env.id] = (
            entry.entry_id,
            entry.project_id,
            entry.kind,
            entry.micros,
            entry.note,
            entry.at,
            seq,
        )
        bal = self._balances.setdefault(pid, _Balance())
        bal.micros += entry.micros
        bal.last_seq = max(bal.last_seq, seq)
        self.last_entry_seq = max(self.last_entry_seq, seq)

    def undecodable(self, seq: int, subject: str, reason: str) -> None:
        """A message on a ledger or job subject that is not an event this build reads."""
        self._saw(seq)
        self._found.append(Difference("undecodable", f"{subject}: {reason}", seq))

    def _stamp(self, seq: int, event_id: str, pid: str, micros: int, stamped: int | None) -> None:
        after = self._stamped.get(pid, 0) + micros
        self._stamped[pid] = after
        if stamped is not None and stamped != after:
            self._found.append(
                Difference(
                    "balance_stamp",
                    f"ledger event {event_id} of project {pid} says the balance is {stamped} "
                    f"micros after it; the log's entries up to it add up to {after}",
                    seq,
                )
            )

    def _charge(self, seq: int, env: Envelope, ev: CreditCharged) -> None:
        c = ev.call
        charges = self._charges.setdefault(c.usage_id, [])
        charges.append(_Charge(seq, env.id, env.project_id, c))
        if len(charges) > 1:
            first = charges[0]
            self._found.append(
                Difference(
                    "double_charge",
                    f"usage {c.usage_id} charged again by {env.id} ({c.billed_micros} micros); "
                    f"first charged by {first.event_id} at sequence {first.seq}",
                    seq,
                )
            )
            return
        usage = self._usages.get(c.usage_id)
        if usage is None:
            self._found.append(
                Difference(
                    "charge_without_usage",
                    f"charge {env.id} bills usage {c.usage_id}, which is not in the log before it",
                    seq,
                )
            )
            return
        self._check_charge(seq, env.id, env.project_id, usage, c)

    def _check_charge(
        self, seq: int, charge_id: str, pid: str, usage: _Usage, c: BilledCall
    ) -> None:
        u = usage.event
        fields: list[tuple[str, object, object]] = [
            ("project", pid, usage.project_id),
            ("job", c.job_id, usage.job_id),
            ("model", c.model, u.model),
            ("provider", c.provider, u.provider),
        ]
        if isinstance(u, MediaUsageRecorded):
            fields += [
                ("kind", c.kind, "media"),
                ("step", c.step, u.call),
                ("media_inputs", c.media_inputs, u.inputs),
                ("media_outputs", c.media_outputs, u.outputs),
            ]
        else:
            fields += [
                ("kind", c.kind, "model"),
                ("step", c.step, u.step),
                ("input_tokens", c.input_tokens, u.usage.input_tokens),
                ("output_tokens", c.output_tokens, u.usage.output_tokens),
                ("cache_read_tokens", c.cache_read_tokens, u.usage.cache_read_tokens),
                ("cache_write_tokens", c.cache_write_tokens, u.usage.cache_write_tokens),
            ]
        wrong = [
            f"{name} {charged!r} (usage says {recorded!r})"
            for name, charged, recorded in fields
            if charged != recorded
        ]
        if wrong:
            self._found.append(
                Difference(
                    "charge_mismatch",
                    f"charge {charge_id} of usage {c.usage_id} differs from it: "
                    + ", ".join(wrong),
                    seq,
                )
            )
        try:
            registry = self.registry(c.registry_version)
            priced = (
                registry.media_cost(u.model, u.inputs, outputs=u.outputs, margin_pct=c.margin_pct)
                if isinstance(u, MediaUsageRecorded)
                else registry.model_cost(u.model, u.usage, margin_pct=c.margin_pct)
            )
        except PricingError as exc:
            self._found.append(
                Difference(
                    "unpriceable",
                    f"charge {charge_id} of usage {c.usage_id} ({c.billed_micros} micros, "
                    f"registry {c.registry_version}, margin {c.margin_pct} %) cannot be priced "
                    f"again: {exc}",
                    seq,
                )
            )
            return
        if priced != c.billed_micros:
            self._found.append(
                Difference(
                    "price_mismatch",
                    f"charge {charge_id} of usage {c.usage_id} billed {c.billed_micros} micros; "
                    f"{u.model} at registry {c.registry_version}, margin {c.margin_pct} % "
                    f"prices it at {priced}",
                    seq,
                )
            )

    # -- reading ---------------------------------------------------------------------------

    def pending(self, upto: int | None = None) -> list[Difference]:
        """What billing may still be doing: usage not charged yet, charges whose
        ``job.cost`` is not in the log yet (stored at or before ``upto``, if given)."""
        out = self._pending()
        return out if upto is None else [d for d in out if (d.seq or 0) <= upto]

    def _pending(self) -> list[Difference]:
        out = [
            Difference(
                "unbilled_usage",
                f"usage {uid} of job {u.job_id} ({u.event.model}, "
                f"{_call_of(u.event)}) has no charge",
                u.seq,
            )
            for uid, u in self._usages.items()
            if uid not in self._charges
        ]
        for uid, charges in self._charges.items():
            first = charges[0]
            if uid not in self._costs and uid in self._usages:
                out.append(
                    Difference(
                        "missing_job_cost",
                        f"charge {first.event_id} of job {first.call.job_id} has no job.cost",
                        first.seq,
                    )
                )
        return out

    def differences(self, pending_upto: int | None = None) -> list[Difference]:
        """Everything wrong within the log, in log order, with the work still pending
        that was stored at or before ``pending_upto`` (all of it if ``None``)."""
        out = list(self._found)
        for uid, costs in self._costs.items():
            charges = self._charges.get(uid)
            for i, (seq, call) in enumerate(costs):
                if i > 0:
                    out.append(
                        Difference(
                            "double_job_cost",
                            f"job.cost of usage {uid} recorded again on job {call.job_id}: "
                            f"its cost counts {call.billed_micros} micros twice",
                            seq,
                        )
                    )
                elif not charges:
                    out.append(
                        Difference(
                            "job_cost_without_charge",
                            f"job.cost of usage {uid} on job {call.job_id} ({call.billed_micros} "
                            "micros) has no ledger charge",
                            seq,
                        )
                    )
                elif call != charges[0].call:
                    out.append(
                        Difference(
                            "job_cost_mismatch",
                            f"job.cost of usage {uid} on job {call.job_id} says "
                            f"{call.billed_micros} micros; the ledger charged "
                            f"{charges[0].call.billed_micros} ({charges[0].event_id})",
                            seq,
                        )
                    )
        out.extend(self.pending(pending_upto))
        out.sort(key=lambda d: d.seq or 0)
        return out

    def expected(self) -> ExpectedTables:
        return ExpectedTables(
            ledger_entries=list(self._entries.values()),
            project_balances=[(p, b.micros, b.last_seq) for p, b in self._balances.items()],
            usage_rows=list(self._usage_rows.values()),
            job_costs=[tuple(c) for c in self._job_costs.values()],
            job_cost_micros=[(j, job.project_id, job.cost_micros) for j, job in self._jobs.items()],
        )


def _call_of(ev: UsageRecorded | MediaUsageRecorded) -> str:
    return f"media call {ev.call}" if isinstance(ev, MediaUsageRecorded) else f"step {ev.step}"
