"""Typed, validated settings from the environment.

Each service reads its own prefix first (``PURAS_GATEWAY_NATS_URL``) and falls back to
the shared ``PURAS_`` prefix (``PURAS_NATS_URL``), so one machine can set a value once
and a cluster can still set it per service. Settings objects are built in a service's
composition root, never at import time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:
    from puras_common.bus.client import NatsCredentials

__all__ = [
    "PLACEHOLDER_SECRETS",
    "DatabaseSettings",
    "ServiceSettings",
    "SettingsError",
    "is_placeholder",
]

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
    """NATS server(s), comma-separated for a cluster (no credentials in it: see
    ``nats_user``)."""
    nats_user: str = ""
    """This service's NATS identity (``PURAS_<SERVICE>_NATS_USER``): the user whose
    subject permissions it runs with (``puras_common.bus.permissions``). Empty: connect
    without credentials (only a server without authorization accepts that)."""
    nats_password: SecretStr = SecretStr("")
    """Password of ``nats_user`` (``PURAS_<SERVICE>_NATS_PASSWORD``); never logged."""
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

    def nats_credentials(self) -> NatsCredentials:
        """How this service logs in to NATS, and the inbox prefix its identity may use."""
        from puras_common.bus.client import NatsCredentials
        from puras_common.bus.permissions import inbox_prefix

        user = self.nats_user.strip()
        return NatsCredentials(
            user=user,
            password=self.nats_password.get_secret_value(),
            inbox_prefix=inbox_prefix(self.service),
        )

    def scrub_secrets_from_environ(self) -> None:
        """Remove the variables this service's credentials came from, once read, so no
        child process (a requirements build, a job) inherits them."""
        names = {"nats_password", *self.secret_fields}
        names |= {n for n, f in type(self).model_fields.items() if f.annotation is SecretStr}
        for name in names:
            for prefix in (f"PURAS_{self.service.upper()}_", "PURAS_"):
                os.environ.pop(f"{prefix}{name.upper()}", None)

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return v

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> ServiceSettings:
        if (
            self.nats_user.strip()
            and self.env != "dev"
            and is_placeholder(self.nats_password.get_secret_value())
        ):
            raise SettingsError(
                f"PURAS_{self.service.upper()}_NATS_PASSWORD is empty or a placeholder for "
                f"NATS user {self.nats_user!r}; set the password of this service's identity"
            )
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


class DatabaseSettings(ServiceSettings):
    """A service with Postgres tables (the gateway, billing, the drive). Each such service
    logs in with its own role, which owns its tables and nothing else; the others
    (scheduler, runner) have no database settings at all."""

    database_url: str = "postgresql://127.0.0.1:5432/puras"
    """Postgres of this service's projections, with its role as user and no password
    (e.g. ``postgresql://puras_gateway@db:5432/puras``)."""
    database_password: SecretStr = SecretStr("")
    """Password of the role in ``database_url`` (``PURAS_<SERVICE>_DATABASE_PASSWORD``);
    never logged. Empty: the URL (or the server's trust) must suffice."""

    def database_dsn(self) -> str:
        """``database_url`` with ``database_password`` in it, for the connection only:
        never log the result."""
        password = self.database_password.get_secret_value()
        if not password:
            return self.database_url
        parts = urlsplit(self.database_url)
        host = parts.netloc.rpartition("@")[2]
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
