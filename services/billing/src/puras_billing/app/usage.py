"""Charging usage (B1, J8): a ``job.usage`` event priced, debited from the project's
ledger, and added to its job's cost.

Two appends per usage event, each recorded once whatever the deliveries: the ledger's
``ledger.charged`` (guarded, id ``charge:<usage id>``) and then the job's ``job.cost``
(id ``cost:<usage id>``, unguarded: the job's subject has other writers). Each is looked
up first, in the log after the usage event (which holds beyond any duplicate window;
JetStream's window covers two deliveries racing each other). A crash between the two
leaves the usage event unacked: its redelivery finds the charge and appends only the
job's side, with the price the ledger holds. Only successful upstream calls have usage
events (B5), so every one is billed.
"""

from __future__ import annotations

from puras_billing.app.ledger import LedgerWriter
from puras_billing.app.ports import JobLog
from puras_common.events.ids import job_charged_id
from puras_common.events.types import BilledCall, JobCharged, UsageRecorded
from puras_common.logging import get_logger
from puras_common.pricing import Registry

__all__ = ["UsageBiller"]

log = get_logger(__name__)


class UsageBiller:
    def __init__(
        self, ledger: LedgerWriter, jobs: JobLog, registry: Registry, *, margin_pct: int
    ) -> None:
        self._ledger = ledger
        self._jobs = jobs
        self._registry = registry
        self._margin_pct = margin_pct

    def price(self, usage: UsageRecorded, *, usage_id: str, job_id: str) -> BilledCall:
        """The billed call of one usage event; raises
        :class:`~puras_common.pricing.PricingError` (an unknown slug, a bad token count)
        rather than price it at zero."""
        u = usage.usage
        return BilledCall(
            usage_id=usage_id,
            job_id=job_id,
            step=usage.step,
            provider=usage.provider,
            model=usage.model,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_tokens,
            cache_write_tokens=u.cache_write_tokens,
            billed_micros=self._registry.model_cost(usage.model, u, margin_pct=self._margin_pct),
            registry_version=self._registry.version,
            margin_pct=self._margin_pct,
            skill=usage.skill,
            key_prefix=usage.key_prefix,
        )

    async def bill(
        self,
        usage: UsageRecorded,
        *,
        usage_id: str,
        usage_seq: int,
        project_id: str,
        job_id: str,
    ) -> BilledCall:
        """Charge one usage event (stored at ``usage_seq``); returns the call as recorded.
        Safe to repeat, on any replica, however long after."""
        # Looked up on every delivery, not only on redeliveries: a durable created again
        # (or reset) delivers old usage events for the first time once more. Both sides
        # are appended after the usage event, so only what follows it is read.
        before = await self._ledger.charged(project_id, usage_id, after_seq=usage_seq)
        if before is None:
            call = self.price(usage, usage_id=usage_id, job_id=job_id)
            # Only a concurrent delivery can have charged it since the look-up, which the
            # duplicate window catches (the writer then returns the call recorded first).
            call = await self._ledger.charge(call, project_id=project_id, redelivered=False)
        else:
            # Charged by a delivery that died before its ack: the price recorded stands.
            call = before
        event_id = job_charged_id(usage_id)
        seq = await self._jobs.find(project_id, job_id, event_id, after_seq=usage_seq)
        if seq is not None:
            log.info("job cost recorded before", usage_id=usage_id, seq=seq)
            return call
        await self._jobs.append(
            JobCharged(call=call), project_id=project_id, job_id=job_id, event_id=event_id
        )
        return call
