"""Project secrets, as the runner hands them to a job: environment variables (X2)."""

from __future__ import annotations

import os
import re

from puras._errors import PurasError

__all__ = ["secret"]

_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def secret(name: str) -> str:
    """The value of the project secret ``name`` (S3).

    Raises :class:`PurasError` if ``name`` is not a valid secret name
    (``^[A-Z_][A-Z0-9_]*$``) or the job's environment does not hold it.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise PurasError(
            f"{name!r} is not a secret name: names are upper-case letters, digits and _, "
            "not starting with a digit (e.g. OPENAI_API_KEY)"
        )
    try:
        return os.environ[name]
    except KeyError:
        # Says what is true of this version: the secrets API (SPEC X1) is not served yet,
        # so there is nothing a user could set and the runner injects no secrets.
        raise PurasError(
            f"secret {name} is not set for this job: this version of Puras has no "
            "project secrets yet (no API stores them, so the runner gives jobs none)"
        ) from None
