"""Per-job service tokens: what a job's code shows ``POST /v1/media/generate`` (SPEC S2).

A runner mints one for each attempt it runs and puts it in the job's environment
(``PURAS_JOB_TOKEN``). It names one job of one project and the runner running it, and
expires with the job's wall-clock limit; it is never a project key and opens nothing but
that job's media calls. The MAC key is the runner's own (random at its start, never
configured, never leaves the process): only the runner that minted a token can verify
it, so the gateway reads the claims only to know which runner to ask, and that runner
decides. A token outlives nothing: a restarted runner knows none of the old ones.

Shape: ``pjt_<base64url(JSON claims)>.<base64url(HMAC-SHA256)>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

import msgspec

__all__ = ["TOKEN_PREFIX", "InvalidJobToken", "JobClaims", "mint", "read_claims", "verify"]

TOKEN_PREFIX: Final = "pjt_"  # noqa: S105 - a prefix, not a secret
MAX_TOKEN_CHARS: Final = 1024
_RUNNER_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class InvalidJobToken(ValueError):
    """Not a job token, a forged or expired one: ``str()`` says which (a 401's message)."""


class JobClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a job token says."""

    project_id: str
    job_id: str
    attempt: int
    runner: str
    """The id of the runner that minted it (the NATS subject its media calls go to)."""
    exp: int
    """Unix seconds after which it is refused."""


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(JobClaims)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def mint(key: bytes, claims: JobClaims) -> str:
    """The token for ``claims``, signed with the runner's ``key``."""
    if not _RUNNER_RE.match(claims.runner):
        raise ValueError(f"runner id {claims.runner!r} cannot be a subject token")
    body = _b64(_enc.encode(claims))
    return f"{TOKEN_PREFIX}{body}.{_mac(key, body)}"


def read_claims(token: str) -> JobClaims:
    """The claims of a well-formed token, NOT verified (to route it to its runner)."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        raise InvalidJobToken(
            "not a job token: POST /v1/media/generate takes the job's PURAS_JOB_TOKEN "
            "(the SDK's media.run sends it), not a project API key"
        )
    body, dot, mac = token[len(TOKEN_PREFIX) :].partition(".")
    if not dot or not body or not mac:
        raise InvalidJobToken("malformed job token")
    try:
        claims = _dec.decode(_unb64(body))
    except (ValueError, msgspec.DecodeError):
        raise InvalidJobToken("malformed job token") from None
    if not _RUNNER_RE.match(claims.runner):
        raise InvalidJobToken("malformed job token")
    return claims


def verify(key: bytes, token: str, *, now: float) -> JobClaims:
    """The claims of a token this ``key`` signed that has not expired."""
    claims = read_claims(token)
    body, _, mac = token[len(TOKEN_PREFIX) :].partition(".")
    if not hmac.compare_digest(_mac(key, body), mac):
        raise InvalidJobToken("job token is not valid (forged, or from a runner that restarted)")
    if now >= claims.exp:
        raise InvalidJobToken("job token has expired (its job ran past its time limit)")
    return claims
