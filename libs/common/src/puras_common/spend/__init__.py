"""Per-key spend windows (Z1): the pure arithmetic, and the NATS KV record every runner
and billing replica change by compare-and-set."""

from puras_common.spend.window import (
    Refused,
    SpendWindow,
    period_begins,
    period_start,
    release,
    reserve,
    settle,
    spent_in,
)

__all__ = [
    "Refused",
    "SpendWindow",
    "period_begins",
    "period_start",
    "release",
    "reserve",
    "settle",
    "spent_in",
]
