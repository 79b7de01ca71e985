"""Typed, validated settings from the environment.

Each service reads its own prefix first (``PURAS_GATEWAY_NATS_URL``) and falls back to
the shared ``PURAS_`` prefix (``PURAS_NATS_URL``), so one machine can set a value once
and a cluster can still set it per service. Settings objects are built in a service's
composition root, never at import time.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = ["PLACEHOLDER_SECRETS", "ServiceSettings", "SettingsError", "is_placeholder"]

Env = Literal["dev", "test", "prod"]

PLACEHOLDER_SECRETS: frozenset[str] = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "dev",
        "devtoken",
        "dev-token",
        "admin",
        "password",
        "placeholder",
        "xxx",
        "todo",
    }
)


class SettingsError(ValueError):
    """Configuration that must not be used (e.g. a placeholder secret outside dev)."""


def is_placeholder(value: str) -> bool:
    return value.strip().lower() in PLACEHOLDER_SECRETS or value.strip().lower().startswith(
        "dev-only"
    )


class ServiceSettings(BaseSettings):
    """What every service needs; subclasses add their own fields and set ``service``."""

    service: ClassVar[str] = "common"
    secret_fields: ClassVar[tuple[str, ...]] = ()
    """Names of ``SecretStr`` fields that must be real secrets outside ``env=dev``."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    env: Env = "prod"
    """``dev`` allows generated/placeholder secrets; anything else refuses them."""
    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server(s), comma-separated for a cluster."""
    database_url: str = "postgresql://postgres@127.0.0.1:5432/puras"
    """Postgres of the projections (gateway, billing; the CLI's ``admin rebuild``)."""
    log_level: str = "info"
    """debug, info, warning or error."""
    log_format: Literal["json", "console"] = "json"
    """JSON lines for machines, console for a terminal."""
    instance_id: str = Field(default="", description="Overrides the generated replica id")
    """Name of this replica in logs and NATS connection names (default: host and pid)."""
    stream_replicas: int = 1
    """Replicas of the JetStream streams: 1 on one machine, 3 in a cluster. Every service
    checks the streams against this, so all of them must agree (set PURAS_STREAM_REPLICAS)."""
    connect_timeout_s: float = 15.0
    """How long start-up waits for NATS before the process exits non-zero (and is restarted
    by its supervisor) instead of hanging."""
    health_host: str = "0.0.0.0"  # noqa: S104 - probes come from the orchestrator, not loopback
    """Address of the health server."""
    health_port: int = 0
    """Port of /healthz and /readyz for services without an HTTP API (0: none)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        own = EnvSettingsSource(settings_cls, env_prefix=f"PURAS_{cls.service.upper()}_")
        shared = EnvSettingsSource(settings_cls, env_prefix="PURAS_")
        return (init_settings, own, shared)

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return v

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> ServiceSettings:
        for name in self.secret_fields:
            secret = getattr(self, name)
            if isinstance(secret, SecretStr) and secret.get_secret_value() != (
                stripped := secret.get_secret_value().strip()
            ):
                # `echo token > file` leaves a newline that would silently fail every check.
                object.__setattr__(self, name, SecretStr(stripped))
        if self.env == "dev":
            return self
        for name in self.secret_fields:
            value: Any = getattr(self, name)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")
            if is_placeholder(raw):
                env_name = f"PURAS_{self.service.upper()}_{name.upper()}"
                raise SettingsError(
                    f"{env_name} (or PURAS_{name.upper()}) is empty or a placeholder; "
                    f"set a real secret, or PURAS_ENV=dev on a development machine"
                )
        return self
