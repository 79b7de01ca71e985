"""Pieces of the dev stack that stand alone: the demo's PNG, the process tree, dev up's files."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from puras_cli.config import write_private_file
from puras_cli.devstack.png import gradient_png, png_data_url
from puras_cli.devstack.proctree import ProcRef, descendants, is_alive, proc_ref, signal_refs
from puras_cli.devstack.repo import find_repo_root
from puras_cli.devstack.stack import DevProject, StackBusy, claim_work_dir, log_tail
from puras_cli.devstack.up import (
    DevPaths,
    _admin_token,
    _gateway_port,
    _saved_project,
    port_is_free,
)


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        tag, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + data) & 0xFFFFFFFF, tag
        yield tag, data
        pos += 12 + length


def test_gradient_png_is_a_valid_rgb_image() -> None:
    png = gradient_png(5, 3)
    chunks = list(_chunks(png))
    assert [t for t, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (5, 3, 8, 2, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == 3 * (1 + 5 * 3)  # a filter byte plus RGB per pixel, per row
    rows = [raw[i * 16 : (i + 1) * 16] for i in range(3)]
    assert all(r[0] == 0 for r in rows)
    assert tuple(rows[0][1:4]) == (0, 0, 160)  # top left
    assert tuple(rows[2][-3:]) == (255, 255, 160)  # bottom right
    url = png_data_url(png)
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png


def test_gradient_png_refuses_silly_sizes() -> None:
    with pytest.raises(ValueError, match="between 1 and 4096"):
        gradient_png(0, 10)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the process tree is read from /proc")
def test_descendants_include_children_in_other_sessions() -> None:
    # A parent whose child starts its own session, as the runner does with job processes.
    parent = subprocess.Popen(
        ["sh", "-c", "setsid sleep 60 & sleep 60 & wait"], start_new_session=True
    )
    try:
        for _ in range(200):
            found = descendants(parent.pid)
            if len(found) >= 2:
                break
            # Waiting for the shell to fork its two children; nothing else to wait on.
            time.sleep(0.01)
        assert len(found) >= 2
        sessions = {os.getsid(r.pid) for r in found}
        assert len(sessions) == 2  # one child escaped the parent's session
        assert all(is_alive(r) for r in found)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    # The setsid child outlived the group kill: only the recorded refs can reach it.
    assert any(is_alive(r) for r in found)
    signal_refs(found, signal.SIGKILL)
    for _ in range(200):
        if not any(is_alive(r) for r in found):
            break
        time.sleep(0.01)
    assert not any(is_alive(r) for r in found)


def test_a_reused_pid_is_not_the_same_process() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    ref = proc_ref(proc.pid)
    assert ref is not None
    assert is_alive(ref)
    proc.kill()
    proc.wait()
    assert not is_alive(ref)
    stale = type(ref)(pid=os.getpid(), start_ticks=ref.start_ticks + 1)
    assert not is_alive(stale)  # our pid, another start time: not that process
    assert signal_refs([stale], signal.SIGTERM) == 0


def test_log_tail_reads_the_end(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert log_tail(log, lines=2) == "line 9998\nline 9999"
    assert "no log at" in log_tail(tmp_path / "missing.log")


def test_repo_root_is_the_directory_holding_dev(tmp_path: Path) -> None:
    (tmp_path / "dev").write_text("#!/bin/sh\n")
    (tmp_path / "justfile").write_text("")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_repo_root(tmp_path / "a" / "b") == tmp_path
    # Outside any checkout it falls back to the one this package is installed from.
    here = find_repo_root(Path("/"))
    assert (here / "dev").is_file()
    assert (here / "cli" / "src" / "puras_cli").is_dir()


def test_admin_token_is_created_once_owner_only(tmp_path: Path) -> None:
    paths = DevPaths(tmp_path)
    first = _admin_token(paths)
    assert len(first) >= 32
    assert _admin_token(paths) == first
    assert stat.S_IMODE(paths.admin_token.stat().st_mode) == 0o600


def test_saved_project_prefers_a_leftover_dev_env(tmp_path: Path) -> None:
    paths = DevPaths(tmp_path)
    assert _saved_project(paths) is None
    write_private_file(paths.project_env, "PURAS_PROJECT_ID='p1'\nPURAS_API_KEY='k1'\n")
    assert _saved_project(paths) == DevProject("p1", "k1")
    write_private_file(paths.dev_env, "PURAS_PROJECT_ID='p2'\nPURAS_API_KEY='k2'\n")
    saved = _saved_project(paths)
    assert saved is not None
    assert (saved.project_id, saved.api_key) == ("p2", "k2")


def test_gateway_port_reuses_the_previous_one_only_while_free(tmp_path: Path) -> None:
    paths = DevPaths(tmp_path)
    paths.stack_dir.mkdir(parents=True)
    assert _gateway_port(paths, None) == 0  # no previous run: the stack picks one
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        paths.gateway_port.write_text(f"{port}\n")
        assert not port_is_free(port)
        assert _gateway_port(paths, None) == 0
    assert port_is_free(port)
    assert _gateway_port(paths, None) == port


def _write_pids(work_dir: Path, refs: dict[str, ProcRef]) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "stack.pids").write_text(
        json.dumps({name: [r.pid, r.start_ticks] for name, r in refs.items()})
    )


def test_claim_refuses_a_work_dir_whose_stack_is_alive(tmp_path: Path) -> None:
    me = proc_ref(os.getpid())
    assert me is not None
    _write_pids(tmp_path, {"_owner": me})
    with pytest.raises(StackBusy, match=f"already running in {tmp_path} \\(process {me.pid}\\)"):
        claim_work_dir(tmp_path)
    assert (tmp_path / "stack.pids").exists()  # the live stack's file is left alone


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="start times are read from /proc")
def test_claim_stops_what_a_dead_stack_left_running(tmp_path: Path) -> None:
    # A service left behind by a `./dev up` that was SIGKILLed: its own process group.
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    ref = proc_ref(orphan.pid)
    assert ref is not None
    dead_owner = ProcRef(pid=ref.pid, start_ticks=ref.start_ticks + 1)  # not alive
    _write_pids(tmp_path, {"_owner": dead_owner, "scheduler": ref})
    said: list[str] = []
    claim_work_dir(tmp_path, said.append)
    assert orphan.wait(timeout=5) == -signal.SIGTERM
    assert said == [
        f"stopping processes left running by an earlier run in {tmp_path}: scheduler ({ref.pid})"
    ]
    assert not (tmp_path / "stack.pids").exists()
    claim_work_dir(tmp_path)  # nothing recorded: nothing to do


def test_log_tail_unfolds_the_end_of_a_json_traceback(tmp_path: Path) -> None:
    trace = (
        "Traceback (most recent call last):\n"
        + "".join(f'  File "x.py", line {i}\n' for i in range(20))
        + "KeyError: 'job-1'"
    )
    log = tmp_path / "gateway.log"
    log.write_text(
        json.dumps({"event": "projector failed", "exception": trace}) + "\n" + "plain line\n"
    )
    lines = log_tail(log).splitlines()
    assert lines[0] == '{"event": "projector failed"}'
    assert lines[-2] == "    KeyError: 'job-1'"
    assert len(lines) == 1 + 8 + 1  # the record, the traceback's last 8 lines, the next line
    assert lines[-1] == "plain line"
