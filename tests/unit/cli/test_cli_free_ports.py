"""free_port never hands one process the same port twice (services of one stack got the
same port before their servers bound it: a health server then answered the gateway's
requests)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from puras_cli.infra import ports


class _KernelSocket:
    """Stands in for the kernel's bind(0): hands out the numbers it is given, in order,
    the way the real one may hand out a port again once its socket is closed."""

    numbers: Iterator[int] = iter(())

    def __init__(self, *_: Any) -> None:
        self._port = 0

    def __enter__(self) -> _KernelSocket:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def bind(self, _addr: object) -> None:
        self._port = next(self.numbers)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self._port)


def test_a_port_the_kernel_hands_out_again_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    _KernelSocket.numbers = iter([41001, 41001, 41001, 41002])
    monkeypatch.setattr(socket, "socket", _KernelSocket)
    monkeypatch.setattr(ports, "_HANDED_OUT", set())
    assert ports.free_port() == 41001
    assert ports.free_port() == 41002


def test_real_ports_are_all_different() -> None:
    taken = [ports.free_port() for _ in range(200)]
    assert len(set(taken)) == len(taken)
