"""Which network addresses count as public: the one rule shared by the SDK's fetch and
the runner's egress proxy (standard library only)."""

from __future__ import annotations

import ipaddress

__all__ = ["refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is, or ``None`` for a public one."""
    candidates: list[IPAddress] = []
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (::ffff:a.b.c.d, 6to4, Teredo) is judged
        # first as the IPv4 address it reaches, so the message names what it really is.
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                candidates.append(inner)
    candidates.append(ip)
    for address in candidates:
        for attr, label in (
            ("is_unspecified", "an unspecified"),
            ("is_loopback", "a loopback"),
            ("is_link_local", "a link-local"),
            ("is_multicast", "a multicast"),
            ("is_private", "a private"),
            ("is_reserved", "a reserved"),
        ):
            if getattr(address, attr):
                return label
        if not address.is_global:
            return "a non-public"
    return None
