"""Invariants of ``deploy/docker/Dockerfile`` that would otherwise fail only in a build
(there is no Docker engine in CI): the lock is used as it is, every workspace member
reaches the builder, the build context lets through what the Dockerfile copies and
nothing secret, and the image runs as a non-root user in ``prod``.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
# BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile; a .dockerignore in
# deploy/docker/ would be ignored for a build whose context is the repository root.
IGNORE_FILE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"


@functools.cache
def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
    return out


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, args in _instructions():
        if word == "FROM":
            name = args.split(" AS ")[-1] if " AS " in args else args
            current = stages.setdefault(name, [])
        current.append((word, args))
    return stages


def _build_args() -> dict[str, str]:
    out = {}
    for word, args in _instructions():
        if word == "ARG" and "=" in args:
            key, _, value = args.partition("=")
            out[key] = value
    return out


def _workspace_members() -> list[str]:
    """Member folders of the uv workspace, globs expanded as uv expands them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = []
    for pattern in config["tool"]["uv"]["workspace"]["members"]:
        for path in sorted(ROOT.glob(pattern)):
            if (path / "pyproject.toml").is_file():
                members.append(path.relative_to(ROOT).as_posix())
    return members


def _copied_before(stage: list[tuple[str, str]], marker: str) -> list[str]:
    """Context paths COPY'd in ``stage`` before the first RUN containing ``marker``."""
    sources: list[str] = []
    for word, args in stage:
        if word == "RUN" and marker in args:
            return sources
        if word == "COPY" and "--from" not in args:
            sources.extend(args.split()[:-1])
    raise AssertionError(f"no RUN with {marker!r}")


def _uv_syncs() -> list[str]:
    return [args for word, args in _stages()["build"] if word == "RUN" and "uv sync" in args]


def test_both_stages_run_python_3_11_slim() -> None:
    assert _build_args()["PYTHON_IMAGE"] == "python:3.11-slim"
    stages = _stages()
    assert set(stages) >= {"build", "runtime"}
    # The venv's interpreter is a link to the base image's: both stages use the same one.
    for name in ("build", "runtime"):
        assert stages[name][0] == ("FROM", f"${{PYTHON_IMAGE}} AS {name}"), name
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"


def test_the_workspace_is_installed_from_the_lock_as_it_is() -> None:
    syncs = _uv_syncs()
    assert len(syncs) == 2, syncs
    for args in syncs:
        for flag in ("--frozen", "--no-dev", "--all-packages"):
            assert flag in args.split(), f"{flag} missing from: {args}"
    assert "--no-install-workspace" in syncs[0].split()
    # Installed into site-packages, not linked to /src, which the runtime stage lacks.
    assert "--no-editable" in syncs[1].split()
    assert not [a for w, a in _instructions() if w == "RUN" and re.search(r"\bpip install", a)]
    env = " ".join(a for w, a in _stages()["build"] if w == "ENV")
    assert "UV_PROJECT_ENVIRONMENT=/app/.venv" in env
    assert "UV_PYTHON_DOWNLOADS=never" in env
    runtime_copies = [a for w, a in _stages()["runtime"] if w == "COPY"]
    assert "--from=build /app/.venv /app/.venv" in runtime_copies


def test_every_workspace_member_reaches_the_builder() -> None:
    build = _stages()["build"]
    metadata = set(_copied_before(build, "--no-install-workspace"))
    assert {"pyproject.toml", "uv.lock"} <= metadata
    for member in _workspace_members():
        assert f"{member}/pyproject.toml" in metadata, f"{member}/pyproject.toml not copied"
    sources = set(_copied_before(build, "--no-editable"))
    for member in _workspace_members():
        assert any(member == s or member.startswith(s + "/") for s in sources), (
            f"{member} is not copied before the workspace is installed"
        )


def test_the_image_runs_as_a_non_root_user_in_prod() -> None:
    runtime = _stages()["runtime"]
    user = [a for w, a in runtime if w == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    assert int(uid) != 0
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert re.search(r"\bPURAS_ENV=prod\b", env)
    assert "/app/.venv/bin" in env
    cmd = [a for w, a in runtime if w == "CMD"][-1]
    assert "puras-" not in cmd, "no service by default: each Deployment names its own"


# -- the build context ---------------------------------------------------------------------


def _patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``(exclude, regex)`` per line of the ignore file, Docker's matching rules."""
    out = []
    for raw in IGNORE_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        out.append((exclude, re.compile(regex + r"\Z")))
    return out


def _excluded(path: str) -> bool:
    """The last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exclude, regex in _patterns():
        if any(regex.match(c) for c in candidates):
            excluded = exclude
    return excluded


def _workspace_files() -> list[str]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(
        [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [p for p in listed.split("\0") if p and (ROOT / p).is_file()]


def test_the_build_context_holds_everything_the_dockerfile_copies() -> None:
    sources = {
        s
        for w, a in _stages()["build"]
        if w == "COPY" and "--from" not in a
        for s in a.split()[:-1]
    }
    files = _workspace_files()
    needed = [f for f in files if any(f == s or f.startswith(s.rstrip("/") + "/") for s in sources)]
    assert needed
    dropped = [f for f in needed if _excluded(f)]
    assert not dropped, f"copied by the Dockerfile but outside the build context: {dropped[:5]}"


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    for path in (
        ".git/config",
        ".venv/bin/python",
        ".puras/stack/nats/nats.conf",
        "deploy/k8s/secrets/admin_token",
        "deploy/k8s/secrets/database_url",
        "deploy/k8s/secrets/runner_nats_password",
        "deploy/k8s/secrets/gateway_database_password",
        "tests/conftest.py",
        "libs/common/src/puras_common/__pycache__/settings.cpython-311.pyc",
        "services/runner/.venv/bin/python",
    ):
        assert _excluded(path), f"{path} would be sent to the builder"
