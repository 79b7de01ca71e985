"""Signed file links (SPEC D4), pure: what a link says and whether it still holds.

A link is ``<public base>/v1/drive/file/<project>/<path>?expires=<unix>&sig=<hex>``; the
signature is HMAC-SHA256 over the project, the canonical path and the expiry, with the
drive's signing secret. Nothing else is stored: a link is valid because its signature
is, so rotating the secret revokes every sign and share link at once, and a link for one
project's file cannot be turned into another's (the project is signed too).

Each part of the signed message is prefixed with its length, so no two different
(project, path, expiry) triples sign the same bytes, whatever they contain.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

__all__ = ["FILE_ROUTE", "SignedLink", "file_url", "link_problem", "sign"]

FILE_ROUTE: Final = "/v1/drive/file"
"""Where signed links are served (the gateway forwards it without an API key)."""
_VERSION: Final = b"puras-drive-link-v1"


@dataclass(frozen=True, slots=True)
class SignedLink:
    url: str
    expires: int
    """Unix time after which the link is refused."""


def sign(secret: bytes, project_id: str, path: str, expires: int) -> str:
    """Hex HMAC-SHA256 of one link."""
    message = b"".join(
        b"%d:%s" % (len(part), part)
        for part in (_VERSION, project_id.encode(), path.encode(), str(expires).encode())
    )
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def file_url(
    public_base: str, secret: bytes, project_id: str, path: str, expires: int
) -> SignedLink:
    """The link to ``path`` (canonical) of ``project_id``, valid until ``expires``."""
    query = urlencode({"expires": expires, "sig": sign(secret, project_id, path, expires)})
    # Every byte but "/" percent-encoded: a name may hold "?", "#", "%" or spaces.
    where = f"{FILE_ROUTE}/{quote(project_id, safe='')}/{quote(path, safe='/')}"
    return SignedLink(url=f"{public_base.rstrip('/')}{where}?{query}", expires=expires)


def link_problem(
    secret: bytes, project_id: str, path: str, expires: str | None, sig: str | None, now: float
) -> str | None:
    """Why the link is refused (a message for a 403), or ``None`` if it holds.

    The signature is compared in constant time; an expired link is refused even with a
    good signature, and a good-looking expiry proves nothing without one.
    """
    if not expires or not sig:
        return "the link is not signed (it needs expires and sig); ask for a new link"
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return "the link's expiry is not a unix time; ask for a new link"
    expected = sign(secret, project_id, path, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogatepass")):
        return (
            "the link's signature does not match this file (altered, for another file or "
            "project, or revoked by a new signing secret); ask for a new link"
        )
    if int(expires) < now:
        return "the link has expired; ask for a new link"
    return None
