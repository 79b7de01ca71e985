"""The chaos suite: registers its marker (``-m chaos`` runs only it, ``-m "not chaos"``
leaves it out). The harness is ``chaos_harness.py``; ``./dev chaos`` runs its full form."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: mixed load while every process of the stack is killed -9"
    )
