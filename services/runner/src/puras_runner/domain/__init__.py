"""Pure decisions of the runner: no I/O, no clock, no client library (mypy strict)."""
