"""The one exception type of the SDK."""

from __future__ import annotations

__all__ = ["PurasError"]


class PurasError(ValueError):
    """A call of the SDK could not be served; the message says what to fix.

    A subclass of :class:`ValueError`: most causes are a bad value handed in (an input
    in an unknown shape, a path leaving the drive, a URL that may not be fetched).
    """
