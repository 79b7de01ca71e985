"""The dev stack: every process of Puras on one machine (``./dev up``, ``./dev demo``)."""

from puras_cli.devstack.stack import (
    SERVICES,
    DevProject,
    Stack,
    StackBusy,
    StackError,
    log_tail,
)

__all__ = ["SERVICES", "DevProject", "Stack", "StackBusy", "StackError", "log_tail"]
