"""A real ``TemplateSandboxes`` for the agent sandbox's tests: the runner's own engine
(venvs, templates, jail, cgroups, as ``bootstrap`` builds them) over a bundle written to
a temporary folder, no NATS involved."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from puras_common.events.commands import RunJob
from puras_common.events.types import SkillRecord, ToolRecord
from puras_common.ids import new_id
from puras_runner import bootstrap
from puras_runner.adapters.engine import TemplateEngine
from puras_runner.adapters.sandbox_session import TemplateSandboxes, ToolHostSession
from puras_runner.app.ports import Deployment
from puras_runner.domain.logs import Stream
from puras_runner.settings import RunnerSettings

__all__ = ["AgentSandbox", "agent_sandbox"]

SKILL = "agent"


@dataclass
class AgentSandbox:
    settings: RunnerSettings
    engine: TemplateEngine
    sandboxes: TemplateSandboxes
    deployment: Deployment
    skill: SkillRecord
    project_id: str
    output: list[tuple[Stream, bytes]] = field(default_factory=list)
    sessions: list[ToolHostSession] = field(default_factory=list)

    def tool(self, name: str) -> ToolRecord:
        return next(t for t in self.skill.tools if t.name == name)

    def drive(self, project_id: str | None = None) -> Path:
        return self.settings.drive_root / (project_id or self.project_id)

    async def open(
        self,
        *,
        timeout_s: float = 60,
        secrets: dict[str, str] | None = None,
        project_id: str | None = None,
    ) -> ToolHostSession:
        job = RunJob(
            job_id=new_id(),
            project_id=project_id or self.project_id,
            skill=SKILL,
            inputs={"prompt": "x"},
            deployment_id=self.deployment.id,
            created_at=datetime.now(UTC),
            bundle_key="unused",
            bundle_sha256="unused",
        )
        session = await self.sandboxes.open(
            self.deployment,
            self.skill,
            job,
            attempt=1,
            timeout_s=timeout_s,
            secrets=secrets or {},
            on_output=lambda stream, data: self.output.append((stream, data)),
        )
        self.sessions.append(session)
        return session


@contextlib.asynccontextmanager
async def agent_sandbox(
    tmp_path: Path, *, sandbox: str = "namespaces", tools: dict[str, str] | None = None
) -> AsyncIterator[AgentSandbox]:
    """An agentic skill whose ``tools/<name>.py`` hold ``tools`` (``run`` in each)."""
    settings = RunnerSettings(
        env="test",
        nats_url="nats://127.0.0.1:1",
        data_dir=tmp_path / "runner",
        drive_root=tmp_path / "drive",
        sandbox=sandbox,  # type: ignore[arg-type]
        memory_limit_mb=512,
        log_level="warning",
        log_format="console",
    )
    engine = bootstrap.build_processes(settings)
    for sub in ("bundles", "venvs", "jobs"):
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)
    engine.workdirs.reset()
    root = tmp_path / "bundle"
    skill_dir = root / "skills" / SKILL
    (skill_dir / "tools").mkdir(parents=True)
    (skill_dir / "SKILL.md").write_text("You help.\n")
    records = []
    for name, code in (tools or {}).items():
        (skill_dir / "tools" / f"{name}.py").write_text(textwrap.dedent(code))
        records.append(ToolRecord(name=name, entrypoint=f"tools/{name}.py:run"))
    skill = SkillRecord(name=SKILL, kind="agentic", entrypoint="SKILL.md", tools=records)
    deployment = Deployment(id=new_id(), root=root, skills={SKILL: skill})
    env = AgentSandbox(
        settings=settings,
        engine=engine,
        sandboxes=TemplateSandboxes(engine),
        deployment=deployment,
        skill=skill,
        project_id=new_id(),
    )
    try:
        yield env
    finally:
        for session in env.sessions:
            await session.close()
        await engine.close()
