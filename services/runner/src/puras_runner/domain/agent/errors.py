"""Errors of an agent run that the loop turns into a job's error or a tool's error."""

from __future__ import annotations

__all__ = ["FetchFailed", "ProviderError", "SandboxFailed", "SearchUnavailable"]


class ProviderError(Exception):
    """A model call failed for good (after the retries rate limits and overload get).

    ``str()`` is the job's error: it names the provider and, when there is one, the
    HTTP status, and never holds a key.
    """

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        self.provider = provider
        self.status = status
        self.detail = message
        where = f"{provider} returned HTTP {status}" if status is not None else provider
        super().__init__(f"model call failed: {where}: {message}")


class FetchFailed(Exception):
    """An outbound fetch was refused (SSRF policy, scheme, size) or failed; ``str()``
    says why, for the model (a tool error) or the job (an attachment)."""


class SearchUnavailable(Exception):
    """No search backend is configured, or it failed; ``str()`` is the tool error."""


class SandboxFailed(Exception):
    """The run's sandbox process could not be started or went away; ``str()`` says why."""
