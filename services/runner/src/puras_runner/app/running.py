"""The attempts running on this runner right now, and their job tokens (SPEC S2).

Each attempt gets a service token (:mod:`puras_common.job_tokens`) in its environment,
``PURAS_JOB_TOKEN``, next to ``PURAS_API_URL``: what the SDK's ``media.run`` shows
``POST /v1/media/generate``. The gateway sends such a call to the runner named in the
token; this registry is how that runner checks it: the MAC is its own (a random key made
at start, so a token of a runner that restarted is refused), and the token's attempt must
be running here now — a token copied out of a finished job opens nothing.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Final

from puras_common.job_tokens import InvalidJobToken, JobClaims, mint, verify
from puras_runner.app.attempt import Attempt

__all__ = ["TOKEN_TTL_S", "RunningJobs", "rpc_id"]

TOKEN_TTL_S: Final = 3600 + 600
"""A job runs at most an hour (K3); the token may not outlive that by much. It is
refused anyway as soon as its attempt ends here."""


def rpc_id(runner_id: str) -> str:
    """The runner's id as a NATS subject token (host names may hold dots)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", runner_id)[:64] or "runner"


class RunningJobs:
    def __init__(self, runner_id: str, api_url: str, *, key: bytes | None = None) -> None:
        self.runner = rpc_id(runner_id)
        self.api_url = api_url.rstrip("/")
        """How jobs reach the Puras API (empty: media.run is not available to them)."""
        self._key = key or secrets.token_bytes(32)
        self._running: dict[str, Attempt] = {}

    def add(self, attempt: Attempt) -> dict[str, str]:
        """Register a starting attempt; the environment its job gets for the API."""
        job = attempt.job
        self._running[job.job_id] = attempt
        if not self.api_url:
            return {}
        token = mint(
            self._key,
            JobClaims(
                project_id=job.project_id,
                job_id=job.job_id,
                attempt=attempt.number,
                runner=self.runner,
                exp=int(time.time()) + TOKEN_TTL_S,
            ),
        )
        return {"PURAS_API_URL": self.api_url, "PURAS_JOB_TOKEN": token}

    def remove(self, attempt: Attempt) -> None:
        if self._running.get(attempt.job.job_id) is attempt:
            del self._running[attempt.job.job_id]

    def check(self, token: str) -> Attempt:
        """The running attempt a token names; ``InvalidJobToken`` saying why not."""
        claims = verify(self._key, token, now=time.time())
        attempt = self._running.get(claims.job_id)
        if (
            attempt is None
            or attempt.number != claims.attempt
            or attempt.job.project_id != claims.project_id
        ):
            raise InvalidJobToken("job token is not valid: its job is not running any more")
        return attempt
