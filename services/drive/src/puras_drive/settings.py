"""Drive settings (env prefix ``PURAS_DRIVE_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from puras_common.settings import DatabaseSettings, SettingsError, is_placeholder

__all__ = ["MAX_SIGN_TTL_S", "SHARE_TTL_S", "DriveSettings"]

MAX_SIGN_TTL_S: Final = 7 * 24 * 3600
"""Longest ``ttl`` of ``GET /v1/drive/sign`` (a week); longer links are shares."""
SHARE_TTL_S: Final = 10 * 365 * 24 * 3600
"""Lifetime of a ``POST /v1/drive/share`` link (ten years, SPEC D4)."""


class DriveSettings(DatabaseSettings):
    service: ClassVar[str] = "drive"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token", "signing_secret")

    http_host: str = "127.0.0.1"
    """Address of the drive's HTTP API (0.0.0.0 in a container). Only the gateway calls
    it: the API proper, with the internal token, and the signed file links it forwards."""
    http_port: int = 8091
    """Port of the drive's HTTP API."""
    internal_token: SecretStr = SecretStr("")
    """Bearer token the gateway sends with every proxied ``/v1/drive`` call (the same
    value as the gateway's ``PURAS_GATEWAY_DRIVE_TOKEN``); the project in
    ``X-Puras-Project`` is trusted because of it. Required outside ``env=dev``; while it
    is empty every call but a signed file link is refused."""
    signing_secret: SecretStr = SecretStr("")
    """HMAC key of signed and shared file links. Rotating it revokes every link ever
    made (SPEC D4). Required outside ``env=dev``; empty in dev, a random key per process
    is used, so links die with the process."""
    max_upload_bytes: int = Field(default=52_428_800, ge=1)
    """Largest upload accepted (50 MiB, SPEC D2); 413 beyond."""
    sign_ttl_s: int = Field(default=3600, ge=1, le=MAX_SIGN_TTL_S)
    """Lifetime of a signed link when ``ttl`` is not given, and of an upload's."""
    read_your_writes_s: float = Field(default=5.0, gt=0)
    """How long an upload or delete waits for the file table to show it before it
    answers (it answers anyway after that)."""
    list_sync_s: float = Field(default=2.0, gt=0)
    """How long a list waits for the file table to apply the project's latest drive
    event (files a job just wrote), before it lists what it has."""

    root: Path = Path("/var/lib/puras/drive")
    """Local-filesystem drive: one folder per project under this root (env PURAS_DRIVE_ROOT)."""
    storage: Literal["filesystem", "s3"] = "filesystem"
    """Where the drive's files are: ``filesystem`` (under ``root``, the embedded default)
    or ``s3`` (an S3-compatible object store such as MinIO, the ``s3_*`` settings)."""
    s3_endpoint: str = ""
    """URL of the S3-compatible server, e.g. ``https://minio.internal:9000`` (``http://``
    only on a trusted network: the keys sign every request, the bytes travel in clear)."""
    s3_bucket: str = ""
    """The one bucket of every project's drive (keys ``drive/<project_id>/...``)."""
    s3_region: str = ""
    """The bucket's region, if the server needs one (AWS does; MinIO accepts any)."""
    s3_access_key: SecretStr = SecretStr("")
    """Access key of the drive's S3 identity; never logged."""
    s3_secret_key: SecretStr = SecretStr("")
    """Secret key of the drive's S3 identity; never logged."""
    s3_create_bucket: bool = False
    """Create the bucket at start if it is missing (a development MinIO); otherwise a
    missing bucket stops the start with an error."""

    def s3_location(self) -> tuple[str, bool]:
        """``(host:port, secure)`` of ``s3_endpoint``, as the S3 client takes them."""
        parts = urlsplit(self.s3_endpoint)
        return parts.netloc, parts.scheme == "https"

    @model_validator(mode="after")
    def _s3_complete(self) -> DriveSettings:
        if self.storage != "s3":
            return self
        parts = urlsplit(self.s3_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise SettingsError(
                f"PURAS_DRIVE_S3_ENDPOINT={self.s3_endpoint!r} is not the URL of an S3 "
                "server; set it like https://minio.internal:9000 (no path)"
            )
        if not self.s3_bucket:
            raise SettingsError("PURAS_DRIVE_S3_BUCKET is empty; name the drive's bucket")
        if not self.s3_access_key.get_secret_value().strip():
            raise SettingsError("PURAS_DRIVE_S3_ACCESS_KEY is empty; set the drive's S3 key")
        if self.env != "dev" and is_placeholder(self.s3_secret_key.get_secret_value()):
            raise SettingsError(
                "PURAS_DRIVE_S3_SECRET_KEY is empty or a placeholder; set the secret of the "
                "drive's S3 key, or PURAS_ENV=dev on a development machine"
            )
        return self
