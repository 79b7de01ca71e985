"""Before every billable call of a job (Z1): its cost cap, then its key's spend limit.

Shared by the agent loop's model calls and by media calls, so a job's calls of both
kinds add up against one cap (:attr:`Attempt.spent`) and hold against one key budget.
A hold is the call's worst case, taken in the spend book all runners share before the
call; billing settles it when it charges the call, and :meth:`SpendGuard.release` gives
it back when the call failed upstream (not billed, B5).
"""

from __future__ import annotations

from datetime import timedelta

from puras_common.clock import Clock
from puras_common.logging import get_logger
from puras_runner.app.attempt import Attempt
from puras_runner.app.ports import SpendBook
from puras_runner.domain.agent.costs import cap_error

__all__ = ["CapReached", "SpendGuard"]

log = get_logger(__name__)


class CapReached(Exception):
    """The call would take the job past its cost cap or its key past its spend limit;
    ``str()`` is Z1's message."""


class SpendGuard:
    def __init__(self, book: SpendBook | None, clock: Clock, hold_s: float) -> None:
        self.book = book
        """``None``: jobs whose key has a spend limit fail before their first call."""
        self.clock = clock
        self.hold_s = hold_s

    def check_cap(self, attempt: Attempt, worst: int) -> None:
        cap = attempt.job.max_cost_micros
        if cap is not None and attempt.spent + worst > cap:
            # Stopped before the call that could take it over: charged what it used.
            raise CapReached(cap_error(attempt.spent, cap))

    async def hold(self, attempt: Attempt, usage_id: str, worst: int) -> bool:
        """Reserve the call's worst case on its key's spend limit, if it has one."""
        job, limit = attempt.job, attempt.job.spend_limit
        if limit is None or job.key_prefix is None:
            return False
        if self.book is None:
            raise CapReached("this runner cannot enforce API-key spend limits (no spend book)")
        now = self.clock.now()
        refused = await self.book.reserve(
            job.project_id,
            job.key_prefix,
            limit,
            hold_id=usage_id,
            micros=worst,
            now=now,
            expires_at=now + timedelta(seconds=self.hold_s),
        )
        if refused is not None:
            log.info(
                "key spend limit reached",
                key_prefix=job.key_prefix,
                period=limit.period,
                spent=refused.spent,
                limit=refused.limit,
                call_worst_case=worst,
            )
            raise CapReached(cap_error(refused.spent, refused.limit))
        return True

    async def check_and_hold(self, attempt: Attempt, usage_id: str, worst: int) -> bool:
        self.check_cap(attempt, worst)
        return await self.hold(attempt, usage_id, worst)

    async def release(self, attempt: Attempt, usage_id: str) -> None:
        job = attempt.job
        if self.book is None or job.key_prefix is None:
            return
        try:
            await self.book.release(
                job.project_id, job.key_prefix, hold_id=usage_id, now=self.clock.now()
            )
        except Exception as exc:  # the hold expires by itself
            log.warning("could not release a spend hold", usage_id=usage_id, error=str(exc))
