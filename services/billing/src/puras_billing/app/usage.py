"""Charging usage (B1, J8): a ``job.usage`` event priced, debited from the project's
ledger, and added to its job's cost.

Two appends per usage event, each recorded once whatever the deliveries: the ledger's
``ledger.charged`` (guarded, id ``charge:<usage id>``) and then the job's ``job.cost``
(id ``cost:<usage id>``, unguarded: the job's subject has other writers). Each is looked
up first (the ledger's writer remembers the usage ids it charged; the job's side is read
from the log after the usage event, which holds beyond any duplicate window; JetStream's
window covers two deliveries racing each other). A crash between the two
leaves the usage event unacked: its redelivery finds the charge and appends only the
job's side, with the price the ledger holds. Only successful upstream calls have usage
events (B5), so every one is billed.
"""

from __future__ import annotations

from puras_billing.app.ledger import LedgerWriter
from puras_billing.app.ports import JobLog, SpendSettler
from puras_common.clock import Clock, SystemClock
from puras_common.events.ids import job_charged_id
from puras_common.events.types import BilledCall, JobCharged, MediaUsageRecorded, UsageRecorded
from puras_common.logging import get_logger
from puras_common.pricing import Registry

__all__ = ["UsageBiller"]

log = get_logger(__name__)


class UsageBiller:
    def __init__(
        self,
        ledger: LedgerWriter,
        jobs: JobLog,
        registry: Registry,
        *,
        margin_pct: int,
        spend: SpendSettler | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._ledger = ledger
        self._jobs = jobs
        self._spend = spend
        self._clock = clock or SystemClock()
        self._registry = registry
        self._margin_pct = margin_pct

    def price(
        self, usage: UsageRecorded | MediaUsageRecorded, *, usage_id: str, job_id: str
    ) -> BilledCall:
        """The billed call of one usage event; raises
        :class:`~puras_common.pricing.PricingError` (an unknown slug, a bad token count,
        media inputs the slug's shape cannot read) rather than price it at zero."""
        if isinstance(usage, MediaUsageRecorded):
            return BilledCall(
                usage_id=usage_id,
                job_id=job_id,
                step=usage.call,
                provider=usage.provider,
                model=usage.model,
                billed_micros=self._registry.media_cost(
                    usage.model, usage.inputs, outputs=usage.outputs, margin_pct=self._margin_pct
                ),
                registry_version=self._registry.version,
                margin_pct=self._margin_pct,
                skill=usage.skill,
                key_prefix=usage.key_prefix,
                kind="media",
                media_inputs=usage.inputs,
                media_outputs=usage.outputs,
            )
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
        usage: UsageRecorded | MediaUsageRecorded,
        *,
        usage_id: str,
        usage_seq: int,
        project_id: str,
        job_id: str,
    ) -> BilledCall:
        """Charge one usage event (stored at ``usage_seq``); returns the call as recorded.
        Safe to repeat, on any replica, however long after."""
        # Looked up on every delivery, not only on redeliveries: a durable created again
        # (or reset) delivers old usage events for the first time once more. The writer
        # remembers what it charged; a usage older than that is looked up in the ledger
        # after the usage event (its charge comes after it). Priced only if not charged:
        # a charge recorded before keeps its price.
        call, first = await self._ledger.record_charge(
            usage_id,
            lambda: self.price(usage, usage_id=usage_id, job_id=job_id),
            project_id=project_id,
            usage_seq=usage_seq,
        )
        if self._spend is not None and call.key_prefix is not None:
            # The key's spend window counts the call in place of its hold (Z1): counted
            # by the delivery that charged it, or by a later one if the hold is still
            # there (the delivery that charged it died before settling).
            await self._spend.settle(
                project_id,
                call.key_prefix,
                hold_id=usage_id,
                micros=call.billed_micros,
                now=self._clock.now(),
                first_charge=first,
            )
        event_id = job_charged_id(usage_id)
        if not first:
            # The delivery that charged it may have stored the job's side too. (A charge
            # just recorded has none yet: a concurrent delivery that appends it after
            # finding this charge does so within the duplicate window, which drops it.)
            seq = await self._jobs.find(project_id, job_id, event_id, after_seq=usage_seq)
            if seq is not None:
                log.info("job cost recorded before", usage_id=usage_id, seq=seq)
                return call
        await self._jobs.append(
            JobCharged(call=call), project_id=project_id, job_id=job_id, event_id=event_id
        )
        return call
