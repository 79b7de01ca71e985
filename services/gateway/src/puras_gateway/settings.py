"""Gateway settings (env prefix ``PURAS_GATEWAY_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from puras_common.manifest.requirements import RequirementsPolicy
from puras_common.secret_box import Keyring
from puras_common.settings import DatabaseSettings

__all__ = ["GatewaySettings", "ProjectorSettings"]


class GatewaySettings(DatabaseSettings):
    service: ClassVar[str] = "gateway"
    secret_fields: ClassVar[tuple[str, ...]] = ("admin_token", "drive_token")

    host: str = "127.0.0.1"
    """Address the API listens on (0.0.0.0 in a container)."""
    port: int = 8080
    """Port of the API (and of its /healthz, /readyz)."""
    admin_token: SecretStr = SecretStr("")
    """Operator token for ``/v1/admin/*`` (T3); required outside ``env=dev``."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest JSON body accepted. Inputs ride in the command, events and the work item,
    and a terminal event carries them with the result: with NATS' 8 MiB max_payload this
    leaves room for a 1 MiB result and the envelope. Large files go through the drive."""
    max_bundle_bytes: int = 50 * 1024 * 1024
    """Largest deployment zip accepted (413 beyond)."""
    drive_url: str = "http://127.0.0.1:8091"
    """The drive service's HTTP API (``PURAS_DRIVE_HTTP_HOST``/``_PORT`` there): the
    gateway forwards ``/v1/drive/*`` to it."""
    drive_token: SecretStr = SecretStr("")
    """The drive's internal token (``PURAS_DRIVE_INTERNAL_TOKEN`` there): what makes the
    drive trust the project the gateway names; required outside ``env=dev``."""
    cors_origins: list[str] = Field(default_factory=list)
    """Web origins whose pages may call this API from a browser
    (a JSON list: ``PURAS_GATEWAY_CORS_ORIGINS='["https://app.example.com"]'``, or
    ``'["*"]'`` for any); empty: none, only callers
    that are not browsers and pages served by this origin. Keys sent from a page are
    visible to its users: give such an app a key of its own, with a spend limit."""
    public_url: str = ""
    """The address clients reach this API at (``https://api.example.com``), which signed
    drive URLs start with; empty: the address each request came to."""
    max_upload_bytes: int = 50 * 1024 * 1024
    """A drive upload over this is refused up front (413) when its length is declared;
    the drive enforces its own cap on the bytes either way (D2)."""
    media_timeout_s: float = Field(default=900.0, gt=0)
    """How long ``POST /v1/media/generate`` waits for the runner's answer (video
    generation takes minutes)."""
    default_wait_s: float = 30.0
    """``wait=true`` without ``timeout`` waits this long (J4)."""
    build_wait_s: float = Field(default=660.0, gt=0)
    """How long a push waits for its ``requirements.txt`` build (Z7) before it answers
    with the deployment still ``building`` (the runners' ``build_timeout_s`` and a margin)."""
    read_your_writes_s: float = 5.0
    """How long a read waits for the projection to show what this API just accepted."""
    sse_ping_s: float = 15.0
    """Interval of ``: ping`` comments on an idle SSE stream."""
    cancel_wait_s: float = 10.0
    """How long ``POST /v1/jobs/{id}/cancel`` waits to answer with the cancelled job."""
    db_pool_size: int = 10
    """Postgres connections of the read views."""
    run_projectors: bool = True
    """Run the gateway's projectors inside this HTTP process (one replica is active at a
    time). Off: ``puras-gateway-projector`` runs them in a process of their own (what the
    dev stack and deploy/k8s do: the API's event loop then serves requests only), and
    this gateway waits for them through their checkpoints."""
    jobs_projection_linger_s: float = Field(default=0.005, ge=0, le=1)
    """Once a job event reached the jobs projector, how long it waits for the ones right
    behind it (a job's events come milliseconds apart) to commit them in one transaction
    (0: commit what is there). A list waits this much longer for a job that just ended;
    nothing else does (a job is read from the log where the projection trails it)."""
    workers: int = Field(default=1, ge=1, le=64)
    """HTTP processes of this gateway sharing its port (one listening socket, each
    worker accepting from it; a worker that dies is started again). Each holds its own
    views and connections; a write that must show on the next request (a key, a
    deployment, a revocation) is answered once every worker's views have it."""
    margin_pct: int = Field(default=20, ge=0)
    """Margin on upstream cost in percent (``PURAS_MARGIN_PCT``, SPEC B1): the published
    prices include the default 20; ``GET /v1/pricing`` lists the rates at this margin."""
    allowed_index_urls: str = ""
    """Package indexes a bundle's requirements.txt may name with ``--index-url`` or
    ``--extra-index-url``, comma-separated, exactly as written there (none: only the
    runners' default index)."""
    allowed_requirement_urls: str = ""
    """URL prefixes a ``name @ <url>`` requirement may start with, comma-separated (none:
    direct URLs are refused; ``file:`` URLs always are)."""

    secrets_key: SecretStr = SecretStr("")
    """The master key project secrets are sealed under (``PURAS_SECRETS_KEY``, shared
    with the runners and nobody else): 32 random bytes in base64. Empty: secrets are
    listed and deleted but not set (503 ``secrets_unavailable``); the dev stack
    generates one."""
    secrets_previous_keys: SecretStr = SecretStr("")
    """Keys being rotated out, comma-separated (``PURAS_SECRETS_PREVIOUS_KEYS``): what
    they sealed still opens until ``puras admin secrets rotate`` re-sealed it."""

    def secrets_keyring(self) -> Keyring:
        """The master keys as a keyring (``SecretsKeyInvalid`` for a malformed one)."""
        return Keyring.from_settings(
            self.secrets_key.get_secret_value(), self.secrets_previous_keys.get_secret_value()
        )

    @model_validator(mode="after")
    def _secrets_keys(self) -> GatewaySettings:
        self.secrets_keyring()  # a malformed key stops the gateway at start
        return self

    def requirements_policy(self) -> RequirementsPolicy:
        """What a deployment's requirements.txt may use beyond plain index requirements."""
        return RequirementsPolicy.of(
            self.allowed_index_urls.split(","), self.allowed_requirement_urls.split(",")
        )


class ProjectorSettings(GatewaySettings):
    """``puras-gateway-projector``: the gateway's settings (``PURAS_GATEWAY_*``: its NATS
    identity and Postgres role), without the API's secrets, which it never uses."""

    secret_fields: ClassVar[tuple[str, ...]] = ()
