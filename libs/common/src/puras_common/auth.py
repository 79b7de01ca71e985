"""API keys and tokens: format, hashing, constant-time checks.

A key is ``puras_live_<prefix>.<secret>``; the dot is part of the key. The prefix is
stored plain (lookup); only ``sha256(secret)`` is ever stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

__all__ = [
    "KEY_PREFIX",
    "GeneratedKey",
    "ParsedKey",
    "generate_key",
    "hash_secret",
    "parse_key",
    "tokens_equal",
    "verify_secret",
]

KEY_PREFIX = "puras_live_"
_ALPHABET = string.ascii_letters + string.digits
_PREFIX_LEN = 8
_SECRET_LEN = 32
_KEY_RE = re.compile(r"^puras_live_([A-Za-z0-9]{4,32})\.([A-Za-z0-9]{16,128})$")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    prefix: str
    secret: str


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    key: str
    """The full key, shown once."""
    prefix: str
    secret_sha256: str


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> GeneratedKey:
    prefix, secret = _random(_PREFIX_LEN), _random(_SECRET_LEN)
    return GeneratedKey(
        key=f"{KEY_PREFIX}{prefix}.{secret}", prefix=prefix, secret_sha256=hash_secret(secret)
    )


def parse_key(value: str) -> ParsedKey | None:
    """Split a presented key; ``None`` if it is not shaped like one."""
    m = _KEY_RE.match(value.strip())
    if m is None:
        return None
    return ParsedKey(prefix=m.group(1), secret=m.group(2))


def verify_secret(secret: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_sha256.encode())


def tokens_equal(presented: str, expected: str) -> bool:
    """Constant-time comparison of two opaque tokens (the admin token)."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
