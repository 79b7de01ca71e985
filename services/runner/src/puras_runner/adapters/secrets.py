"""Project secrets for jobs (X2).

The secrets capability (encrypted values per project, SPEC §8) is not part of this build
yet. :class:`NoSecrets` is the honest default until it lands: jobs get no secrets, and the
slot (``SecretsProvider``) is where a real provider is plugged in through the bootstrap.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["NoSecrets"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class NoSecrets:
    """Returns no secrets for any project."""

    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        return _EMPTY
