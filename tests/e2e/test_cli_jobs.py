"""``puras`` against the whole stack: tables and ``-o json``, exit status 1 for a job
that failed, live following, paging with ``--cursor``, skills and balance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from puras_cli.context import CliContext
from puras_cli.main import cli
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def puras(api: Api, *args: str, stdin: str | None = None) -> Result:
    env = {"PURAS_API_BASE": api.base, "PURAS_API_KEY": api.key}
    return CliRunner().invoke(
        cli, list(args), obj=CliContext(environ=env, cwd=Path("/")), input=stdin
    )


def test_submit_wait_and_follow_exit_with_the_jobs_outcome(api: Api) -> None:
    ok = puras(api, "jobs", "submit", "echo", "--input", "text=hi", "--wait", "-o", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["result"] == {"echoed": "hi"}
    failed = puras(api, "jobs", "submit", "boom", "--inputs", "-", "--wait", stdin='{"n": 7}')
    assert failed.exit_code == 1
    assert "failed" in failed.stdout
    followed = puras(api, "jobs", "submit", "boom", "--input", "n:=3", "--follow")
    assert followed.exit_code == 1
    lines = followed.stdout.splitlines()
    assert "about to fail" in " ".join(lines)
    [summary] = [line for line in lines if line.startswith("job ")]
    assert " failed: ValueError: boom: bad input 3" in summary
    assert "Traceback (most recent call last):" in lines
    job_id = summary.split()[1]
    tail = puras(api, "jobs", "tail", job_id, "-o", "json")
    assert tail.exit_code == 1
    assert json.loads(tail.stdout.splitlines()[-1])["job"]["id"] == job_id
    logs = puras(api, "jobs", "logs", job_id)
    assert "about to fail" in logs.stdout.splitlines()


def test_list_pages_skills_and_balance(api: Api) -> None:
    for i in range(3):
        assert puras(api, "jobs", "submit", "echo", "--input", f"text={i}").exit_code == 0
    first = puras(api, "jobs", "list", "--limit", "2")
    assert first.exit_code == 0, first.stderr
    assert len(first.stdout.splitlines()) == 3  # the titles and two jobs
    cursor = first.stderr.split("--cursor ")[1].strip()
    rest = json.loads(
        puras(api, "jobs", "list", "--limit", "2", "--cursor", cursor, "-o", "json").stdout
    )
    assert len(rest["jobs"]) == 1
    assert rest["next_cursor"] is None
    skills = puras(api, "skills", "list")
    assert skills.exit_code == 0, skills.stderr
    assert any(line.startswith("echo ") for line in skills.stdout.splitlines())
    balance = json.loads(puras(api, "balance", "-o", "json").stdout)
    assert balance["credit_balance_micros"] > 0
