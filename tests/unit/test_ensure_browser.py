"""scripts/ensure_browser.sh, run against a PATH of stand-ins: silent when a Chromium is
there, installs Debian's with apt-get as root (refreshing missing package lists once),
and otherwise says how, failing only when not told to be soft."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_browser.sh"
TOOLS = ("bash", "cat", "chmod", "grep", "mktemp", "rm", "touch")


def _bin(tmp: Path, uid: int = 0) -> Path:
    """A PATH holding the tools the script uses, an ``id`` that answers ``uid``, and no
    browser."""
    b = tmp / "bin"
    b.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (b / tool).symlink_to(found)
    _script(b / "id", f'[ "$1" = -u ] && echo {uid}')
    return b


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def _fake_apt(b: Path, *, lists: bool) -> Path:
    """An apt-get that logs its calls and "installs" a chromium once it has package lists."""
    calls = b.parent / "calls"
    state = b.parent / "lists"
    if lists:
        state.touch()
    _script(
        b / "apt-get",
        f"""echo "$*" >> {calls}
if [ "$1" = update ]; then touch {state}; exit 0; fi
[ "$DEBIAN_FRONTEND" = noninteractive ] || {{ echo "asked a question"; exit 1; }}
if [ ! -e {state} ]; then echo "E: Unable to locate package chromium"; exit 100; fi
printf '#!/bin/bash\\n' > {b}/chromium; chmod +x {b}/chromium""",
    )
    return calls


def _run(b: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(b), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_a_chromium_on_path_needs_nothing(tmp_path: Path) -> None:
    b = _bin(tmp_path)
    _script(b / "chromium", "")
    calls = _fake_apt(b, lists=True)
    r = _run(b)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not calls.exists()


def test_root_with_apt_installs_chromium_in_one_line(tmp_path: Path) -> None:
    b = _bin(tmp_path)
    calls = _fake_apt(b, lists=True)
    r = _run(b)
    assert r.returncode == 0, r.stderr
    assert (b / "chromium").exists()
    assert calls.read_text().splitlines() == ["install -y -qq --no-install-recommends chromium"]
    assert len(r.stderr.splitlines()) == 1


def test_missing_package_lists_are_fetched_once(tmp_path: Path) -> None:
    b = _bin(tmp_path)
    calls = _fake_apt(b, lists=False)
    r = _run(b)
    assert r.returncode == 0, r.stderr
    assert calls.read_text().splitlines() == [
        "install -y -qq --no-install-recommends chromium",
        "update -qq",
        "install -y -qq --no-install-recommends chromium",
    ]


def test_a_failed_install_shows_apt_and_fails(tmp_path: Path) -> None:
    b = _bin(tmp_path)
    _script(b / "apt-get", 'echo "E: Failed to fetch: Temporary failure resolving"; exit 100')
    r = _run(b)
    assert r.returncode == 1
    assert "Temporary failure resolving" in r.stderr
    assert "apt-get install --no-install-recommends chromium" in r.stderr
    assert _run(b, "--soft").returncode == 0


@pytest.mark.parametrize(("uid", "apt"), [(1000, True), (0, False)])
def test_without_root_or_apt_it_says_how(tmp_path: Path, uid: int, apt: bool) -> None:
    b = _bin(tmp_path, uid=uid)
    calls = _fake_apt(b, lists=True) if apt else tmp_path / "calls"
    r = _run(b)
    assert r.returncode == 1
    assert "install" in r.stderr
    assert "chromium" in r.stderr
    assert not calls.exists()
    soft = _run(b, "--soft")
    assert soft.returncode == 0
    assert soft.stderr == r.stderr


def test_dry_run_installs_nothing(tmp_path: Path) -> None:
    b = _bin(tmp_path)
    calls = _fake_apt(b, lists=True)
    r = _run(b, "--dry-run")
    assert r.returncode == 0
    assert "would run: DEBIAN_FRONTEND=noninteractive apt-get install" in r.stderr
    assert not calls.exists()
    assert not (b / "chromium").exists()


def test_the_test_recipe_runs_it_before_pytest() -> None:
    justfile = (SCRIPT.parents[1] / "justfile").read_text()
    recipe = justfile.split("\ntest *args:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert recipe[0].strip() == "@bash scripts/ensure_browser.sh --soft"
    assert recipe[1].strip().startswith("@pytest")
