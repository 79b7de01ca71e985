"""scripts/grant_credits.sh (SPEC B4) against a local HTTP server that plays the gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from puras_cli.infra.ports import free_port

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "grant_credits.sh"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the script uses curl")


class _Recorder(ThreadingHTTPServer):
    seen: list[dict[str, Any]]
    status: int
    reply: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.seen.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.reply)))
        self.end_headers()
        self.wfile.write(self.server.reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[_Recorder]:
    srv = _Recorder(("127.0.0.1", 0), _Handler)
    srv.seen, srv.status, srv.reply = [], 200, b'{"grant_id": "g1", "micros": 2500000}'
    # A short poll interval: shutdown() waits for the loop to notice it.
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PURAS_")}
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _base(srv: _Recorder) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_grants_usd_with_the_admin_token_from_the_environment(
    gateway: _Recorder, tmp_path: Path
) -> None:
    res = _run(
        ["p1", "2.5"], {"PURAS_API_BASE": _base(gateway), "PURAS_ADMIN_TOKEN": "tok"}, tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert gateway.seen == [
        {
            "path": "/v1/admin/projects/p1/credits",
            "auth": "Bearer tok",
            "type": "application/json",
            "body": {"usd": 2.5},
        }
    ]
    assert json.loads(res.stdout) == {"grant_id": "g1", "micros": 2500000}


def test_reads_dev_env_of_a_parent_directory(gateway: _Recorder, tmp_path: Path) -> None:
    (tmp_path / ".puras").mkdir()
    (tmp_path / ".puras" / "dev.env").write_text(
        f"PURAS_API_BASE='{_base(gateway)}'\nPURAS_ADMIN_TOKEN='from-file'\n"
    )
    (tmp_path / "sub").mkdir()
    res = _run(["p1", "10"], {}, tmp_path / "sub")
    assert res.returncode == 0, res.stderr
    assert gateway.seen[0]["auth"] == "Bearer from-file"
    assert gateway.seen[0]["body"] == {"usd": 10}


def test_api_error_message_and_non_zero_exit(gateway: _Recorder, tmp_path: Path) -> None:
    gateway.status = 404
    gateway.reply = (
        b'{"error": {"code": "project_not_found", "message": "project \'p9\' not found"}}'
    )
    res = _run(
        ["p9", "1"], {"PURAS_API_BASE": _base(gateway), "PURAS_ADMIN_TOKEN": "tok"}, tmp_path
    )
    assert res.returncode == 1
    assert res.stderr == "error: project 'p9' not found (HTTP 404)\n"


@pytest.mark.parametrize("usd", ["0", "-1", "1.0000001", "01", "ten", "1e3"])
def test_refuses_bad_amounts_without_calling(usd: str, gateway: _Recorder, tmp_path: Path) -> None:
    res = _run(["p1", usd], {"PURAS_API_BASE": _base(gateway), "PURAS_ADMIN_TOKEN": "t"}, tmp_path)
    assert res.returncode != 0
    assert res.stderr.startswith("error: <usd>")
    assert gateway.seen == []


def test_usage_and_missing_configuration(tmp_path: Path) -> None:
    assert _run([], {}, tmp_path).returncode == 2
    res = _run(["p1", "1"], {}, tmp_path)
    assert res.returncode == 1
    assert "PURAS_API_BASE is not set" in res.stderr
    res = _run(["p1/../x", "1"], {}, tmp_path)
    assert res.returncode == 1
    assert "is not a project id" in res.stderr


def test_connection_refused_suggests_dev_up(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    res = _run(["p1", "1"], {"PURAS_API_BASE": base, "PURAS_ADMIN_TOKEN": "t"}, tmp_path)
    assert res.returncode == 1
    assert f"cannot reach the Puras API at {base}" in res.stderr
    assert "./dev up" in res.stderr
