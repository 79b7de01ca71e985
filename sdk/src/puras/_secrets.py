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
        raise PurasError(
            f"secret {name} is not set for this project: set it with "
            f"PUT /v1/secrets/{name} (or `puras secrets set {name}`); a job gets the "
            "project's secrets as they are when it starts"
        ) from None
