"""Runner settings (env prefix ``PURAS_RUNNER_``, falling back to ``PURAS_``).

Examples: ``PURAS_RUNNER_SLOTS=8``, ``PURAS_NATS_URL=nats://10.0.0.5:4222``,
``PURAS_RUNNER_DATA_DIR=/srv/puras/runner``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from puras_common.settings import ServiceSettings

__all__ = ["RunnerSettings"]

KiB = 1024
MiB = 1024 * 1024


class RunnerSettings(ServiceSettings):
    service: ClassVar[str] = "runner"

    pool: str = "default"
    """Runner pool: this runner takes work from ``work.<pool>`` (durable ``runners-<pool>``)."""
    slots: int = Field(default=4, ge=1)
    """Jobs run at once by this runner (the pull consumer's credit)."""
    data_dir: Path = Path("/var/lib/puras/runner")
    """Bundle cache, virtualenvs and job workdirs live here."""
    drive_root: Path = Path("/var/lib/puras/drive")
    """Per-project drive folders are ``<drive_root>/<project_id>/`` (created on demand);
    a job sees its project's folder as ``./drive``."""
    default_timeout_s: float = Field(default=300.0, gt=0)
    """Wall-clock limit of a job whose skill and work item set none."""
    max_attempts: int = Field(default=3, ge=1)
    """Deliveries of a job that may run it; one more delivery fails it with ``runner lost``."""
    ack_wait_s: float = Field(default=30.0, gt=0)
    """JetStream ack wait of the work consumer; heartbeats go at a third of it."""
    memory_limit_mb: int = Field(default=1024, ge=16)
    """Address-space limit (RLIMIT_AS) of a job's process."""
    max_log_bytes: int = Field(default=64 * KiB, ge=0)
    """stdout+stderr kept per job in log events; the rest is read and dropped."""
    max_result_bytes: int = Field(default=1 * MiB, ge=1)
    """Largest JSON result a job may return."""
    template_idle_s: float = Field(default=600.0, gt=0)
    """A template process with no job for this long is stopped."""
    python: str = Field(default_factory=lambda: sys.executable)
    """Interpreter the deployment virtualenvs are built from."""
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    """On SIGTERM, how long running jobs may finish before they are killed and given back."""
    log_flush_s: float = Field(default=0.1, gt=0)
    """Log lines are published at most this often per job (and once at the end)."""

    @field_validator("pool")
    @classmethod
    def _pool_token(cls, v: str) -> str:
        if not v or any(c in v for c in ".*> \t"):
            raise ValueError("pool must be one NATS subject token (no '.', '*', '>', spaces)")
        return v

    @property
    def durable(self) -> str:
        """The durable consumer shared by every runner of the pool."""
        return f"runners-{self.pool}"

    @property
    def heartbeat_s(self) -> float:
        return self.ack_wait_s / 3
