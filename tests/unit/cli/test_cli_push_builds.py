"""``puras push`` and push-time builds (Z7): progress on stderr, the build followed,
a failed build exits 1 with uv's message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from puras_cli.commands import push as push_module
from puras_cli.context import CliContext
from puras_cli.main import cli

ENV = {"PURAS_API_BASE": "http://gw.test", "PURAS_API_KEY": "puras_live_abcd1234.secretsecret"}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scripted gateway answers at once: no pause between looks at the deployment.
    monkeypatch.setattr(push_module, "POLL_S", 0.0)


def project(root: Path) -> Path:
    skill = root / "skills" / "echo"
    skill.mkdir(parents=True)
    (skill / "skill.yaml").write_text("description: Echo.\nentrypoint: main.py:run\n")
    (skill / "main.py").write_text("def run(inputs):\n    return inputs\n")
    (root / "requirements.txt").write_text("six==1.16.0\n")
    return root


class Gateway:
    """Answers the push with ``building``, then lists the deployment as ``states`` say."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        base: dict[str, Any] = {"id": "d1", "notes": "", "skills": [], "error": None}
        if request.method == "POST":
            return httpx.Response(200, json={**base, "status": "building", "active": False})
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return httpx.Response(200, json={"deployments": [{**base, **state}]})


def run(tmp_path: Path, gw: Gateway, *args: str) -> Result:
    obj = CliContext(environ=ENV, cwd=tmp_path, transport=httpx.MockTransport(gw))
    return CliRunner().invoke(cli, ["push", str(project(tmp_path / "proj")), *args], obj=obj)


def test_push_follows_the_build_until_active(tmp_path: Path) -> None:
    gw = Gateway(
        [
            {"status": "building", "active": False},
            {"status": "ready", "active": False},
            {"status": "ready", "active": True},
        ]
    )
    res = run(tmp_path, gw)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["status"], out["active"]) == ("ready", True)
    assert "uploading bundle" in res.stderr
    assert "building requirements.txt" in res.stderr
    assert "deployment d1 ready, active" in res.stderr
    assert b'name="wait"\r\n\r\nfalse' in gw.requests[0].content


def test_a_failed_build_exits_1_with_uv_s_message(tmp_path: Path) -> None:
    uv = "No solution found: puras-no-such-package-xyz was not found in the package registry"
    gw = Gateway([{"status": "failed", "active": False, "error": uv}])
    res = run(tmp_path, gw)
    assert res.exit_code == 1
    assert res.stdout == ""
    assert "the build of requirements.txt failed" in res.stderr
    assert uv in res.stderr


def test_quiet_prints_only_the_deployment(tmp_path: Path) -> None:
    gw = Gateway([{"status": "ready", "active": True}])
    res = run(tmp_path, gw, "-q")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""
    assert json.loads(res.stdout)["active"] is True
