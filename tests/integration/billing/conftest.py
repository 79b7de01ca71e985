"""The gateway's read models over the test database, for the projection tests here."""

from __future__ import annotations

from projector_helpers import reads

__all__ = ["reads"]
