"""The base CLI installs without the server packages; the commands that need them say so.

The checks run in a fresh interpreter whose import system refuses every Puras server
package, as on a machine where only ``puras-cli`` (without extras) is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVER_PACKAGES = (
    "puras_common",
    "puras_gateway",
    "puras_scheduler",
    "puras_runner",
    "puras_billing",
    "puras_drive",
)

SCRIPT = """
import json, sys

BLOCKED = set(sys.argv[1].split(","))


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Refuse())

import httpx
from click.testing import CliRunner

from puras_cli.context import CliContext
from puras_cli.main import cli

pushed = []


def gateway(request):
    request.read()
    pushed.append(len(request.content))
    return httpx.Response(201, json={"id": "d1"})


def run(*args):
    obj = CliContext(
        environ={"PURAS_API_BASE": "http://gw.test", "PURAS_API_KEY": "puras_live_a.b",
                 "PURAS_DATABASE_URL": "postgresql://x", "PURAS_NATS_URL": "nats://x"},
        transport=httpx.MockTransport(gateway),
    )
    res = CliRunner().invoke(cli, list(args), obj=obj)
    return {"exit": res.exit_code, "out": res.stdout, "err": res.stderr,
            "exc": repr(res.exception) if res.exit_code not in (0, 1) else None}


results = {
    "help": run("--help"),
    "admin_help": run("admin", "--help"),
    "push": run("push", sys.argv[2]),
    "dev_up": run("dev", "up"),
    "rebuild": run("admin", "rebuild", "all"),
    "streams": run("admin", "streams"),
    "quarantine": run("admin", "quarantine", "list"),
}
results["pushed"] = pushed
results["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps(results))
"""


def _run_blocked(project: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(SERVER_PACKAGES), str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_api_commands_run_without_any_server_package(tmp_path: Path) -> None:
    (tmp_path / "skills" / "echo").mkdir(parents=True)
    (tmp_path / "skills" / "echo" / "skill.yaml").write_text("entrypoint: main.py:run\n")
    (tmp_path / "skills" / "echo" / "main.py").write_text("def run(inputs):\n    return 1\n")
    res = _run_blocked(tmp_path)
    assert res["loaded"] == []
    for name in ("help", "admin_help", "push"):
        step = res[name]
        assert isinstance(step, dict)
        assert step["exit"] == 0, (name, step)
    pushed = res["pushed"]
    assert isinstance(pushed, list)
    assert len(pushed) == 1
    assert pushed[0] > 0  # the bundle went out, packed by the stdlib-only packer
    for name, extra in (
        ("dev_up", "devstack"),
        ("rebuild", "admin"),
        ("streams", "admin"),
        ("quarantine", "admin"),
    ):
        step = res[name]
        assert isinstance(step, dict)
        assert step["exit"] == 1, (name, step)
        assert f"install puras-cli[{extra}]" in str(step["err"]), (name, step)


def test_the_base_install_declares_no_server_package() -> None:
    project = tomllib.loads((ROOT / "cli" / "pyproject.toml").read_text())["project"]
    names = {
        r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        for r in project["dependencies"]
    }
    assert names == {"puras-bundle", "puras-client", "httpx", "click"}
    # The HTTP client it shares with the MCP server needs httpx and nothing of Puras.
    client = tomllib.loads((ROOT / "libs" / "client" / "pyproject.toml").read_text())
    assert [r.split(">")[0] for r in client["project"]["dependencies"]] == ["httpx"]
    extras = project["optional-dependencies"]
    assert {"puras-common", "puras-gateway", "puras-billing"} <= set(extras["admin"])
    assert set(extras["devstack"]) >= {
        "puras-common",
        "puras-gateway",
        "puras-scheduler",
        "puras-runner",
        "puras-billing",
        "puras-drive",
    }
