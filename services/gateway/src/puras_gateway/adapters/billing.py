"""Credit grants, sent to billing (the ledger's one writer) on ``cmd.billing.grant``.

The gateway does not write the ledger: it sends the command and waits, bounded, for
what billing does with it. There is no sequence to wait for until billing has appended
the grant, so each advance of the ledger projection's checkpoint (a Postgres
notification, no polling) prompts a look for the grant's event on the project's ledger
subject after where the subject stood before the command; once found, the wait is for
the projection to pass its sequence.
"""

from __future__ import annotations

import asyncio

from puras_common.bus import Bus
from puras_common.events.base import decode_envelope
from puras_common.events.commands import GrantCredit, encode_command
from puras_common.events.ids import credit_granted_id
from puras_common.events.subjects import AGG_LEDGER, CMD_BILLING_GRANT, CMDS_STREAM, event_subject
from puras_common.projection.watch import CheckpointWatcher

__all__ = ["LEDGER_PROJECTION", "BillingCommands"]

LEDGER_PROJECTION = "ledger"
"""Billing's projection of the ledger (``puras_billing.adapters.projection``)."""


class BillingCommands:
    def __init__(self, bus: Bus, watcher: CheckpointWatcher) -> None:
        self._bus = bus
        self._watcher = watcher

    async def grant(self, cmd: GrantCredit, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        subject = event_subject(cmd.project_id, AGG_LEDGER, cmd.project_id)
        event_id = credit_granted_id(cmd.grant_id)
        after = await self._bus.last_subject_seq(subject)
        await self._bus.publish_raw(
            CMD_BILLING_GRANT,
            encode_command(cmd),
            # A retried publish of this grant is dropped before it reaches billing.
            msg_id=cmd.grant_id,
            stream=CMDS_STREAM,
        )
        while True:
            # Read before looking, so an advance during the look still wakes the wait.
            seen = self._watcher.seq(LEDGER_PROJECTION)
            async for seq, data in self._bus.subject_messages(subject, after_seq=after):
                if decode_envelope(data).id == event_id:
                    left = max(0.0, deadline - loop.time())
                    return await self._watcher.wait_for(LEDGER_PROJECTION, seq, left)
                after = seq
            left = deadline - loop.time()
            if left <= 0 or not await self._watcher.wait_for(LEDGER_PROJECTION, seen + 1, left):
                return False
