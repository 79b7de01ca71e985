"""Fixtures of the dev-stack tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from puras_cli.devstack.stack import claim_work_dir


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A directory for a stack's data, outside pytest's ``pytest-of-<user>`` tree.

    Run as root, Postgres runs as an unprivileged user that must traverse every parent
    of its data dir; pytest resets ``pytest-of-<user>`` to mode 0700 whenever a session
    starts, so another test session starting on the machine would cut a running
    Postgres off from its files. ``/tmp`` itself is always traversable.
    """
    path = Path(tempfile.mkdtemp(prefix="puras-stack-test-"))
    try:
        yield path
    finally:
        # A test that failed half-way must not leave a stack running behind it: whatever
        # a dead owner left is stopped (a live owner here would be a test bug: reported).
        for pids in path.rglob("stack.pids"):
            claim_work_dir(pids.parent)
        shutil.rmtree(path, ignore_errors=True)
