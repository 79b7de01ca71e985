"""Runner settings (env prefix ``PURAS_RUNNER_``, falling back to ``PURAS_``).

Examples: ``PURAS_RUNNER_SLOTS=8``, ``PURAS_NATS_URL=nats://10.0.0.5:4222``,
``PURAS_RUNNER_DATA_DIR=/srv/puras/runner``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from puras_common.events.ids import runners_durable
from puras_common.model_catalog import DEFAULT_MODEL, is_known_model, known_models
from puras_common.secret_box import Keyring
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
    """Memory of one job: its cgroup's limit (every process it starts counts), or where
    the runner has no cgroups the address-space limit (RLIMIT_AS) of each process."""
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
    sandbox: Literal["namespaces", "off"] = "namespaces"
    """``namespaces``: every job runs confined (its own user, pid, mount and network
    namespaces, an unprivileged uid per project, no capabilities, seccomp; the runner must
    be root). ``off`` runs jobs as the runner's own user with rlimits only: for a
    development machine where every job is trusted; refused with ``env=prod``."""
    sandbox_uid_base: int = Field(default=200_000, ge=1000)
    """Projects' jobs run as host uids ``uid_base .. uid_base + uid_span - 1`` (one per
    project, from a hash of its id); no other process may use these uids."""
    sandbox_uid_span: int = Field(default=1 << 20, ge=1)
    job_tmpfs_mb: int = Field(default=512, ge=1)
    """Size of a job's private ``/job`` (its working directory) and of its ``/tmp``; what
    it writes there counts against its memory limit."""
    cgroups: bool = True
    """Give each job a cgroup of its own (memory, processes, CPU) where the host lets the
    runner make them (cgroup v1 or v2); the runner logs at start what it can enforce."""
    job_max_processes: int = Field(default=256, ge=8)
    """Processes and threads of one job together (its cgroup's ``pids.max``)."""
    job_cpus: float = Field(default=1.0, gt=0)
    """CPU bandwidth of one job, in cores (its cgroup's CPU quota)."""
    job_egress: Literal["public", "off"] = "public"
    """Outbound network of jobs: ``public`` lets them reach public addresses through the
    runner's egress proxy (http and https, ports 80 and 443, with the SSRF rules: no
    loopback, private, link-local or metadata address), ``off`` gives them none."""
    egress_allow_networks: list[str] = Field(default_factory=list)
    """Non-public networks jobs and builds may reach anyway (``10.1.2.0/24``), e.g. an
    internal API or a private package index. The egress proxy applies it, and jobs get it
    as ``PURAS_ALLOW_PRIVATE_URLS`` for the SDK's URL inputs (with ``sandbox=off`` there is
    no proxy and the SDK's own check is the one that applies)."""
    egress_ports: list[int] = Field(default_factory=lambda: [80, 443])
    """Destination ports jobs may reach through the proxy (empty: any)."""
    api_url: str = ""
    """How a job reaches the Puras API (``http://puras-gateway:8080``): its
    ``PURAS_API_URL``, where the SDK's ``media.run`` posts with the job's token. The egress
    proxy lets jobs reach exactly this host and port, private or not. Empty: jobs get no
    token, and ``media.run`` says it is not available."""
    drive_storage: Literal["filesystem", "s3"] = "filesystem"
    """Where the drive service keeps the files (``PURAS_DRIVE_STORAGE``, the same variable
    as the drive's): ``filesystem`` means ``drive_root`` is the drive itself (shared with
    the drive service); ``s3`` makes ``drive_root`` a copy, synced with the bucket before
    and after each job."""
    drive_s3_endpoint: str = ""
    """The bucket's S3 endpoint (``PURAS_DRIVE_S3_ENDPOINT``, as the drive's)."""
    drive_s3_bucket: str = ""
    drive_s3_region: str = ""
    drive_s3_access_key: SecretStr = SecretStr("")
    drive_s3_secret_key: SecretStr = SecretStr("")
    media_upstream_url: str = "https://queue.fal.run"
    """The upstream media API the media slugs are generated by (fal's queue protocol)."""
    media_upstream_key: SecretStr = SecretStr("")
    """Its API key (sent as ``Authorization: Key ...``; never logged). Empty: media
    generation is not configured, and media calls say so."""
    media_routes_file: Path | None = None
    """A JSON or YAML file merged over the shipped slug -> upstream model table."""
    media_timeout_s: float = Field(default=900.0, gt=0)
    """The longest one media generation may take upstream (submit to result)."""
    media_max_output_bytes: int = Field(default=500 * 1024 * 1024, ge=1)
    """The largest media output downloaded into the drive."""
    build_index_urls: list[str] = Field(default_factory=lambda: ["https://pypi.org/simple"])
    """Package indexes ``requirements.txt`` builds may reach (the first is the index uv
    uses, the others are extra indexes); builds reach nothing else."""
    build_timeout_s: float = Field(default=600.0, gt=0)
    """Time limit of one ``requirements.txt`` build."""
    build_memory_mb: int = Field(default=2048, ge=64)
    """Memory of one ``requirements.txt`` build (its cgroup's limit)."""
    build_slots: int = Field(default=1, ge=0)
    """Push-time builds (Z7) this runner takes from ``PURAS_BUILDS`` at once; 0 takes
    none (the runner still builds a venv it lacks when a job needs it)."""

    def drive_s3(self) -> tuple[str, bool]:
        """``(host:port, secure)`` of the bucket's endpoint; ``ValueError`` when the S3
        backend is chosen without one."""
        parts = urlsplit(self.drive_s3_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or not self.drive_s3_bucket:
            raise ValueError(
                "PURAS_DRIVE_STORAGE=s3 needs PURAS_DRIVE_S3_ENDPOINT (http(s)://host:port) "
                "and PURAS_DRIVE_S3_BUCKET"
            )
        return parts.netloc, parts.scheme == "https"

    def api_destinations(self) -> frozenset[tuple[str, int]]:
        """(host, port) of :attr:`api_url`, for the egress proxy (none when unset)."""
        if not self.api_url:
            return frozenset()
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"PURAS_RUNNER_API_URL={self.api_url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return frozenset({(parts.hostname.lower(), port)})

    # -- the agent runtime -------------------------------------------------------------------

    agent_default_model: str = DEFAULT_MODEL
    """The model of an agentic skill whose ``skill.yaml`` names none (A9)."""
    agent_max_steps: int = Field(default=50, ge=1, le=1000)
    """Model calls one agent run may make unless its skill sets ``max_steps``."""
    agent_timeout_s: float = Field(default=900.0, gt=0)
    """Wall-clock limit of an agent run whose skill and work item set none."""
    agent_tool_timeout_s: float = Field(default=300.0, gt=0)
    """Wall-clock limit of one call of a skill's own tool."""
    model_routes_file: Path | None = None
    """A JSON or YAML file of model routes merged over the shipped table (which upstream,
    model id, base URL and key variable serve each slug; ``"*"`` applies to all). See
    docs/agents.md."""
    anthropic_api_key: SecretStr = SecretStr("")
    """Key of the Anthropic API; empty: the SDK's own ``ANTHROPIC_API_KEY``."""
    anthropic_base_url: str = ""
    """Base URL of the Anthropic API; empty: ``ANTHROPIC_BASE_URL`` or the SDK's default."""
    openai_api_key: SecretStr = SecretStr("")
    """Key of the OpenAI(-compatible) API; empty: the SDK's own ``OPENAI_API_KEY``."""
    openai_base_url: str = ""
    """Base URL of the OpenAI-compatible API (vLLM, Ollama, llama.cpp ...); empty:
    ``OPENAI_BASE_URL`` or the SDK's default."""
    provider_max_retries: int = Field(default=4, ge=0, le=10)
    """Retries of a model call on rate limits, overload and 5xx (with the SDKs' backoff)."""
    provider_timeout_s: float = Field(default=600.0, gt=0)
    """Time limit of one model call."""
    margin_pct: int = Field(default=20, ge=0)
    """The margin billing charges (``PURAS_MARGIN_PCT``), for the agent runs' cost caps."""
    search_backend: Literal["none", "searxng", "brave"] = "none"
    """Backend of the agents' ``web_search`` and ``image_search``: a SearXNG instance's
    JSON API (``searxng_url``) or the Brave Search API (``brave_api_key``); ``none``: the
    tools answer the model that search is not configured."""
    searxng_url: str = ""
    """Base URL of the SearXNG instance (its JSON format must be enabled)."""
    brave_api_key: SecretStr = SecretStr("")
    """Subscription token of the Brave Search API."""

    # -- project secrets (X2) ------------------------------------------------------------

    secrets_key: SecretStr = SecretStr("")
    """The master key project secrets are sealed under (``PURAS_SECRETS_KEY``, the same as
    the gateway's): 32 random bytes in base64. Empty: jobs of a project that has secrets
    fail, saying the runner cannot open them."""
    secrets_previous_keys: SecretStr = SecretStr("")
    """Keys being rotated out, comma-separated (``PURAS_SECRETS_PREVIOUS_KEYS``): secrets
    still sealed under them keep opening until ``puras admin secrets rotate`` re-sealed
    them (docs/operations.md)."""
    secrets_ttl_s: float = Field(default=5.0, ge=0, le=60)
    """How long the runner reuses a project's opened secrets: a set or delete reaches
    the jobs that start at most this long after it."""

    def secrets_keyring(self) -> Keyring:
        """The master keys as a keyring (``SecretsKeyInvalid`` for a malformed one)."""
        return Keyring.from_settings(
            self.secrets_key.get_secret_value(), self.secrets_previous_keys.get_secret_value()
        )

    @field_validator("agent_default_model")
    @classmethod
    def _known_default(cls, v: str) -> str:
        if not is_known_model(v):
            raise ValueError(f"unknown model slug {v!r}; slugs: {', '.join(known_models())}")
        return v

    @model_validator(mode="after")
    def _search_configured(self) -> RunnerSettings:
        if self.search_backend == "searxng" and not self.searxng_url:
            raise ValueError("search_backend=searxng needs searxng_url")
        if self.search_backend == "brave" and not self.brave_api_key.get_secret_value():
            raise ValueError("search_backend=brave needs brave_api_key")
        return self

    @model_validator(mode="after")
    def _secrets_keys(self) -> RunnerSettings:
        self.secrets_keyring()  # a malformed key stops the runner at start, not a job
        return self

    @model_validator(mode="after")
    def _sandbox_in_prod(self) -> RunnerSettings:
        if self.sandbox == "off" and self.env == "prod":
            raise ValueError(
                "sandbox=off runs every job unconfined as the runner's user; it is refused "
                "with env=prod (use it only on a development machine)"
            )
        if self.sandbox_uid_base + self.sandbox_uid_span >= 1 << 31:
            raise ValueError("sandbox_uid_base + sandbox_uid_span must stay below 2**31")
        return self

    @field_validator("pool")
    @classmethod
    def _pool_token(cls, v: str) -> str:
        if not v or any(c in v for c in ".*> \t"):
            raise ValueError("pool must be one NATS subject token (no '.', '*', '>', spaces)")
        return v

    @property
    def durable(self) -> str:
        """The durable consumer shared by every runner of the pool."""
        return runners_durable(self.pool)

    @property
    def heartbeat_s(self) -> float:
        return self.ack_wait_s / 3
