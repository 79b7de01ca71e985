"""`puras dev up`'s supervisor over a scripted stack: restarts, backoff, what is fatal."""

from __future__ import annotations

from collections.abc import Collection

from puras_cli.devstack.stack import StackError
from puras_cli.devstack.up import supervise


class FakeStack:
    """Exits happen in the order of ``script``; ``start_service`` may fail on demand."""

    def __init__(self, script: list[str], fail_starts: int = 0) -> None:
        self.script = list(script)
        self.dead: set[str] = set()
        self.started: list[str] = []
        self.fail_starts = fail_starts

    def wait_for_exit(
        self, timeout: float | None = None, *, ignore: Collection[str] = ()
    ) -> str | None:
        dead = [n for n in self.dead if n not in ignore]
        if dead:
            return dead[0]
        if self.script and not (set(ignore) & self.dead):
            name = self.script.pop(0)
            self.dead.add(name)
            return name
        return None

    def describe_exit(self, name: str) -> str:
        return f"{name} was killed by SIGKILL; last lines of {name}.log:\nboom"

    def start_service(self, name: str, *, timeout: float = 60.0) -> None:
        self.started.append(name)
        if self.fail_starts:
            self.fail_starts -= 1
            raise StackError(f"{name} exited with code 1")
        self.dead.discard(name)


def test_a_crashed_service_is_reported_and_restarted_until_the_infra_dies() -> None:
    stack = FakeStack(["gateway", "runner", "gateway", "postgres"])
    lines: list[str] = []
    died = supervise(
        stack,  # type: ignore[arg-type]
        lambda msg, err=False: lines.append(msg),
        first_delay=0.001,
        max_delay=0.004,
    )
    assert died == "postgres"  # fatal: the stack stops (run_up prints it and exits 1)
    assert stack.started == ["gateway", "runner", "gateway"]
    text = "\n".join(lines)
    assert "gateway was killed by SIGKILL" in text
    assert "boom" in text  # the tail of its log
    assert "restarting gateway in" in text
    assert "gateway restarted and ready" in text


def _delays(lines: list[str]) -> list[float]:
    return [float(x.split(" in ")[1].split("s ")[0]) for x in lines if "restarting" in x]


def test_backoff_doubles_while_it_keeps_failing_and_is_capped() -> None:
    stack = FakeStack(["billing", "nats-server"], fail_starts=3)
    lines: list[str] = []
    died = supervise(
        stack,  # type: ignore[arg-type]
        lambda msg, err=False: lines.append(msg),
        first_delay=0.001,
        max_delay=0.004,
    )
    assert died == "nats-server"
    assert stack.started == ["billing"] * 4  # three failed restarts, then one that held
    assert _delays(lines) == [0.001, 0.002, 0.004, 0.004]
    assert sum("is not ready after a restart" in line for line in lines) == 3


def test_backoff_starts_over_after_the_service_stayed_up() -> None:
    stack = FakeStack(["drive", "drive", "drive", "postgres"])
    lines: list[str] = []
    supervise(
        stack,  # type: ignore[arg-type]
        lambda msg, err=False: lines.append(msg),
        first_delay=0.001,
        stable_s=0.0,  # any run counts as "stayed up"
    )
    assert _delays(lines) == [0.001, 0.001, 0.001]


def test_should_stop_ends_supervision_without_an_exit() -> None:
    stack = FakeStack([])
    assert supervise(stack, lambda *_a, **_k: None, should_stop=lambda: True) is None  # type: ignore[arg-type]
