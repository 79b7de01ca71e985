"""The one exception type of the SDK."""

from __future__ import annotations

__all__ = ["PurasError"]


class PurasError(ValueError):
    """A call of the SDK could not be served; the message says what to fix.

    A subclass of :class:`ValueError`: most causes are a bad value handed in (an input
    in an unknown shape, a path leaving the drive, a URL that may not be fetched).

    When the Puras API refused a call (``media.run``), ``status`` is the HTTP status it
    answered and ``code`` the error code of its body, so skill code can tell a mistake in
    its inputs (4xx: fix them, a retry would fail the same way) from an outage; both are
    ``None`` for errors raised before or without an answer.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
